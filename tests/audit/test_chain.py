"""The audit trail: append-only on both databases, hash-chained, verified, transactional."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from django.db import DatabaseError, IntegrityError, connection, connections, transaction

from trialdesk.audit.models import AuditEvent, AuditHead
from trialdesk.audit.services import AuditError, record, verify

pytestmark = pytest.mark.django_db


def _events(n):
    for i in range(n):
        with transaction.atomic():
            record(
                "test.event",
                entity_type="thing",
                entity_id=i,
                study="ns-dupi",
                site="TLS",
                changes={"value": [i, i + 1]},
                reason=f"reason {i}",
            )


def test_it_chains_each_event_to_the_one_before():
    _events(3)
    events = list(AuditEvent.objects.filter(action="test.event"))
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert AuditHead.objects.get().last_hash == AuditEvent.objects.last().hash


def test_verify_says_intact_with_count_and_head():
    _events(4)
    verdict = verify()
    assert verdict.intact
    assert verdict.count == AuditEvent.objects.count()
    assert verdict.head_hash == AuditEvent.objects.last().hash
    assert str(verdict).startswith(f"intact: {verdict.count} events, head {verdict.head_hash}")


def test_it_refuses_to_record_outside_a_transaction(monkeypatch):
    # pytest-django wraps each test in a transaction; pretend we are outside one.
    monkeypatch.setattr(connections["default"], "in_atomic_block", False)
    with pytest.raises(AuditError, match="inside the change's transaction"):
        record("test.event")


def test_update_of_an_event_is_refused_by_the_database():
    _events(1)
    event = AuditEvent.objects.last()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    assert AuditEvent.objects.get(pk=event.pk).reason == "reason 0"


def test_delete_of_an_event_is_refused_by_the_database():
    _events(1)
    event = AuditEvent.objects.last()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def _tamper(event_id, reason):
    """Edit a stored row behind the application's back (as a DBA could, triggers off)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER audit_event_no_update")  # rolled back with the test
            cursor.execute(
                "UPDATE audit_auditevent SET reason = %s WHERE id = %s", [reason, event_id]
            )
        else:
            cursor.execute("SET session_replication_role = replica")  # superuser: triggers off
            cursor.execute(
                "UPDATE audit_auditevent SET reason = %s WHERE id = %s", [reason, event_id]
            )
            cursor.execute("SET session_replication_role = origin")


def test_verify_finds_a_row_edited_behind_the_applications_back():
    _events(5)
    target = AuditEvent.objects.filter(action="test.event").order_by("id")[2]
    _tamper(target.pk, "nothing to see here")
    verdict = verify()
    assert not verdict.intact
    assert verdict.broken_id == target.pk
    assert f"#{target.pk}" in str(verdict)


def test_audit_verify_command_exits_1_on_a_broken_chain():
    _events(2)
    target = AuditEvent.objects.filter(action="test.event").last()
    _tamper(target.pk, "changed")
    from trialdesk.audit.commands import audit

    result = CliRunner().invoke(audit, ["verify"])
    assert result.exit_code == 1
    assert f"BROKEN at event #{target.pk}" in result.output


def test_a_second_event_cannot_follow_the_same_predecessor():
    _events(1)
    last = AuditEvent.objects.last()
    clone = AuditEvent(
        id=last.id + 100,
        at=last.at,
        action="fork",
        changes="{}",
        app_version="x",
        prev_hash=last.prev_hash,
        hash="f" * 64,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save(force_insert=True)


def test_a_failing_audit_write_rolls_the_change_back(claire, ns_dupi, monkeypatch):
    from trialdesk.accounts.models import Membership
    from trialdesk.accounts.services import grant_role
    from trialdesk.audit import services

    def broken_save(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(services.AuditEvent, "save", broken_save)
    before = Membership.objects.count()
    with pytest.raises(DatabaseError, match="disk full"):
        grant_role(claire, ns_dupi, "investigator", site=ns_dupi.sites.get(code="TLS"), by=None)
    assert Membership.objects.count() == before
