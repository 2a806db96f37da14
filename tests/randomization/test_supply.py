"""Kits: received per site with expiry, dispensed blind by arm, given, returned, destroyed."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from tests.randomization.trial_world import TLS_ARMS
from trialdesk.audit.models import AuditEvent
from trialdesk.randomization.allocation import randomize
from trialdesk.randomization.errors import NotAllowed, SupplyError
from trialdesk.randomization.models import Kit, KitEvent, KitStatus, SealedKit, SealedRow
from trialdesk.randomization.supply import (
    compliance,
    destroy_kit,
    dispense,
    receive_kits,
    record_administration,
    return_kit,
    stock,
)

pytestmark = pytest.mark.django_db


def _today():
    return timezone.localdate()


def _unreceived(sealed, arm, n):
    received = Kit.objects.values("number")
    return list(
        SealedKit.objects.filter(sealed_list=sealed, arm=arm)
        .exclude(kit_number__in=received)
        .values_list("kit_number", flat=True)[:n]
    )


def _give(subject, kit_number, by, when=None):
    return record_administration(
        subject,
        kit_number,
        given_on=when or _today(),
        given_time=dt.time(9, 30),
        injection_site="thigh_right",
        given_by=by,
        by=by,
    )


@pytest.fixture
def tls(ns_dupi):
    return ns_dupi.sites.get(code="TLS")


@pytest.fixture
def subject(stocked, new_subject, claire):
    subject = new_subject("TLS")
    randomize(subject, by=claire)
    return subject


# --- receiving -------------------------------------------------------------------------------


def test_the_pharmacist_receives_kits_of_the_list_with_their_expiry(sealed, tls, pierre):
    numbers = _unreceived(sealed, "DUPI", 2) + _unreceived(sealed, "PBO", 1)
    expiry = _today() + dt.timedelta(days=200)
    kits = receive_kits(tls, numbers, expiry=expiry, lot="L42", by=pierre)
    assert sorted(k.number for k in kits) == sorted(numbers)
    assert {k.expiry for k in kits} == {expiry} and {k.status for k in kits} == {"available"}
    assert KitEvent.objects.filter(kind="received").count() == 3
    event = AuditEvent.objects.filter(action="kit.receive").last()
    assert json.loads(event.changes)["kits"] == numbers and event.username == "pierre"
    assert "DUPI" not in event.changes and "PBO" not in event.changes


def test_receiving_is_for_the_site_pharmacist(sealed, tls, claire):
    with pytest.raises(NotAllowed, match="'claire' is not the pharmacist of TLS"):
        receive_kits(
            tls, _unreceived(sealed, "DUPI", 1), expiry=_today() + dt.timedelta(days=9), by=claire
        )


def test_a_kit_not_on_the_list_or_already_received_is_refused(sealed, tls, ns_dupi, pierre):
    expiry = _today() + dt.timedelta(days=90)
    with pytest.raises(SupplyError, match="kits: kit 1 is not on the sealed kit list"):
        receive_kits(tls, [1], expiry=expiry, by=pierre)
    number = _unreceived(sealed, "PBO", 1)
    receive_kits(ns_dupi.sites.get(code="NCK"), number, expiry=expiry, by=None)
    with pytest.raises(SupplyError, match=f"kits: kit {number[0]} was already received at NCK"):
        receive_kits(tls, number, expiry=expiry, by=pierre)


def test_an_expiry_in_the_past_is_refused(sealed, tls, pierre):
    with pytest.raises(SupplyError, match=f"expiry: {_today().isoformat()} is not in the future"):
        receive_kits(tls, _unreceived(sealed, "PBO", 1), expiry=_today(), by=pierre)


# --- dispensing ------------------------------------------------------------------------------


def test_each_dosing_visit_gets_its_units_of_the_subjects_arm(subject, claire):
    arm = SealedRow.objects.get(subject=subject).arm
    for week in range(2, 15, 2):
        dispense(subject, f"W{week}", by=claire)
    kits = Kit.objects.filter(subject=subject)
    assert kits.count() == 2 + 7  # reading A: D0 2 syringes, W2-W14 one each
    arms = set(
        SealedKit.objects.filter(kit_number__in=kits.values("number")).values_list("arm", flat=True)
    )
    assert arms == {arm}
    assert {k.status for k in kits} == {KitStatus.DISPENSED}


def test_a_visit_is_dispensed_once(subject, claire):
    dispense(subject, "W2", by=claire)
    with pytest.raises(
        SupplyError, match=f"visit: {subject.subject_id} already received the kits of W2"
    ):
        dispense(subject, "W2", by=claire)


def test_only_dosing_visits_are_dispensed(subject, claire):
    with pytest.raises(SupplyError, match="visit: 'W16' is not a dosing visit \\(D0, W2, W4"):
        dispense(subject, "W16", by=claire)


def test_a_dispensing_date_before_day_0_or_in_the_future_is_refused(subject, claire):
    for day in (_today() - dt.timedelta(days=1), _today() + dt.timedelta(days=1)):
        with pytest.raises(SupplyError, match=f"date: {day.isoformat()} is not between day 0"):
            dispense(subject, "W2", by=claire, on=day)


def test_someone_from_another_site_may_not_dispense(subject, paul, manon):
    for user in (paul, manon):
        with pytest.raises(NotAllowed, match="may not handle kits at TLS"):
            dispense(subject, "W2", by=user)


def test_an_unrandomized_subject_gets_no_kit(stocked, new_subject, claire):
    subject = new_subject("TLS")
    with pytest.raises(SupplyError, match=f"subject: {subject.subject_id} is not randomized"):
        dispense(subject, "W2", by=claire)


def test_first_expiring_kits_go_first_and_expired_kits_never(
    ns_dupi, sealed, tls, new_subject, claire
):
    dupi = _unreceived(sealed, TLS_ARMS[0], 6)
    soon, later, old = dupi[:2], dupi[2:4], dupi[4:]
    today = _today()
    receive_kits(tls, later, expiry=today + dt.timedelta(days=300), by=None)
    receive_kits(tls, soon, expiry=today + dt.timedelta(days=20), by=None)
    receive_kits(tls, old, expiry=today + dt.timedelta(days=5), by=None)
    Kit.objects.filter(number__in=old).update(expiry=today - dt.timedelta(days=1))  # expired since
    pbo = _unreceived(sealed, "PBO", 3)
    receive_kits(tls, pbo, expiry=today + dt.timedelta(days=300), by=None)
    subject = new_subject("TLS")
    result = randomize(subject, by=claire)  # row 1 is DUPI: two units at D0
    assert sorted(result.kit_numbers) == sorted(soon)
    dispense(subject, "W2", by=claire)
    assert Kit.objects.get(subject=subject, dispensation__visit_code="W2").number in later
    assert set(Kit.objects.filter(number__in=old).values_list("status", flat=True)) == {"available"}


def test_running_out_of_the_arm_refuses_without_naming_it(
    ns_dupi, sealed, tls, new_subject, claire
):
    receive_kits(
        tls,
        _unreceived(sealed, "DUPI", 2) + _unreceived(sealed, "PBO", 5),
        expiry=_today() + dt.timedelta(days=99),
        by=None,
    )
    subject = new_subject("TLS")
    randomize(subject, by=claire)  # DUPI: takes both DUPI kits
    with pytest.raises(SupplyError) as refused:
        dispense(subject, "W2", by=claire)
    assert str(refused.value) == (
        f"kits: no kit available at TLS for {subject.subject_id}'s W2: the pharmacy must receive kits"
    )
    assert not subject.dispensations.filter(visit_code="W2").exists()


def test_a_withdrawn_subject_gets_no_more_kits(subject, claire):
    from trialdesk.capture.schedule import discontinue

    discontinue(subject, "withdrawn", on=_today(), reason="moved", by=claire)
    with pytest.raises(SupplyError, match=f"subject: {subject.subject_id} is withdrawn"):
        dispense(subject, "W2", by=claire)


# --- administration, compliance --------------------------------------------------------------


def test_administrations_feed_compliance_both_ways(subject, claire):
    assert compliance(subject).units_planned == 9 and compliance(subject).dosing_visits == 8
    for kit in Kit.objects.filter(subject=subject):  # the two D0 syringes
        _give(subject, kit.number, claire)
    dispense(subject, "W2", by=claire)
    _give(subject, Kit.objects.get(subject=subject, dispensation__visit_code="W2").number, claire)
    dispense(subject, "W4", by=claire)  # dispensed, not given
    result = compliance(subject)
    assert (result.visits_dosed, result.dosing_visits) == (2, 8)
    assert (result.units_given, result.units_planned) == (3, 9)
    assert result.by_visits == pytest.approx(0.25) and result.by_units == pytest.approx(1 / 3)


def test_a_kit_is_given_once_and_only_to_its_subject(subject, stocked, new_subject, claire):
    kit = Kit.objects.filter(subject=subject).first()
    administration = _give(subject, kit.number, claire)
    assert administration.visit_code == "D0" and administration.given_by == claire
    with pytest.raises(SupplyError, match=f"kit: kit {kit.number} has no unit left to give"):
        _give(subject, kit.number, claire)
    other = new_subject("TLS")
    with pytest.raises(
        SupplyError, match=f"kit: kit {kit.number} is not dispensed to {other.subject_id}"
    ):
        _give(other, kit.number, claire)


def test_administration_input_is_checked(subject, claire, paul):
    kit = Kit.objects.filter(subject=subject).first()
    with pytest.raises(SupplyError, match="injection_site: 'nose' is not one of"):
        record_administration(
            subject,
            kit.number,
            given_on=_today(),
            given_time=dt.time(9),
            injection_site="nose",
            given_by=claire,
            by=claire,
        )
    with pytest.raises(
        SupplyError, match="given_by: 'paul' is not investigator or coordinator at TLS"
    ):
        record_administration(
            subject,
            kit.number,
            given_on=_today(),
            given_time=dt.time(9),
            injection_site="thigh_left",
            given_by=paul,
            by=claire,
        )
    yesterday = _today() - dt.timedelta(days=1)
    with pytest.raises(
        SupplyError, match=f"given_on: {yesterday.isoformat()} is not between the dispensing"
    ):
        _give(subject, kit.number, claire, when=yesterday)


# --- returns and destruction -----------------------------------------------------------------


def test_an_unused_kit_is_returned_then_destroyed_by_the_pharmacist(subject, tls, claire, pierre):
    first, second = Kit.objects.filter(subject=subject).order_by("number")
    _give(subject, first.number, claire)
    with pytest.raises(SupplyError, match=f"kit {first.number} was given in full"):
        return_kit(tls, first.number, reason="unused", by=claire)
    with pytest.raises(SupplyError, match="reason: a reason is required"):
        return_kit(tls, second.number, reason=" ", by=claire)
    assert (
        return_kit(tls, second.number, reason="syringe dropped, not injected", by=claire).status
        == "returned"
    )
    with pytest.raises(NotAllowed, match="'claire' is not the pharmacist of TLS"):
        destroy_kit(tls, second.number, reason="returned", by=claire)
    assert (
        destroy_kit(tls, second.number, reason="returned unused", by=pierre).status == "destroyed"
    )
    kinds = list(KitEvent.objects.filter(kit__number=second.number).values_list("kind", flat=True))
    assert kinds == ["received", "dispensed", "returned", "destroyed"]
    assert AuditEvent.objects.filter(action="kit.destroyed", reason="returned unused").exists()


def test_a_dispensed_kit_cannot_be_destroyed(subject, tls, pierre):
    kit = Kit.objects.filter(subject=subject).first()
    with pytest.raises(
        SupplyError, match=f"kit: kit {kit.number} is dispensed; it cannot be destroyed"
    ):
        destroy_kit(tls, kit.number, reason="?", by=pierre)


# --- stock -----------------------------------------------------------------------------------


def test_stock_counts_and_warns_before_an_arm_runs_out(ns_dupi, sealed, tls, new_subject, claire):
    today = _today()
    receive_kits(
        tls,
        _unreceived(sealed, "DUPI", 6) + _unreceived(sealed, "PBO", 3),
        expiry=today + dt.timedelta(days=20),
        by=None,
    )
    summary = stock(tls)
    assert (summary.available, summary.expiring_soon, summary.low) == (9, 9, False)
    randomize(new_subject("TLS"), by=claire)  # DUPI row: 4 DUPI kits left, still >= 3
    assert stock(tls).low is False
    randomize(new_subject("TLS"), by=claire)  # PBO row: 1 PBO kit left, below 3
    summary = stock(tls)
    assert (summary.available, summary.dispensed, summary.low) == (5, 4, True)
    Kit.objects.filter(site=tls, status="available").update(expiry=today - dt.timedelta(days=1))
    assert (stock(tls).available, stock(tls).expired) == (0, 5)
