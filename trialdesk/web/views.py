"""Login, home, and the pages every role starts from."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trialdesk.accounts import policy


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The studies and sites the user works in, with their roles."""
    rows = []
    for study in policy.studies(request.user):
        ms = policy.memberships(request.user, study)
        rows.append({
            "study": study,
            "sites": list(policy.visible_sites(request.user, study)),
            "roles": sorted({m.get_role_display() for m in ms}, key=str),
        })
    return render(request, "web/home.html", {"rows": rows})


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
