"""Coordinators saving forms at the same time, each on its own connection: every change is
written and audited once, and the audit chain stays one line (on SQLite through the write lock
of ``trialdesk.db.sqlite3``). See ``tests/randomization/test_concurrency.py`` for the scratch
database and why every database call runs in a worker thread."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.randomization.test_concurrency import (  # noqa: F401 - fixture
    _in_thread,
    scratch_database,
)

REPO = Path(__file__).resolve().parents[2]
COORDINATORS = 8
SAVES = 5


def _world() -> dict[str, Any]:
    from tests.randomization.trial_world import make_subject
    from trialdesk.accounts.services import create_user, grant_role
    from trialdesk.capture.records import save_form
    from trialdesk.capture.schedule import plan_visits
    from trialdesk.protocol.services import load_study_into_db

    study = load_study_into_db(REPO / "studies" / "ns-dupi").study
    site = study.sites.get(code="TLS")
    work = []
    for number in range(COORDINATORS):
        nurse = create_user(f"nurse{number}", "unused-in-this-test-9f3k", check_password=False)
        grant_role(nurse, study, "coordinator", site=site, by=None)
        subject = make_subject(study, "TLS", taker=nurse, consent=False)
        plan_visits(subject, dt.date.today() - dt.timedelta(days=40), by=nurse)
        save_form(subject, "ITCH_PAIN", {"pruritus_score": 0}, by=nurse, visit_code="W2")
        work.append((nurse.pk, subject.pk))
    return {"work": work}


@pytest.mark.django_db
def test_concurrent_saves_are_each_written_and_audited_once_in_one_chain(scratch_database):  # noqa: F811
    from django.db import connections

    from trialdesk.accounts.models import User
    from trialdesk.audit.models import AuditEvent
    from trialdesk.audit.services import verify
    from trialdesk.capture.models import FormRecord
    from trialdesk.capture.records import save_form
    from trialdesk.screening.models import Subject

    world = _in_thread(_world)
    start = threading.Barrier(COORDINATORS)
    errors: list[BaseException] = []

    def coordinator(nurse_pk: int, subject_pk: int) -> None:
        try:
            nurse = User.objects.get(pk=nurse_pk)
            subject = Subject.objects.select_related("study", "site").get(pk=subject_pk)
            start.wait(timeout=30)
            for score in range(1, SAVES + 1):
                save_form(
                    subject,
                    "ITCH_PAIN",
                    {"pruritus_score": score},
                    by=nurse,
                    visit_code="W2",
                    reason=f"correction {score}",
                )
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=coordinator, args=pair) for pair in world["work"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]

    def check() -> None:
        for record in FormRecord.objects.filter(form="ITCH_PAIN", visit_code="W2"):
            assert record.revision == 1 + SAVES
            assert record.values.get(item="pruritus_score").value == SAVES
        changes = AuditEvent.objects.filter(action="form.change")
        assert changes.count() == COORDINATORS * SAVES
        for event in changes:
            assert event.reason.startswith("correction ")
        assert verify().intact

    _in_thread(check)
