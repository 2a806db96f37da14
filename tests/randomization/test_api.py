"""``/api/v1/studies/ns-dupi/randomization/`` and ``/schedule/``: same services, same policy."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.randomization.trial_world import PERSONA_PASSWORD
from trialdesk.accounts.services import create_api_token
from trialdesk.randomization.models import Allocation, Kit

pytestmark = pytest.mark.django_db

BASE = "/api/v1/studies/ns-dupi"


class Api:
    """A test client speaking JSON with a user's bearer token."""

    def __init__(self, client, user):
        self.client = client
        _, self.token = create_api_token(user, "tests", by=user)

    def get(self, path):
        return self.client.get(BASE + path, HTTP_AUTHORIZATION=f"Bearer {self.token}")

    def post(self, path, body=None, raw=None):
        return self.client.post(
            BASE + path,
            raw if raw is not None else (body or {}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.token}",
        )


@pytest.fixture
def as_user(client):
    return lambda user: Api(client, user)


def _today():
    return timezone.localdate().isoformat()


def test_randomize_gives_a_number_and_kits_and_no_arm(as_user, stocked, new_subject, claire):
    subject = new_subject("TLS")
    api = as_user(claire)
    checks = api.get(f"/randomization/subjects/{subject.subject_id}/checks").json()
    assert checks == {"subject_id": subject.subject_id, "may_randomize": True, "refusals": []}
    response = api.post(
        f"/randomization/subjects/{subject.subject_id}/randomize", {"d0_date": _today()}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["randomization_number"] == "TLS-R001" and len(body["kit_numbers"]) == 2
    assert "arm" not in body and "DUPI" not in response.content.decode()
    treatment = api.get(f"/randomization/subjects/{subject.subject_id}").json()
    assert treatment["arm"] is None and treatment["dispensations"][0]["visit"] == "D0"
    assert treatment["compliance"]["units_planned"] == 9


def test_refusals_are_409_naming_subject_and_reason(as_user, stocked, new_subject, claire):
    subject = new_subject("TLS", consent=False)
    api = as_user(claire)
    checks = api.get(f"/randomization/subjects/{subject.subject_id}/checks").json()
    assert checks["may_randomize"] is False and checks["refusals"][0]["field"] == "consent"
    response = api.post(f"/randomization/subjects/{subject.subject_id}/randomize", {})
    assert response.status_code == 409
    assert response.json()["detail"] == f"consent: {subject.subject_id} has no valid signed consent"


def test_bad_input_is_422_naming_the_field_never_500(as_user, stocked, new_subject, claire):
    subject = new_subject("TLS")
    api = as_user(claire)
    url = f"/randomization/subjects/{subject.subject_id}/randomize"
    bad_date = api.post(url, {"d0_date": "2025-02-30"})
    assert bad_date.status_code == 422 and "d0_date" in bad_date.content.decode()
    assert api.post(url, raw="{not json").status_code in (400, 422)
    assert not Allocation.objects.exists()
    api.post(url, {})
    for path, body in [
        (f"/randomization/subjects/{subject.subject_id}/dispense", {"visit": "W99"}),
        (f"/randomization/subjects/{subject.subject_id}/dispense", {"visit": "W2", "on": "soon"}),
        (f"/randomization/subjects/{subject.subject_id}/administrations", {"kit": "abc"}),
        (
            f"/randomization/subjects/{subject.subject_id}/administrations",
            {"kit": 1, "given_on": _today(), "given_time": "09:00", "injection_site": "thigh_left"},
        ),
        (f"/schedule/subjects/{subject.subject_id}/visits/W2/done", {"done_on": "tomorrow"}),
        (f"/schedule/subjects/{subject.subject_id}/visits/W3/done", {"done_on": _today()}),
        (
            f"/schedule/subjects/{subject.subject_id}/discontinue",
            {"kind": "x", "on": _today(), "reason": "r"},
        ),
    ]:
        response = api.post(path, body)
        assert response.status_code == 422, (path, body, response.content)
    w99 = api.post(f"/randomization/subjects/{subject.subject_id}/dispense", {"visit": "W99"})
    assert w99.json()["detail"].startswith("visit: 'W99' is not a dosing visit")


def test_dispense_and_administer(as_user, stocked, new_subject, claire):
    subject = new_subject("TLS")
    api = as_user(claire)
    api.post(f"/randomization/subjects/{subject.subject_id}/randomize", {})
    dispensed = api.post(f"/randomization/subjects/{subject.subject_id}/dispense", {"visit": "W2"})
    assert dispensed.status_code == 201
    (kit,) = dispensed.json()["kits"]
    given = api.post(
        f"/randomization/subjects/{subject.subject_id}/administrations",
        {
            "kit": kit["number"],
            "given_on": _today(),
            "given_time": "10:15",
            "injection_site": "abdomen_right",
            "given_by": "claire",
        },
    )
    assert given.status_code == 201
    assert given.json()["compliance"]["units_given"] == 1


def test_paul_gets_404_for_toulouse_and_a_monitor_403_for_writes(
    as_user, stocked, new_subject, paul, manon
):
    subject = new_subject("TLS")
    for path in (
        f"/randomization/subjects/{subject.subject_id}",
        f"/randomization/subjects/{subject.subject_id}/checks",
        f"/schedule/subjects/{subject.subject_id}",
        "/randomization/sites/TLS/stock",
    ):
        assert as_user(paul).get(path).status_code == 404, path
    assert (
        as_user(paul).post(f"/randomization/subjects/{subject.subject_id}/randomize").status_code
        == 404
    )
    forbidden = as_user(manon).post(f"/randomization/subjects/{subject.subject_id}/randomize", {})
    assert forbidden.status_code == 403
    assert as_user(paul).get("/schedule/worklist?site=TLS").status_code == 404


def test_stock_shows_arms_to_the_pharmacist_only(as_user, stocked, claire, pierre, sealed):
    assert as_user(claire).get("/randomization/sites/TLS/stock").json()["available_by_arm"] is None
    stock = as_user(pierre).get("/randomization/sites/TLS/stock").json()
    assert stock["available_by_arm"] == {"DUPI": 12, "PBO": 12} and stock["available"] == 24
    from trialdesk.randomization.models import SealedKit

    spare = (
        SealedKit.objects.exclude(kit_number__in=Kit.objects.values("number"))
        .values_list("kit_number", flat=True)
        .first()
    )
    body = {"kits": [spare], "expiry": (timezone.localdate() + dt.timedelta(days=30)).isoformat()}
    assert as_user(claire).post("/randomization/sites/TLS/kits", body).status_code == 403
    received = as_user(pierre).post("/randomization/sites/TLS/kits", body)
    assert received.status_code == 201 and received.json() == [
        {"number": spare, "status": "available"}
    ]
    destroyed = as_user(pierre).post(
        f"/randomization/sites/TLS/kits/{spare}/destroy", {"reason": "broken"}
    )
    assert destroyed.json() == {"number": spare, "status": "destroyed"}


def test_unblinding_through_the_api(as_user, stocked, new_subject, claire, ines, diane):
    subject = new_subject("TLS")
    as_user(claire).post(f"/randomization/subjects/{subject.subject_id}/randomize", {})
    api = as_user(ines)
    url = f"/randomization/subjects/{subject.subject_id}/unblind"
    wrong = api.post(url, {"reason": "SAE", "password": "nope"})
    assert wrong.status_code == 422 and wrong.json()["detail"].startswith("password:")
    assert (
        as_user(claire).post(url, {"reason": "SAE", "password": PERSONA_PASSWORD}).status_code
        == 422
    )
    done = api.post(url, {"reason": "SAE", "password": PERSONA_PASSWORD})
    assert done.status_code == 201 and done.json()["arm"]["code"] == "DUPI"
    assert api.get(f"/randomization/subjects/{subject.subject_id}").json()["arm"]["code"] == "DUPI"
    counts = as_user(diane).get("/randomization/unblindings").json()
    assert counts["events"] == 1 and counts["by_site"]["TLS"] == {"events": 1, "subjects": 1}
    assert "DUPI" not in str(counts)


def test_the_schedule_api_records_visits_and_lists_the_worklist(
    as_user, stocked, new_subject, claire
):
    from trialdesk.randomization.allocation import randomize

    subject = new_subject("TLS")
    d0 = timezone.localdate() - dt.timedelta(days=30)
    randomize(subject, by=claire, on=d0)
    api = as_user(claire)
    late = api.post(
        f"/schedule/subjects/{subject.subject_id}/visits/W2/done",
        {"done_on": (d0 + dt.timedelta(days=18)).isoformat()},
    )
    assert late.status_code == 200
    body = late.json()
    w2 = next(v for v in body["visits"] if v["code"] == "W2")
    assert w2["state"] == "done_out_of_window" and body["deviations"][0]["visit"] == "W2"
    worklist = api.get("/schedule/worklist?site=TLS").json()
    assert {(i["visit"], i["state"]) for i in worklist} == {("W4", "due")}
