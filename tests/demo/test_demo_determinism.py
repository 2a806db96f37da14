"""Same seed, same trial: a small demo built twice from an empty database gives the same data."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from django.db import transaction
from django.utils import timezone

from trialdesk.demo.builder import Size, build

pytestmark = pytest.mark.django_db
#: Small enough to build twice in a few seconds; the module test_demo_trial builds the full one.
SMALL = Size({"TLS": 2, "NCK": 1}, {"TLS": 1, "NCK": 0}, cohort=1)


@pytest.fixture(autouse=True)
def _fast(settings, studies_parsed_once):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def canonical_dump():
    """Subjects, visits, form values and adverse events, without database ids or write times."""
    from trialdesk.capture.models import ItemValue, Visit
    from trialdesk.randomization.models import Allocation
    from trialdesk.safety.models import AdverseEvent
    from trialdesk.screening.models import Subject

    return {
        "subjects": sorted(
            Subject.objects.values_list("study__code", "subject_id", "status", "site__code")
        ),
        "allocations": sorted(
            Allocation.objects.values_list("subject__subject_id", "randomization_number", "d0_date")
        ),
        "visits": sorted(
            Visit.objects.values_list(
                "subject__study__code", "subject__subject_id", "code", "status", "done_on"
            )
        ),
        "values": sorted(
            (
                v.record.subject.study.code,
                v.record.subject.subject_id,
                v.record.form,
                v.record.visit_code,
                v.record.number or 0,
                v.item,
                v.state,
                repr(v.value),
            )
            for v in ItemValue.objects.select_related("record__subject__study")
        ),
        "adverse_events": sorted(
            AdverseEvent.objects.values_list(
                "subject__subject_id",
                "term",
                "start",
                "end",
                "serious",
                "aesi_category",
                "severity",
                "ctcae_grade",
                "origin",
            ),
            key=repr,
        ),
    }


_DUMPS: dict[int, dict] = {}


def _build_and_dump(seed):
    with transaction.atomic():
        build(seed, timezone.localdate(), size=SMALL)
        dump = canonical_dump()
        transaction.set_rollback(True)
    return dump


def test_the_same_seed_gives_the_same_trial(monkeypatch):
    """Built by the function, then by the command into an empty database: the same data."""
    import functools

    from trialdesk.demo import builder
    from trialdesk.demo.commands import demo as command

    first = _DUMPS[5] = _build_and_dump(5)
    assert first["values"] and first["adverse_events"]
    monkeypatch.setattr(builder, "build", functools.partial(builder.build, size=SMALL))
    with transaction.atomic():
        result = CliRunner().invoke(command, ["--if-empty", "--seed", "5"])
        assert result.exit_code == 0, result.output
        assert "SYNTHETIC DATA" in result.output
        second = canonical_dump()
        transaction.set_rollback(True)
    assert second == first


def test_another_seed_gives_another_trial():
    first = _DUMPS.get(5) or _build_and_dump(5)
    assert _build_and_dump(6)["values"] != first["values"]


def test_no_banner_without_the_demo(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert "SYNTHETIC DATA" not in response.content.decode()
