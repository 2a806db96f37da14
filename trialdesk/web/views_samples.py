"""Sample pages under ``studies/<study>/samples/``: the list per site with the forms to record a
sample at a visit, ship a batch and mark it received, and the printable label of a sample with
its QR code and the marker results returned for it.

A sample or shipment at a site the user cannot see is a 404; writes need a data-entry role at the
site (:mod:`trialdesk.capture.samples` refuses otherwise, and the page answers 400 naming why).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.http import require_http_methods

from trialdesk.accounts import policy
from trialdesk.capture import samples
from trialdesk.capture.models import SampleType, Shipment, Visit
from trialdesk.protocol.models import Study
from trialdesk.screening import services as screening
from trialdesk.web.views_capture import _study


def _date(raw: str, field: str) -> dt.date:
    value = parse_date(raw or "")
    if value is None:
        raise samples.SampleError(field, f"{raw!r} is not a date (YYYY-MM-DD)")
    return value


def _datetime(raw: str, field: str) -> dt.datetime:
    value = parse_datetime(raw or "")
    if value is None:
        raise samples.SampleError(field, f"{raw!r} is not a date and time")
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def _create(request: HttpRequest, study: Study) -> None:
    subject = screening.find_subject(request.user, study, request.POST.get("subject", ""))
    if subject is None:
        raise Http404("subject not found")
    samples.create_sample(
        subject,
        kind=request.POST.get("kind", ""),
        visit_code=request.POST.get("visit", ""),
        taken_at=_datetime(request.POST.get("taken_at", ""), "taken_at"),
        storage=request.POST.get("storage", ""),
        sample_id=request.POST.get("sample_id", ""),
        by=request.user,
    )


def _ship(request: HttpRequest, study: Study) -> None:
    site = screening.visible_site(request.user, study, request.POST.get("site", ""))
    if site is None:
        raise Http404("site not found")
    samples.ship(
        study,
        site,
        request.POST.getlist("samples"),
        batch=request.POST.get("batch", ""),
        shipped_on=_date(request.POST.get("shipped_on", ""), "shipped_on"),
        by=request.user,
    )


def _receive(request: HttpRequest, study: Study) -> None:
    shipment = Shipment.objects.filter(
        study=study,
        site__in=policy.visible_sites(request.user, study),
        pk=request.POST.get("shipment") or 0,
    ).first()
    if shipment is None:
        raise Http404("shipment not found")
    samples.receive(
        shipment, on=_date(request.POST.get("received_on", ""), "received_on"), by=request.user
    )


_ACTIONS = {"create": _create, "ship": _ship, "receive": _receive}


@login_required
@require_http_methods(["GET", "POST"])
def sample_list(request: HttpRequest, study: str) -> HttpResponse:
    """The samples of the sites the user sees, and the forms to record, ship and receive."""
    found = _study(request, study)
    error = ""
    if request.method == "POST":
        action = _ACTIONS.get(request.POST.get("action", ""))
        if action is None:
            error = f"action: {request.POST.get('action', '')!r} is not known"
        else:
            try:
                action(request, found)
            except samples.SampleError as refused:
                error = str(refused)
            else:
                return redirect(reverse("samples:list", args=[found.code]))
    return render(
        request,
        "web/samples/list.html",
        _list_context(request, found, error),
        status=400 if error else 200,
    )


def _list_context(request: HttpRequest, study: Study, error: str) -> dict[str, Any]:
    rows = samples.visible_samples(request.user, study)
    subject_id = request.GET.get("subject") or request.POST.get("subject") or ""
    if subject_id:
        rows = rows.filter(subject__subject_id=subject_id)
    sites = list(policy.visible_sites(request.user, study))
    subjects = screening.visible_subjects(request.user, study)
    if subject_id:
        subjects = subjects.filter(subject_id=subject_id)
    return {
        "study": study,
        "samples": rows,
        "unshipped": [s for s in rows if s.shipment_id is None],
        "shipments": Shipment.objects.filter(study=study, site__in=sites),
        "sites": sites,
        "visits": Visit.objects.filter(subject__in=subjects).select_related("subject"),
        "kinds": SampleType.choices,
        "subject_id": subject_id,
        "error": error,
        "now": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "today": timezone.localdate().isoformat(),
    }


@login_required
def label(request: HttpRequest, study: str, sample_id: str) -> HttpResponse:
    """The printable label of a sample (id, QR code, Code 128 barcode, visit, time) and its
    results."""
    found = _study(request, study)
    sample = samples.visible_samples(request.user, found).filter(sample_id=sample_id).first()
    if sample is None:
        raise Http404("sample not found")
    return render(
        request,
        "web/samples/label.html",
        {
            "study": found,
            "sample": sample,
            "qr": samples.label_svg(sample),
            "code128": samples.barcode_svg(sample),
            "results": samples.marker_results(sample),
        },
    )
