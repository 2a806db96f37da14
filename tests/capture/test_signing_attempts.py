"""Wrong signing passwords are audited and, after the lockout limit, block signing for a while."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.conf import settings
from django.utils import timezone

from tests.randomization.trial_world import PERSONA_PASSWORD
from trialdesk.audit.models import AuditEvent
from trialdesk.capture import signatures
from trialdesk.capture.models import Signature
from trialdesk.capture.records import save_form

pytestmark = pytest.mark.django_db

DLQI = {f"dlqi_q{i}": 1 for i in range(1, 11)}


@pytest.fixture
def subject(planned_subject, claire):
    save_form(planned_subject, "DLQI", DLQI, by=claire, visit_code="D0", complete=True)
    return planned_subject


def _wrong(subject, ines, times):
    for _ in range(times):
        with pytest.raises(signatures.WrongPassword):
            signatures.sign(subject, by=ines, password="not-my-password", visit_code="D0")


def test_a_wrong_password_is_audited_and_signs_nothing(subject, ines):
    _wrong(subject, ines, 2)
    events = AuditEvent.objects.filter(action=signatures.PASSWORD_REFUSED).order_by("id")
    assert [json.loads(e.changes)["attempt"] for e in events] == [1, 2]
    assert {e.username for e in events} == {ines.username}
    assert events[0].entity_id == str(subject.pk) and events[0].site == subject.site.code
    assert not Signature.objects.exists()


def test_the_limit_blocks_even_the_right_password_until_the_window_passes(subject, ines):
    limit = settings.AXES_FAILURE_LIMIT
    _wrong(subject, ines, limit - 1)
    _wrong(subject, ines, 1)  # the limit-th wrong password is still only "wrong"
    with pytest.raises(signatures.SigningBlocked, match=f"{limit} wrong passwords in a row"):
        signatures.sign(subject, by=ines, password=PERSONA_PASSWORD, visit_code="D0")
    assert not Signature.objects.exists()
    # The block lasts the window after the limit-th most recent refusal.
    assert AuditEvent.objects.filter(action=signatures.PASSWORD_REFUSED).count() == limit
    later = timezone.now() + signatures.BLOCK_WINDOW + dt.timedelta(seconds=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: later)
        signature = signatures.sign(subject, by=ines, password=PERSONA_PASSWORD, visit_code="D0")
    assert signature.pk is not None


def test_a_signature_resets_the_count(subject, ines):
    limit = settings.AXES_FAILURE_LIMIT
    _wrong(subject, ines, limit - 1)
    signatures.sign(subject, by=ines, password=PERSONA_PASSWORD, visit_code="D0")
    _wrong(subject, ines, limit - 1)
    assert len(signatures._recent_refusals(ines)) == limit - 1
    signatures.sign(subject, by=ines, password=PERSONA_PASSWORD)  # casebook: not blocked


def test_other_signers_are_not_blocked(subject, ines, request):
    _wrong(subject, ines, settings.AXES_FAILURE_LIMIT)
    with pytest.raises(signatures.SigningBlocked):
        signatures.sign(subject, by=ines, password=PERSONA_PASSWORD, visit_code="D0")
    assert signatures._recent_refusals(request.getfixturevalue("claire")) == []


def test_the_block_is_worded_in_the_pages_language(subject, ines):
    from django.utils import translation

    from trialdesk.web.refusals import refusal

    limit = settings.AXES_FAILURE_LIMIT
    _wrong(subject, ines, limit)
    with pytest.raises(signatures.SigningBlocked) as caught:
        signatures.sign(subject, by=ines, password=PERSONA_PASSWORD, visit_code="D0")
    with translation.override("fr"):
        french = refusal(caught.value)
    with translation.override("en"):
        english = refusal(caught.value)
    assert french.startswith(
        f"Mot de passe : {limit} mots de passe erronés de suite : la signature est bloquée jusqu'à "
    )
    assert english.startswith(f"Password: {limit} wrong passwords in a row: signing is blocked")
