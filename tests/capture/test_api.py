"""``/api/v1/studies/ns-dupi/capture/``: the same checks as the pages, 4xx naming the item."""

from __future__ import annotations

import pytest

from trialdesk.accounts.services import create_api_token
from trialdesk.capture import locks
from trialdesk.capture.models import FormRecord, ItemValue, Query
from trialdesk.capture.records import save_form

pytestmark = pytest.mark.django_db

BASE = "/api/v1/studies/ns-dupi/capture"
DLQI = {f"dlqi_q{i}": 1 for i in range(1, 11)}


class Api:
    def __init__(self, client, user):
        self.client = client
        _, self.token = create_api_token(user, "tests", by=user)

    def _call(self, method, path, body=None, raw=None):
        return getattr(self.client, method)(
            BASE + path,
            raw if raw is not None else (body if body is not None else {}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.token}",
        )

    def get(self, path):
        return self.client.get(BASE + path, HTTP_AUTHORIZATION=f"Bearer {self.token}")

    def put(self, path, body=None, raw=None):
        return self._call("put", path, body, raw)

    def post(self, path, body=None, raw=None):
        return self._call("post", path, body, raw)


@pytest.fixture
def as_user(client):
    return lambda user: Api(client, user)


def _dlqi_path(subject):
    return f"/subjects/{subject.subject_id}/visits/D0/forms/DLQI"


def test_save_and_read_a_visit_form(as_user, subject, claire):
    api = as_user(claire)
    response = api.put(_dlqi_path(subject), {"values": DLQI, "complete": True})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "complete" and body["values"]["dlqi_total"] == 10
    assert body["study_version"] == "1.0"
    assert api.get(_dlqi_path(subject)).json()["values"]["dlqi_q1"] == 1
    changed = api.put(_dlqi_path(subject), {"values": {"dlqi_q1": 3}})
    assert changed.status_code == 422 and "reason" in changed.json()["detail"]
    changed = api.put(_dlqi_path(subject), {"values": {"dlqi_q1": 3}, "reason": "typo"})
    assert changed.json()["values"]["dlqi_total"] == 12


@pytest.mark.parametrize(
    ("values", "item"),
    [
        ({"nasa_total": 13}, "nasa_total"),
        ({"nasa_total": "x"}, "nasa_total"),
        ({"nasa_total": 7, "nope": 1}, "nope"),
        ({"nasa_total": {"state": "unknown"}}, "nasa_total"),
        ({"nasa_total": [1, 2]}, "nasa_total"),
    ],
)
def test_bad_input_is_a_422_naming_the_item_and_nothing_is_written(
    as_user, subject, claire, values, item
):
    response = as_user(claire).put(
        f"/subjects/{subject.subject_id}/visits/D0/forms/NASA", {"values": values}
    )
    assert response.status_code == 422, response.content
    assert response.json()["detail"].startswith(f"{item}:")
    assert not FormRecord.objects.exists() and not ItemValue.objects.exists()


def test_malformed_json_is_4xx_never_5xx(as_user, subject, claire):
    api = as_user(claire)
    for raw in ("{", '{"values": 3}', '{"values": {"nasa_total": 5}, "complete": "maybe"}'):
        response = api.put(f"/subjects/{subject.subject_id}/visits/D0/forms/NASA", raw=raw)
        assert 400 <= response.status_code < 500, (raw, response.status_code)
    assert api.put(f"/subjects/{subject.subject_id}/visits/W99/forms/NASA", {}).status_code == 422
    assert api.put(f"/subjects/{subject.subject_id}/visits/D0/forms/NOPE", {}).status_code == 422
    assert not FormRecord.objects.exists()


def test_a_hard_check_is_a_422_naming_the_item(as_user, subject, claire, d0):
    values = {"ae_term": "Rash", "ae_start_date": "2025-03-10", "ae_end_date": "2025-03-01"}
    response = as_user(claire).post(
        f"/subjects/{subject.subject_id}/records/AE", {"values": values}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("ae_end_date:")
    assert "AE_END_BEFORE_START" in response.json()["detail"]


def test_repeating_records_are_created_and_changed(as_user, subject, claire):
    api = as_user(claire)
    first = api.post(
        f"/subjects/{subject.subject_id}/records/CM", {"values": {"cm_name": "Emollient"}}
    )
    assert first.status_code == 201 and first.json()["number"] == 1
    second = api.put(
        f"/subjects/{subject.subject_id}/records/CM/1",
        {"values": {"cm_name": "Cold cream"}, "reason": "name"},
    )
    assert second.json()["values"]["cm_name"] == "Cold cream"
    assert api.get(f"/subjects/{subject.subject_id}/records").json()[0]["form"] == "CM"


def test_soft_check_query_and_its_lifecycle(as_user, subject, claire, manon):
    site = as_user(claire)
    saved = site.put(
        f"/subjects/{subject.subject_id}/visits/D0/forms/NASA", {"values": {"nasa_total": 4}}
    )
    assert any(q["check_id"] == "NASA_D0_BELOW_INCLUSION" for q in saved.json()["queries"])
    monitor = as_user(manon)
    raised = monitor.post(
        f"/records/{saved.json()['id']}/queries", {"item": "nasa_total", "text": "?"}
    )
    assert raised.status_code == 201
    query_id = raised.json()["id"]
    assert site.post(f"/queries/{query_id}/close", {}).status_code == 403
    assert (
        site.post(f"/queries/{query_id}/answer", {"text": "source checked"}).json()["status"]
        == "answered"
    )
    assert monitor.post(f"/queries/{query_id}/close", {}).json()["status"] == "closed"
    assert monitor.post(f"/queries/{query_id}/bogus", {}).status_code == 404
    listed = monitor.get("/queries?status=closed").json()
    assert [q["id"] for q in listed] == [query_id]


def test_a_locked_record_refuses_api_writes(as_user, subject, claire, diane):
    record = save_form(subject, "DLQI", DLQI, by=claire, visit_code="D0", complete=True).record
    locks.lock_record(record, by=diane)
    response = as_user(claire).put(_dlqi_path(subject), {"values": {"dlqi_q1": 3}, "reason": "x"})
    assert response.status_code == 409 and "locked" in response.json()["detail"]
    assert record.values.get(item="dlqi_q1").value == 1


def test_paul_gets_404_for_toulouse(as_user, subject, claire, paul):
    record = save_form(subject, "NASA", {"nasa_total": 4}, by=claire, visit_code="D0").record
    api = as_user(paul)
    assert api.get(_dlqi_path(subject)).status_code == 404
    assert api.put(_dlqi_path(subject), {"values": DLQI}).status_code == 404
    assert api.get(f"/subjects/{subject.subject_id}/records").status_code == 404
    query = Query.objects.filter(record=record).first()
    assert api.post(f"/queries/{query.pk}/answer", {"text": "x"}).status_code == 404
    assert api.post(f"/records/{record.pk}/queries", {"text": "x"}).status_code == 404
    assert api.get("/queries").json() == []
