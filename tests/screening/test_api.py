"""``/api/v1/studies/{study}/screening/``: same services, same policy; 4xx naming the field for
bad input, never a 5xx."""

from __future__ import annotations

import json

import pytest

from tests.screening.screening_data import CRITERIA, eligible_data
from trialdesk.accounts.services import create_api_token
from trialdesk.screening import services
from trialdesk.screening.models import ConsentRecord, Subject

pytestmark = pytest.mark.django_db

BASE = "/api/v1/studies/ns-dupi/screening"
IDENTITY = {"first_name": "Jeanne", "last_name": "Durand", "phone": "", "email": "j@example.org"}


class Api:
    """A client that calls the API with one user's token."""

    def __init__(self, client, user):
        self.client = client
        _, token = create_api_token(user, "tests", by=user)
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def get(self, path, **extra):
        return self.client.get(BASE + path, **self.headers, **extra)

    def post(self, path, body, **extra):
        data = body if isinstance(body, str) else json.dumps(body)
        return self.client.post(
            BASE + path, data, content_type="application/json", **self.headers, **extra
        )


def _screen(api, **changes):
    return api.post(
        "/subjects", {"site": "TLS", "data": eligible_data(**changes), "identity": IDENTITY}
    )


def test_screening_a_person_returns_the_subject_and_verdict(client, claire, ns_dupi):
    api = Api(client, claire)
    response = _screen(api, nasa_total=4)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["subject_id"] == "TLS-001" and body["screening_number"] == "TLS-S001"
    assert body["status"] == "screening" and body["eligible"] is False
    assert body["identity"]["last_name"] == "Durand"
    (assessment,) = body["assessments"]
    assert assessment["verdict"] == "not_eligible"
    assert [c["id"] for c in assessment["criteria"]] == CRITERIA
    inc04 = assessment["criteria"][3]
    assert inc04["result"] == "not_met" and inc04["message"].startswith("Not met")
    french = api.get("/subjects/TLS-001", HTTP_ACCEPT_LANGUAGE="fr").json()
    assert french["assessments"][0]["criteria"][3]["message"].startswith("Non rempli")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"nasa_total": 13}, "nasa_total: 13 is above the maximum 12"),
        ({"birth_date": "1990-02-30"}, "birth_date: '1990-02-30' is not a date"),
        ({"nasa_total": "7"}, "nasa_total: '7' is not an integer"),
        ({"shoe_size": 42}, "shoe_size: 42 is given for an unknown key"),
    ],
)
def test_bad_screening_data_is_422_naming_the_field(client, claire, ns_dupi, changes, expected):
    response = _screen(Api(client, claire), **changes)
    assert response.status_code == 422
    assert expected in response.json()["detail"]
    assert not Subject.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        '{"site": "TLS"}',
        '{"site": "TLS", "data": [1, 2]}',
        '{"site": 5, "data": {}}',
        '{"site": "TLS", "data": {}, "identity": {"first_name": "A"}}',
    ],
)
def test_malformed_bodies_are_4xx_never_5xx(client, claire, ns_dupi, body):
    response = Api(client, claire).post("/subjects", body)
    assert 400 <= response.status_code < 500, response.content
    assert not Subject.objects.exists()


def test_an_empty_identity_name_is_422(client, claire, ns_dupi):
    api = Api(client, claire)
    response = api.post(
        "/subjects",
        {"site": "TLS", "data": eligible_data(), "identity": {**IDENTITY, "last_name": " "}},
    )
    assert response.status_code == 422
    assert "last_name: is required" in response.json()["detail"]


def test_paul_cannot_see_or_act_on_a_toulouse_subject(client, claire, paul, ns_dupi, tls):
    services.screen(ns_dupi, tls, eligible_data(), by=claire)
    api = Api(client, paul)
    assert api.get("/subjects/TLS-001").status_code == 404
    assert api.post("/subjects/TLS-001/assessments", {"data": eligible_data()}).status_code == 404
    assert api.post("/subjects/TLS-001/screen-failure", {"reasons": ["INC04"]}).status_code == 404
    assert (
        api.post(
            "/subjects/TLS-001/consents", {"document_id": 1, "signed_at": "2025-03-15T10:00:00"}
        ).status_code
        == 404
    )
    assert _screen(api).status_code == 404  # the TLS site is not visible to him
    assert [e["site"] for e in api.get("/log").json()] == []
    assert api.get("/log?site=TLS").status_code == 404


def test_a_monitor_reads_but_may_not_write(client, claire, manon, ns_dupi, tls):
    services.screen(ns_dupi, tls, eligible_data(), by=claire, identity=IDENTITY)
    api = Api(client, manon)
    body = api.get("/subjects/TLS-001").json()
    assert body["subject_id"] == "TLS-001" and body["identity"] is None
    response = api.post("/subjects/TLS-001/assessments", {"data": eligible_data()})
    assert response.status_code == 403
    assert _screen(api).status_code == 403


@pytest.mark.parametrize("persona", ["manon", "simon", "ugo", "sophie", "diane", "pierre"])
def test_identity_is_null_for_other_roles(client, request, claire, ns_dupi, tls, persona):
    services.screen(ns_dupi, tls, eligible_data(), by=claire, identity=IDENTITY)
    response = Api(client, request.getfixturevalue(persona)).get("/subjects/TLS-001")
    assert response.status_code == 200
    assert response.json()["identity"] is None
    assert "Durand" not in response.content.decode()


def test_the_log_lists_failures_with_reasons(client, claire, diane, ns_dupi, tls):
    failed = services.screen(ns_dupi, tls, eligible_data(nasa_total=3), by=claire).subject
    api = Api(client, claire)
    response = api.post(f"/subjects/{failed.subject_id}/screen-failure", {"reasons": ["INC04"]})
    assert response.status_code == 200 and response.json()["outcome"] == "screen_failed"
    bad = api.post(f"/subjects/{failed.subject_id}/screen-failure", {"reasons": ["INC04"]})
    assert bad.status_code == 422
    log = Api(client, diane).get("/log").json()
    assert log == [
        {
            "screening_number": "TLS-S001",
            "site": "TLS",
            "screening_date": "2025-03-15",
            "subject_id": "TLS-001",
            "outcome": "screen_failed",
            "failure_reasons": ["INC04"],
            "failure_note": "",
        }
    ]


def test_reassessment_adds_an_assessment(client, claire, ns_dupi, tls):
    services.screen(ns_dupi, tls, eligible_data(nasa_total=None), by=claire)
    response = Api(client, claire).post("/subjects/TLS-001/assessments", {"data": eligible_data()})
    assert response.status_code == 201
    body = response.json()
    assert [a["verdict"] for a in body["assessments"]] == ["incomplete", "eligible"]
    assert body["eligible"] is True and body["status"] == "eligible"


def test_consent_through_the_api(client, claire, ines, ns_dupi, tls, consent_fr):
    services.screen(ns_dupi, tls, eligible_data(), by=claire)
    api = Api(client, claire)
    assert [d["version"] for d in api.get("/consent-documents").json()] == ["1.0"]
    refused = api.post(
        "/subjects/TLS-001/consents",
        {"document_id": consent_fr.pk, "signed_at": "2023-06-01T10:00:00+02:00"},
    )
    assert refused.status_code == 422 and "not valid on 2023-06-01" in refused.json()["detail"]
    stranger = api.post(
        "/subjects/TLS-001/consents",
        {"document_id": consent_fr.pk, "signed_at": "2025-03-15T10:00:00", "obtained_by": "paul"},
    )
    assert stranger.status_code == 422 and "obtained_by: 'paul'" in stranger.json()["detail"]
    done = api.post(
        "/subjects/TLS-001/consents",
        {
            "document_id": consent_fr.pk,
            "signed_at": "2025-03-15T10:00:00+01:00",
            "obtained_by": "ines",
        },
    )
    assert done.status_code == 201
    assert done.json()["consented"] is True
    assert ConsentRecord.objects.get().obtained_by == ines
    withdrawn = api.post("/subjects/TLS-001/consents/withdraw", {"reason": "moved"})
    assert withdrawn.status_code == 200
    assert withdrawn.json()["consented"] is False and withdrawn.json()["status"] == "withdrawn"


def test_an_unknown_study_is_404(client, claire, ns_dupi):
    response = Api(client, claire).client.get(
        "/api/v1/studies/nope/screening/log", **Api(client, claire).headers
    )
    assert response.status_code == 404


def test_the_openapi_schema_lists_the_screening_endpoints(client, claire, ns_dupi):
    schema = client.get("/api/v1/openapi.json").json()
    base = "/api/v1/studies/{study}/screening"
    assert f"{base}/subjects" in schema["paths"]
    assert f"{base}/subjects/{{subject_id}}/consents" in schema["paths"]


def test_a_changed_study_file_is_409_not_500(client, claire, ns_dupi, tls, monkeypatch):
    from trialdesk.protocol.definitions import StudyDefinitionUnavailable

    services.screen(ns_dupi, tls, eligible_data(nasa_total=None), by=claire)

    def unavailable(study):
        raise StudyDefinitionUnavailable("version: the study file has changed since it was loaded")

    monkeypatch.setattr(services, "study_definition", unavailable)
    api = Api(client, claire)
    assert _screen(api).status_code == 409
    response = api.post("/subjects/TLS-001/assessments", {"data": eligible_data()})
    assert response.status_code == 409 and "has changed" in response.json()["detail"]
    assert api.post("/subjects/TLS-001/screen-failure", {"reasons": []}).status_code == 409
