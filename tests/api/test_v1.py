"""``/api/v1/``: token authentication, OpenAPI, and the same policy as the pages."""

from __future__ import annotations

import pytest

from trialdesk.accounts.services import create_api_token

pytestmark = pytest.mark.django_db


def test_it_refuses_a_call_without_credentials(client, studies):
    assert client.get("/api/v1/me").status_code == 401


def test_it_refuses_a_bad_token(client, studies):
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer td_nope")
    assert response.status_code == 401


def test_a_token_answers_who_am_i_with_only_my_sites(client, paul):
    _, token = create_api_token(paul, "script", by=paul)
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "paul"
    dupi = next(s for s in body["studies"] if s["code"] == "ns-dupi")
    assert dupi["roles"] == ["coordinator"]
    assert [s["code"] for s in dupi["sites"]] == ["NCK"]


def test_the_openapi_schema_is_published(client, studies):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "trialdesk API"
    assert "/api/v1/me" in schema["paths"]
