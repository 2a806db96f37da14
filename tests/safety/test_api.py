"""``/api/v1/studies/ns-dupi/safety/``: AEs, SAE clocks, lab results, alerts; same policy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.safety.safety_data import ae_data, infection_data, lab_data, serious
from trialdesk.accounts.services import create_api_token
from trialdesk.capture.records import save_form
from trialdesk.safety.models import LabAlert, SaeReport

pytestmark = pytest.mark.django_db

BASE = "/api/v1/studies/ns-dupi/safety"


class Api:
    def __init__(self, client, user):
        self.client = client
        _, self.token = create_api_token(user, "tests", by=user)

    def get(self, path):
        return self.client.get(BASE + path, HTTP_AUTHORIZATION=f"Bearer {self.token}")

    def post(self, path):
        return self.client.post(
            BASE + path,
            {},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.token}",
        )


@pytest.fixture
def as_user(client):
    return lambda user: Api(client, user)


def test_a_subjects_adverse_events(as_user, subject, claire):
    save_form(
        subject, "AE", ae_data("Pneumonia", "2025-03", **serious()), by=claire, visit_code="W2"
    )
    save_form(subject, "INFECT_LOG", infection_data(), by=claire, visit_code="W2")
    response = as_user(claire).get(f"/subjects/{subject.subject_id}/adverse-events")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(e["term"], e["origin"], e["skin_infection"]) for e in body] == [
        ("Skin infection (bacterial)", "infection_log", True),
        ("Pneumonia", "ae_form", False),
    ]
    pneumonia = body[1]
    assert pneumonia["start"] == "2025-03" and pneumonia["start_latest"] == "2025-03-31"
    assert pneumonia["seriousness_criteria"] == ["sae_hospitalisation"]
    assert pneumonia["sae_clock"]["hours_left"] > 23
    assert "arm" not in str(body).lower()


def test_sae_clocks_and_reporting(as_user, subject, paris_subject, claire, paul, diane):
    save_form(subject, "AE", ae_data("Pneumonia", **serious()), by=claire, visit_code="W2")
    report = SaeReport.objects.get()
    assert [c["term"] for c in as_user(claire).get("/sae-clocks").json()] == ["Pneumonia"]
    assert as_user(paul).get("/sae-clocks").json() == []
    assert as_user(paul).get("/sae-clocks?site=TLS").status_code == 404
    assert as_user(paul).post(f"/sae-clocks/{report.pk}/reported").status_code == 404
    assert as_user(diane).post(f"/sae-clocks/{report.pk}/reported").status_code == 403
    done = as_user(claire).post(f"/sae-clocks/{report.pk}/reported")
    assert done.status_code == 200 and done.json()["reported_at"] is not None
    again = as_user(claire).post(f"/sae-clocks/{report.pk}/reported")
    assert again.status_code == 409 and "already" in again.json()["detail"]
    assert as_user(claire).get("/sae-clocks").json() == []
    assert len(as_user(claire).get("/sae-clocks?open=false").json()) == 1


def test_lab_results_and_alerts(as_user, subject, claire, ines, paul, d0):
    data = lab_data(d0, NEUT=(0.4, "10^9/L", 1.8, 7.5), BILI=(1, "mg/dL", None, 1.2))
    save_form(subject, "LAB", data, by=claire, visit_code="D0")
    labs = as_user(claire).get(f"/subjects/{subject.subject_id}/labs").json()
    by_test = {row["test"]: row for row in labs}
    assert (
        Decimal(by_test["BILI"]["value_std"]) == Decimal("17.1")
        and by_test["BILI"]["standard_unit"] == "umol/L"
    )
    assert (by_test["NEUT"]["flag"], by_test["NEUT"]["grade"]) == ("L", 4)
    assert as_user(paul).get(f"/subjects/{subject.subject_id}/labs").status_code == 404
    alert = LabAlert.objects.get()
    assert [a["test"] for a in as_user(claire).get("/alerts").json()] == ["NEUT"]
    assert as_user(paul).get("/alerts").json() == []
    assert as_user(claire).post(f"/alerts/{alert.pk}/acknowledge").status_code == 403
    assert as_user(paul).post(f"/alerts/{alert.pk}/acknowledge").status_code == 404
    done = as_user(ines).post(f"/alerts/{alert.pk}/acknowledge")
    assert done.status_code == 200 and done.json()["acknowledged_by"] == "ines"
    assert as_user(claire).get("/alerts").json() == []
