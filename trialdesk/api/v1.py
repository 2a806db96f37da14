"""``/api/v1/``: mounts the routers and defines authentication."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI, Schema
from ninja.security import HttpBearer, django_auth

from trialdesk.accounts import policy
from trialdesk.accounts.services import user_for_token
from trialdesk.capture.api import forms_router as capture_router
from trialdesk.capture.api import router as schedule_router
from trialdesk.randomization.api import router as randomization_router
from trialdesk.safety.api import router as safety_router
from trialdesk.screening.api import router as screening_router


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = user_for_token(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="trialdesk API",
    version="1",
    description="Clinical-trial operations and data capture. Every call is checked against the "
    "same access and blinding policy as the pages.",
    auth=[TokenAuth(), django_auth],
    urls_namespace="api-v1",
)
api.add_router("/studies/{study}/screening", screening_router)
api.add_router("/studies/{study}/randomization", randomization_router)
api.add_router("/studies/{study}/schedule", schedule_router)
api.add_router("/studies/{study}/capture", capture_router)
api.add_router("/studies/{study}/safety", safety_router)


class SiteOut(Schema):
    code: str
    name: str


class StudyOut(Schema):
    code: str
    title: str
    kind: str
    version: str | None
    roles: list[str]
    sites: list[SiteOut]


class MeOut(Schema):
    username: str
    name: str
    studies: list[StudyOut]


@api.get("/me", response=MeOut, summary="Who am I, and where do I work")
def me(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {
        "username": user.username,
        "name": user.get_full_name(),
        "studies": [_study_out(user, s) for s in policy.studies(user)],
    }


@api.get("/studies", response=list[StudyOut], summary="Studies the caller takes part in")
def studies(request: HttpRequest) -> list[dict[str, Any]]:
    return [_study_out(request.user, s) for s in policy.studies(request.user)]


def _study_out(user: Any, study: Any) -> dict[str, Any]:
    return {
        "code": study.code,
        "title": study.title,
        "kind": study.kind,
        "version": study.current_version.version if study.current_version_id else None,
        "roles": sorted(r.value for r in policy.roles(user, study)),
        "sites": [{"code": s.code, "name": s.name} for s in policy.visible_sites(user, study)],
    }
