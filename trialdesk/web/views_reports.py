"""The enrolment dashboard and the download of the blinded reports.

Every number comes from :mod:`trialdesk.reports.blinded`, which never reads an allocation, and
is restricted to the sites the user may see (:func:`trialdesk.accounts.policy.visible_sites`):
a site's staff see their own site only, study-wide roles see every site. The blinded reports
(enrolment, DSMB open) may be downloaded by every role of the study, for the same sites. The
unblinded reports (DSMB closed, final) cover every site and are for the users the blinding policy
lets see the allocation at every site (:func:`trialdesk.reports.unblinded.may_get_unblinded`:
the unblinded statistician and the DSMB); anyone else of the study gets 403.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from trialdesk.accounts import policy
from trialdesk.protocol.models import Study
from trialdesk.reports.blinded import collect
from trialdesk.reports.figures import enrolment_png
from trialdesk.reports.render import (
    BLINDED_KINDS,
    UNBLINDED_KINDS,
    html_to_pdf,
    report_html,
    report_pdf,
)
from trialdesk.reports.unblinded import may_get_unblinded
from trialdesk.screening import services as screening

_FORMATS = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}


def _study(request: HttpRequest, code: str) -> Study:
    study = screening.find_study(request.user, code)
    if study is None:
        raise Http404(f"study {code!r} not found")
    return study


def _site_codes(request: HttpRequest, study: Study) -> list[str]:
    return list(policy.visible_sites(request.user, study).values_list("code", flat=True))


def _kinds(request: HttpRequest, study: Study) -> tuple[str, ...]:
    if may_get_unblinded(request.user, study):
        return (*BLINDED_KINDS, *UNBLINDED_KINDS)
    return BLINDED_KINDS


@login_required
def dashboard(request: HttpRequest, study: str) -> HttpResponse:
    """Screened, randomized, visits, screen-failure reasons and queries per visible site."""
    trial = _study(request, study)
    data = collect(trial, _site_codes(request, trial))
    context = {
        "study": trial,
        "data": data,
        "enrolment_png": enrolment_png(data.enrolment),
        "kinds": _kinds(request, trial),
    }
    return render(request, "web/reports/dashboard.html", context)


@login_required
def download(request: HttpRequest, study: str, kind: str, fmt: str) -> HttpResponse:
    """A report as an HTML or PDF attachment: blinded of the visible sites, or unblinded (403
    for a user without an unblinded role at every site)."""
    trial = _study(request, study)
    if kind not in (*BLINDED_KINDS, *UNBLINDED_KINDS) or fmt not in _FORMATS:
        raise Http404(f"no report {kind!r} in format {fmt!r}")
    if kind in UNBLINDED_KINDS:
        if not may_get_unblinded(request.user, trial):
            raise PermissionDenied(f"the {kind} report needs an unblinded role at every site")
        html = report_html(trial, kind, user=request.user)
        body: str | bytes = html_to_pdf(html) if fmt == "pdf" else html
    else:
        sites = _site_codes(request, trial)
        body = report_pdf(trial, kind, sites) if fmt == "pdf" else report_html(trial, kind, sites)
    response = HttpResponse(body, content_type=_FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{trial.code}-{kind}.{fmt}"'
    return response
