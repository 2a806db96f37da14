"""``randomize``: the next free row of the stratum, the D0 kits, refusals that name the reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from django.utils import timezone

from tests.randomization.trial_world import NCK_ARMS, TLS_ARMS
from trialdesk.audit.models import AuditEvent
from trialdesk.randomization.allocation import randomize, refusal_reasons
from trialdesk.randomization.errors import (
    AllocationRefused,
    NotAllowed,
    StratumExhausted,
    SupplyError,
)
from trialdesk.randomization.models import Allocation, Kit, SealedKit, SealedRow
from trialdesk.screening.models import SubjectStatus

pytestmark = pytest.mark.django_db


def _arm_of_row(subject):
    return SealedRow.objects.get(subject=subject).arm


def _arms_of_kits(numbers):
    return set(SealedKit.objects.filter(kit_number__in=numbers).values_list("arm", flat=True))


def test_it_gives_a_number_and_the_d0_kits_never_the_arm(ns_dupi, stocked, new_subject, claire):
    subject = new_subject("TLS")
    result = randomize(subject, by=claire)
    assert result.randomization_number == "TLS-R001"
    assert result.dispensed_visit == "D0"
    assert len(result.kit_numbers) == 2  # reading A: two syringes at D0, one per kit
    assert "arm" not in {f.name for f in dataclasses.fields(result)}
    assert not any(value in ("DUPI", "PBO") for value in dataclasses.asdict(result).values())
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.RANDOMIZED
    assert _arms_of_kits(result.kit_numbers) == {_arm_of_row(subject)} == {TLS_ARMS[0]}


def test_subjects_take_the_rows_of_their_stratum_in_list_order(
    ns_dupi, stocked, new_subject, claire, paul
):
    tls = [new_subject("TLS") for _ in range(len(TLS_ARMS))]
    nck = [new_subject("NCK") for _ in range(len(NCK_ARMS))]
    numbers = [randomize(s, by=claire).randomization_number for s in tls]
    numbers += [randomize(s, by=paul).randomization_number for s in nck]
    assert numbers == [f"TLS-R{i:03d}" for i in range(1, 7)] + [
        f"NCK-R{i:03d}" for i in range(1, 4)
    ]
    assert [_arm_of_row(s) for s in tls] == TLS_ARMS
    assert [_arm_of_row(s) for s in nck] == NCK_ARMS
    for subject in tls + nck:  # every D0 kit is of the subject's own arm
        kits = Kit.objects.filter(subject=subject).values_list("number", flat=True)
        assert _arms_of_kits(kits) == {_arm_of_row(subject)}


def test_the_allocation_is_audited_without_the_arm(ns_dupi, stocked, new_subject, claire):
    subject = new_subject("TLS")
    randomize(subject, by=claire)
    events = AuditEvent.objects.filter(
        action__in=["randomization.allocate", "kit.dispense", "subject.status", "schedule.plan"]
    )
    assert {e.action for e in events} == {
        "randomization.allocate",
        "kit.dispense",
        "subject.status",
        "schedule.plan",
    }
    allocate = events.get(action="randomization.allocate")
    assert json.loads(allocate.changes)["randomization_number"] == [None, "TLS-R001"]
    assert allocate.username == "claire" and allocate.site == "TLS"
    for event in events:
        assert "DUPI" not in event.changes and "PBO" not in event.changes


def test_a_subject_is_randomized_once(ns_dupi, stocked, new_subject, claire):
    subject = new_subject("TLS")
    randomize(subject, by=claire)
    with pytest.raises(
        AllocationRefused, match=r"subject: TLS-\d+ is already randomized \(TLS-R001\)"
    ):
        randomize(subject, by=claire)
    assert Allocation.objects.filter(subject=subject).count() == 1


def test_a_subject_who_is_not_eligible_is_refused(ns_dupi, stocked, new_subject, claire):
    subject = new_subject("TLS", nasa_total=3)
    with pytest.raises(
        AllocationRefused, match=rf"eligibility: {subject.subject_id} is not eligible"
    ):
        randomize(subject, by=claire)
    assert not SealedRow.objects.filter(subject__isnull=False).exists()


def test_a_subject_whose_eligibility_is_incomplete_is_refused(
    ns_dupi, stocked, new_subject, claire
):
    subject = new_subject("TLS", nasa_total=None)
    with pytest.raises(AllocationRefused, match="eligibility"):
        randomize(subject, by=claire)


def test_a_subject_without_consent_is_refused(ns_dupi, stocked, new_subject, claire):
    subject = new_subject("TLS", consent=False)
    with pytest.raises(
        AllocationRefused, match=rf"consent: {subject.subject_id} has no valid signed consent"
    ):
        randomize(subject, by=claire)


def test_a_withdrawn_consent_is_refused(ns_dupi, stocked, new_subject, claire):
    from trialdesk.screening.services import withdraw_consent

    subject = new_subject("TLS")
    withdraw_consent(subject, reason="changed her mind", by=claire)
    reasons = [r.field for r in refusal_reasons(subject)]
    assert "consent" in reasons
    with pytest.raises(AllocationRefused):
        randomize(subject, by=claire)


def test_an_exhausted_stratum_refuses_naming_the_subject(ns_dupi, stocked, new_subject, paul):
    for _ in NCK_ARMS:
        randomize(new_subject("NCK"), by=paul)
    late = new_subject("NCK")
    with pytest.raises(
        StratumExhausted,
        match=rf"stratum: NCK: all 3 rows .* {late.subject_id} cannot be randomized",
    ):
        randomize(late, by=paul)
    late.refresh_from_db()
    assert late.status == SubjectStatus.ELIGIBLE


def test_no_list_no_randomization(ns_dupi, new_subject, claire):
    subject = new_subject("TLS")
    with pytest.raises(
        AllocationRefused, match="list: study 'ns-dupi' has no sealed randomization list"
    ):
        randomize(subject, by=claire)


def test_a_coordinator_of_another_site_may_not_randomize(
    ns_dupi, stocked, new_subject, paul, manon
):
    subject = new_subject("TLS")
    for user in (paul, manon):
        with pytest.raises(NotAllowed, match="may not randomize at TLS"):
            randomize(subject, by=user)
    assert not Allocation.objects.exists()


def test_day_0_cannot_be_in_the_future(ns_dupi, stocked, new_subject, claire):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    with pytest.raises(
        AllocationRefused, match=f"d0_date: {tomorrow.isoformat()} is in the future"
    ):
        randomize(new_subject("TLS"), by=claire, on=tomorrow)


def test_without_kits_of_the_arm_nothing_is_written(ns_dupi, sealed, new_subject, claire):
    """No half-write: the row, the subject's status and the audit trail stay as they were."""
    subject = new_subject("TLS")
    events = AuditEvent.objects.count()
    with pytest.raises(
        SupplyError, match=rf"kits: no kit available at TLS for {subject.subject_id}'s D0"
    ):
        randomize(subject, by=claire)
    assert not SealedRow.objects.filter(subject__isnull=False).exists()
    assert not Allocation.objects.exists()
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.ELIGIBLE
    assert AuditEvent.objects.count() == events


def test_a_refused_subject_does_not_use_up_a_row(ns_dupi, stocked, new_subject, claire):
    with pytest.raises(AllocationRefused):
        randomize(new_subject("TLS", consent=False), by=claire)
    assert randomize(new_subject("TLS"), by=claire).randomization_number == "TLS-R001"
