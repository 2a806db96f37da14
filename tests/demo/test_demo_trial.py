"""The demo trial, built once for this module through the services (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from trialdesk.demo.builder import build

SEED = 11
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, studies_parsed_once):
    """The full demo (40 screened, 24 randomized, 3 cohort patients), rolled back afterwards."""
    fast = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    mail = "django.core.mail.backends.locmem.EmailBackend"
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=fast, EMAIL_BACKEND=mail),
        transaction.atomic(),
    ):
        yield build(SEED, timezone.localdate())
        transaction.set_rollback(True)


@pytest.fixture
def unblinded(demo):
    from trialdesk.accounts.models import User

    return User.objects.get(username="demo.unblinded.statistician")


def _trial():
    from trialdesk.protocol.models import Study

    return Study.objects.get(code="ns-dupi")


def test_about_forty_are_screened_and_sixteen_fail_with_named_reasons(demo):
    from trialdesk.screening.models import ScreeningEntry

    entries = ScreeningEntry.objects.filter(study=_trial())
    assert demo.screened == entries.count() == 40
    failed = entries.filter(outcome="screen_failed")
    assert failed.count() == 16
    assert all(entry.failure_reasons for entry in failed)
    assert {entry.site.code for entry in entries} == {"TLS", "NCK"}


def test_twenty_four_are_randomized_sixteen_to_eight(demo, unblinded):
    from trialdesk.randomization.models import Allocation
    from trialdesk.randomization.sealing import arm_for

    allocations = Allocation.objects.filter(study=_trial()).select_related("subject")
    arms = [arm_for(unblinded, a.subject).code for a in allocations]
    assert len(arms) == 24
    assert (
        (arms.count("DUPI"), arms.count("PBO")) == (16, 8) == (demo.arms["DUPI"], demo.arms["PBO"])
    )


def test_every_arm_is_the_generated_lists_row(demo, unblinded):
    from trialdesk.protocol import load_study, resolve_study_path
    from trialdesk.randomization.commands import list_inputs
    from trialdesk.randomization.lists import generate
    from trialdesk.randomization.models import Allocation
    from trialdesk.randomization.sealing import arm_for

    inputs = list_inputs(load_study(resolve_study_path("ns-dupi")))
    rows = generate(
        inputs.design,
        seed=SEED,
        per_stratum=30,
        kits_per_subject=inputs.kits_per_subject,
        reserve=inputs.reserve_per_arm,
    ).rows
    arm_of_row = {(row.stratum, row.seq): row.arm for row in rows}
    for allocation in Allocation.objects.filter(study=_trial()).select_related("subject"):
        expected = arm_of_row[(allocation.stratum, allocation.seq)]
        assert arm_for(unblinded, allocation.subject).code == expected, allocation.subject


def test_the_audit_chain_is_intact_after_the_build(demo):
    from trialdesk.audit.services import verify

    verdict = verify()
    assert verdict.intact, str(verdict)
    assert verdict.count > 2000


def test_the_trial_is_in_progress(demo):
    from trialdesk.capture.models import Visit

    visits = Visit.objects.filter(subject__study=_trial(), subject__status="randomized")
    w16 = visits.filter(code="W16", status="done").count()
    w28_planned = visits.filter(code="W28", status="planned").count()
    assert w16 >= 15  # most subjects past W16 (2 of the 24 withdrew)
    assert w28_planned >= 3  # some not yet at W28
    assert (
        visits.filter(
            status="planned", planned_date__lte=timezone.localdate() - dt.timedelta(days=30)
        ).count()
        == 0
    )


def test_dropout_missed_and_out_of_window_visits(demo):
    from trialdesk.capture.models import Discontinuation, ProtocolDeviation, Visit

    assert Discontinuation.objects.filter(subject__study=_trial(), kind="withdrawn").count() == 2
    assert Visit.objects.filter(subject__study=_trial(), status="missed").count() == 1
    assert ProtocolDeviation.objects.filter(visit__subject__study=_trial()).count() >= 1


def test_adverse_events_aesis_one_sae_and_graded_labs(demo):
    from trialdesk.safety.models import AdverseEvent, LabResult, SaeReport

    events = AdverseEvent.objects.filter(study=_trial())
    categories = set(events.filter(aesi=True).values_list("aesi_category", flat=True))
    assert {"conjunctivitis", "injection_site_reaction"} <= categories
    assert events.filter(serious=True).count() == 1
    assert SaeReport.objects.count() == 1
    graded = LabResult.objects.filter(subject__study=_trial(), grade__gte=1)
    assert 1 <= graded.count() <= 40
    assert graded.filter(grade__gte=3).exists()


def test_queries_signatures_and_patient_entered_forms(demo):
    from trialdesk.capture.models import FormRecord, Query, Signature

    queries = Query.objects.filter(record__subject__study=_trial())
    assert queries.filter(status="closed").exists() and queries.filter(status="open").exists()
    assert Signature.objects.filter(subject__study=_trial()).count() >= 10
    patient = FormRecord.objects.filter(subject__study=_trial(), patient_entered=True)
    assert set(patient.values_list("form", flat=True)) == {"ITCH_PAIN", "DLQI"}


def test_every_scheduled_assessment_has_data(demo):
    from trialdesk.capture.models import FormRecord

    forms = set(FormRecord.objects.filter(subject__study=_trial()).values_list("form", flat=True))
    assert forms >= {
        "NASA",
        "ITCH_PAIN",
        "INFECT",
        "INFECT_LOG",
        "TCS",
        "DLQI",
        "BIOPSY",
        "SWAB",
        "MARKERS",
        "TEWL",
        "LAB",
        "IGE",
        "SIGE",
        "AE",
        "CM",
        "DRUG",
    }


def test_the_cohort_child_ige_falls_from_1078_to_56(demo):
    from trialdesk.capture.models import FormRecord
    from trialdesk.capture.records import values_of
    from trialdesk.screening.models import Subject

    cohort = Subject.objects.filter(study__code="ns-cohort")
    assert cohort.count() == 3 == demo.cohort
    child = cohort.get(subject_id="TLS-001")
    records = FormRecord.objects.filter(subject=child, form="IGE")
    ige = {r.visit_code: float(values_of(r)["total_ige"]) for r in records}
    assert ige["BL"] == 1078 and ige["M12"] == 56
    products = {
        values_of(r)["product"] for r in FormRecord.objects.filter(subject=child, form="TREATMENT")
    }
    assert products == {"ivig", "dupilumab"}
    from trialdesk.capture.models import Visit

    done = {v.code: v.done_on for v in Visit.objects.filter(subject=child, status="done")}
    assert set(done) == set(ige) and done["BL"] + dt.timedelta(days=365) == done["M12"]


def test_every_page_says_synthetic_data(demo, client):
    response = client.get("/login/", follow=True)
    assert response.status_code == 200
    assert "SYNTHETIC DATA" in response.content.decode()


def test_demo_refuses_a_study_with_subjects_and_if_empty_exits_quietly(demo):
    from trialdesk.demo.commands import demo as command
    from trialdesk.screening.models import Subject

    before = Subject.objects.count()
    refused = CliRunner().invoke(command, [])
    assert refused.exit_code == 1
    assert "already has subjects" in refused.output
    quiet = CliRunner().invoke(command, ["--if-empty"])
    assert quiet.exit_code == 0 and quiet.output == ""
    assert Subject.objects.count() == before
