"""The enrolment dashboard and the download of the blinded reports.

Every number comes from :mod:`trialdesk.reports.blinded`, which never reads an allocation, and
is restricted to the sites the user may see (:func:`trialdesk.accounts.policy.visible_sites`):
a site's staff see their own site only, study-wide roles see every site. The blinded reports
(enrolment, DSMB open) may be downloaded by every role of the study, for the same sites.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from trialdesk.accounts import policy
from trialdesk.protocol.models import Study
from trialdesk.reports.blinded import collect
from trialdesk.reports.figures import enrolment_png
from trialdesk.reports.render import BLINDED_KINDS, report_html, report_pdf
from trialdesk.screening import services as screening

_FORMATS = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}


def _study(request: HttpRequest, code: str) -> Study:
    study = screening.find_study(request.user, code)
    if study is None:
        raise Http404(f"study {code!r} not found")
    return study


def _site_codes(request: HttpRequest, study: Study) -> list[str]:
    return list(policy.visible_sites(request.user, study).values_list("code", flat=True))


@login_required
def dashboard(request: HttpRequest, study: str) -> HttpResponse:
    """Screened, randomized, visits, screen-failure reasons and queries per visible site."""
    trial = _study(request, study)
    data = collect(trial, _site_codes(request, trial))
    context = {
        "study": trial,
        "data": data,
        "enrolment_png": enrolment_png(data.enrolment),
        "kinds": BLINDED_KINDS,
    }
    return render(request, "web/reports/dashboard.html", context)


@login_required
def download(request: HttpRequest, study: str, kind: str, fmt: str) -> HttpResponse:
    """A blinded report of the user's visible sites, as an HTML or PDF attachment."""
    trial = _study(request, study)
    if kind not in BLINDED_KINDS or fmt not in _FORMATS:
        raise Http404(f"no report {kind!r} in format {fmt!r}")
    sites = _site_codes(request, trial)
    body = report_pdf(trial, kind, sites) if fmt == "pdf" else report_html(trial, kind, sites)
    response = HttpResponse(body, content_type=_FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{trial.code}-{kind}.{fmt}"'
    return response
