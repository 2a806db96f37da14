"""A token-authenticated JSON client for the ``/api/v1/studies/ns-dupi/capture/`` tests."""

from __future__ import annotations

from trialdesk.accounts.services import create_api_token

BASE = "/api/v1/studies/ns-dupi/capture"


class Api:
    def __init__(self, client, user):
        self.client = client
        _, self.token = create_api_token(user, "tests", by=user)

    def get(self, path, **params):
        return self.client.get(BASE + path, params, HTTP_AUTHORIZATION=f"Bearer {self.token}")

    def _call(self, method, path, body):
        return getattr(self.client, method)(
            BASE + path,
            body if body is not None else {},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.token}",
        )

    def post(self, path, body=None):
        return self._call("post", path, body)

    def put(self, path, body=None):
        return self._call("put", path, body)
