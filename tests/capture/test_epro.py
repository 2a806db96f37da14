"""Patient questionnaires: one-time links, expiry, the anonymous page, answers saved and audited."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.capture.conftest import d0, planned_subject  # noqa: F401 - fixtures
from trialdesk.audit.models import AuditEvent
from trialdesk.capture import epro
from trialdesk.capture.models import FormRecord, PatientLink
from trialdesk.capture.records import values_of

pytestmark = pytest.mark.django_db

DLQI = {f"DLQI.dlqi_q{i}": "2" for i in range(1, 11)}
ITCH = {"ITCH_PAIN.pruritus_score": "6.5", "ITCH_PAIN.pain_score": "3"}


def _answers():
    return {
        "DLQI": {f"dlqi_q{i}": "2" for i in range(1, 11)},
        "ITCH_PAIN": {"pruritus_score": "6.5", "pain_score": "3"},
    }


def test_the_token_is_random_and_only_its_hash_is_stored(planned_subject, claire):  # noqa: F811
    issued = epro.issue_link(planned_subject, "D0", by=claire)
    other = epro.issue_link(planned_subject, "D0", by=claire)
    assert issued.token != other.token
    assert len(issued.token) >= 43  # 32 random bytes in URL-safe base64
    link = PatientLink.objects.get(pk=issued.link.pk)
    assert link.token_sha256 == epro.token_hash(issued.token) != issued.token
    assert issued.token not in str(PatientLink.objects.values().get(pk=link.pk))
    assert link.expires_at - link.created_at >= dt.timedelta(hours=71, minutes=59)


def test_the_patient_forms_of_a_visit_come_from_the_study_file(planned_subject):  # noqa: F811
    from trialdesk.capture.records import definition_of

    definition = definition_of(planned_subject.study)
    assert [f.code for f in epro.patient_forms(definition, "D0")] == ["ITCH_PAIN", "DLQI"]
    assert [f.code for f in epro.patient_forms(definition, "W2")] == ["ITCH_PAIN"]


def test_only_site_staff_issue_links(planned_subject, paul):  # noqa: F811
    with pytest.raises(epro.EproError, match="site"):
        epro.issue_link(planned_subject, "D0", by=paul)


def test_answers_land_in_the_visits_forms_marked_and_audited(planned_subject, claire):  # noqa: F811
    issued = epro.issue_link(planned_subject, "D0", by=claire)
    epro.submit(issued.token, _answers())
    dlqi = FormRecord.objects.get(subject=planned_subject, form="DLQI", visit_code="D0")
    itch = FormRecord.objects.get(subject=planned_subject, form="ITCH_PAIN", visit_code="D0")
    assert dlqi.patient_entered and itch.patient_entered and dlqi.completed
    assert values_of(dlqi)["dlqi_total"] == 20
    assert float(values_of(itch)["pruritus_score"]) == 6.5
    event = AuditEvent.objects.get(action="epro.submit")
    assert event.user_id is None
    assert event.username == f"patient via link {issued.link.prefix}"
    saves = AuditEvent.objects.filter(action="form.create", entity_id=str(dlqi.pk))
    assert saves.get().user_id is None


def test_a_link_works_once(planned_subject, claire):  # noqa: F811
    issued = epro.issue_link(planned_subject, "D0", by=claire)
    epro.submit(issued.token, _answers())
    with pytest.raises(epro.LinkUnavailable):
        epro.submit(issued.token, _answers())
    with pytest.raises(epro.LinkUnavailable):
        epro.open_link(issued.token)


def test_a_link_expires(planned_subject, claire, settings):  # noqa: F811
    settings.EPRO_LINK_HOURS = 2
    issued = epro.issue_link(planned_subject, "D0", by=claire)
    later = timezone.now() + dt.timedelta(hours=2, seconds=1)
    epro.open_link(issued.token, now=later - dt.timedelta(seconds=2))
    with pytest.raises(epro.LinkUnavailable):
        epro.open_link(issued.token, now=later)
    with pytest.raises(epro.LinkUnavailable):
        epro.submit(issued.token, _answers(), now=later)


def test_a_refused_answer_keeps_the_link_usable(planned_subject, claire):  # noqa: F811
    issued = epro.issue_link(planned_subject, "D0", by=claire)
    answers = _answers()
    answers["DLQI"]["dlqi_q1"] = "7"
    with pytest.raises(Exception, match="dlqi_q1"):
        epro.submit(issued.token, answers)
    assert not FormRecord.objects.filter(subject=planned_subject).exists()
    epro.submit(issued.token, _answers())
    assert FormRecord.objects.filter(subject=planned_subject, patient_entered=True).count() == 2


def test_the_patient_page_shows_questions_and_nothing_else(client, planned_subject, claire):  # noqa: F811
    issued = epro.issue_link(planned_subject, "D0", by=claire, language="fr")
    page = client.get(issued.path).content.decode()
    assert "DLQI.dlqi_q10" in page and "ITCH_PAIN.pruritus_score" in page
    assert "Démangeaisons" in page and "Envoyer mes réponses" in page
    for secret in (planned_subject.subject_id, planned_subject.site.code, "NASA", "ns-dupi"):
        assert secret not in page, secret
    assert "Itchy" in client.get(issued.path + "?lang=en").content.decode()


def test_the_patient_page_saves_once_then_404(client, planned_subject, claire):  # noqa: F811
    issued = epro.issue_link(planned_subject, "D0", by=claire)
    response = client.post(issued.path, {**DLQI, **ITCH})
    assert response.status_code == 200 and 'data-testid="thanks"' in response.content.decode()
    assert FormRecord.objects.filter(patient_entered=True).count() == 2
    again = client.post(issued.path, {**DLQI, **ITCH})
    assert again.status_code == 404


def test_a_refused_answer_on_the_page_is_a_400_naming_the_item(client, planned_subject, claire):  # noqa: F811
    issued = epro.issue_link(planned_subject, "D0", by=claire)
    response = client.post(issued.path, {**DLQI, **ITCH, "ITCH_PAIN.pain_score": "11"})
    assert response.status_code == 400
    assert "pain_score" in response.content.decode()
    assert client.get(issued.path).status_code == 200


def test_wrong_used_and_expired_tokens_look_the_same(client, planned_subject, claire, settings):  # noqa: F811
    wrong = client.get("/p/not-a-token/")
    used = epro.issue_link(planned_subject, "D0", by=claire)
    epro.submit(used.token, _answers())
    settings.EPRO_LINK_HOURS = 0
    expired = epro.issue_link(planned_subject, "W2", by=claire)
    pages = [wrong, client.get(used.path), client.get(expired.path)]
    assert {page.status_code for page in pages} == {404}
    assert len({page.content for page in pages}) == 1
    assert planned_subject.subject_id.encode() not in wrong.content


def test_the_issue_page_shows_the_link_and_qr_once(client, planned_subject, claire, paul):  # noqa: F811
    url = reverse("epro:issue", args=["ns-dupi", planned_subject.subject_id])
    client.force_login(claire)
    casebook = reverse("capture:casebook", args=["ns-dupi", planned_subject.subject_id])
    assert url in client.get(casebook).content.decode()
    response = client.post(url, {"visit": "D0", "language": "fr"})
    page = response.content.decode()
    assert response.status_code == 200 and "<svg" in page and "/p/" in page
    link = PatientLink.objects.get()
    assert AuditEvent.objects.filter(action="epro.issue", entity_id=str(link.pk)).exists()
    assert "/p/" not in client.get(url).content.decode()
    client.force_login(paul)
    assert client.get(url).status_code == 404


def test_the_claim_is_a_conditional_update(planned_subject, claire, monkeypatch):  # noqa: F811
    """A submission that found the link unused loses to one that used it meanwhile."""
    issued = epro.issue_link(planned_subject, "D0", by=claire)
    stale = epro.open_link(issued.token)
    PatientLink.objects.filter(pk=stale.pk).update(used_at=timezone.now())
    monkeypatch.setattr(epro, "open_link", lambda token, now=None: stale)
    with pytest.raises(epro.LinkUnavailable):
        epro.submit(issued.token, _answers())
    assert not FormRecord.objects.filter(subject=planned_subject).exists()
