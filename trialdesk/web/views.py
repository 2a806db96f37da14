"""Login, home, and the pages every role starts from."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trialdesk.accounts import policy
from trialdesk.accounts.models import Role
from trialdesk.protocol.models import StudyKind


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The studies and sites the user works in, with their roles."""
    rows = []
    for study in policy.studies(request.user):
        ms = policy.memberships(request.user, study)
        held = {Role(m.role) for m in ms}
        rows.append(
            {
                "study": study,
                "sites": list(policy.visible_sites(request.user, study)),
                "roles": sorted({m.get_role_display() for m in ms}, key=str),
                "randomized": study.kind == StudyKind.RANDOMIZED,
                "pharmacist": Role.PHARMACIST in held,
                "dsmb": Role.DSMB in held,
            }
        )
    return render(request, "web/home.html", {"rows": rows})


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The user's personal API tokens: create one (shown once) or revoke one."""
    from django.utils.translation import gettext as _

    from trialdesk.accounts.models import ApiToken
    from trialdesk.accounts.services import AccountError, create_api_token, revoke_api_token

    new_token = None
    error = ""
    if request.method == "POST":
        if "revoke" in request.POST:
            token = ApiToken.objects.filter(
                user=request.user, pk=request.POST.get("revoke"), revoked_at__isnull=True
            ).first()
            if token is None:
                error = _("No such token: %(id)s") % {"id": request.POST.get("revoke", "")}
            else:
                revoke_api_token(token, by=request.user)
        else:
            try:
                _token, new_token = create_api_token(
                    request.user, request.POST.get("name", ""), by=request.user
                )
            except AccountError as exc:
                error = str(exc)
    tokens = ApiToken.objects.filter(user=request.user)
    return render(
        request, "web/api_tokens.html", {"tokens": tokens, "new_token": new_token, "error": error}
    )
