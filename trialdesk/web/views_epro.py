"""Patient questionnaire pages: the patient's one-time page and the coordinator's issue page.

``/p/<token>/`` needs no account. It shows only the questions of the visit's patient-reported
forms, in French or English (the link's language, or ``?lang=``), sized for a phone; an unknown,
used or expired token is a bare 404 that says nothing about why. Answers go through
:func:`trialdesk.capture.epro.submit`. The issue page (site data-entry roles) creates a link for a
visit and shows it once, with its QR code.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from trialdesk.capture import epro, records
from trialdesk.capture.models import PatientLink, Visit
from trialdesk.protocol.schema import Form, Item
from trialdesk.protocol.schema import Study as StudyDefinition
from trialdesk.web.refusals import refusal
from trialdesk.web.views_capture import _definition, _study, _subject

_SCALE_SPAN = 10


def _gone(request: HttpRequest) -> HttpResponse:
    return render(request, "web/epro/gone.html", status=404)


def _choices(definition: StudyDefinition, item: Item, language: str) -> list[tuple[str, str]]:
    if item.data_type == "choice" and item.codelist:
        codes = definition.codelist(item.codelist).items
        return [(code.code, code.label.get(language)) for code in codes]
    if item.data_type == "boolean":
        return [("true", "✓"), ("false", "✗")]
    integer = item.data_type == "integer"
    if integer and item.min is not None and item.max is not None:
        if item.max - item.min <= _SCALE_SPAN:
            return [(str(n), str(n)) for n in range(int(item.min), int(item.max) + 1)]
    return []


def _questions(
    definition: StudyDefinition, forms: list[Form], language: str, posted: Any
) -> list[dict[str, Any]]:
    return [
        {
            "code": form.code,
            "label": form.label.get(language),
            "help": form.help.get(language) if form.help else "",
            "items": [
                {
                    "name": f"{form.code}.{item.code}",
                    "label": item.label.get(language),
                    "help": item.help.get(language) if item.help else "",
                    "unit": item.unit or "",
                    "min": item.min,
                    "max": item.max,
                    "choices": _choices(definition, item, language),
                    "value": posted.get(f"{form.code}.{item.code}", "") if posted else "",
                    "required": item.required,
                }
                for item in form.items
                if item.computed is None
            ],
        }
        for form in forms
    ]


def _answers(forms: list[Form], post: Any) -> dict[str, dict[str, Any]]:
    answers: dict[str, dict[str, Any]] = {}
    for form in forms:
        for item in form.items:
            raw = (post.get(f"{form.code}.{item.code}") or "").strip()
            if item.computed is None and raw:
                answers.setdefault(form.code, {})[item.code] = raw
    return answers


def _page_language(request: HttpRequest, link: PatientLink) -> str:
    wanted = request.GET.get("lang") or request.POST.get("lang") or link.language
    return wanted if wanted in {"en", "fr"} else "en"


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def patient_page(request: HttpRequest, token: str) -> HttpResponse:
    """The patient's questionnaire page behind a one-time link."""
    try:
        link = epro.open_link(token)
    except epro.LinkUnavailable:
        return _gone(request)
    language = _page_language(request, link)
    definition = records.definition_of(link.subject.study)
    forms = epro.patient_forms(definition, link.visit_code)
    with translation.override(language):
        error = ""
        if request.method == "POST":
            try:
                epro.submit(token, _answers(forms, request.POST))
            except epro.LinkUnavailable:
                return _gone(request)
            except records.HardCheckFailed as refused:
                error = refused.in_language(language)
            except records.CaptureError as refused:
                error = refusal(refused)
            else:
                return render(request, "web/epro/thanks.html", {"language": language})
        context = {
            "language": language,
            "forms": _questions(definition, forms, language, request.POST if error else None),
            "error": error,
        }
        return render(request, "web/epro/patient.html", context, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def issue(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """Issue a one-time questionnaire link (and QR code) for a visit of a subject."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    if not epro.may_issue(request.user, subject):
        raise PermissionDenied("only site staff issue patient links")
    definition = _definition(found)
    visits = [
        visit
        for visit in Visit.objects.filter(subject=subject).order_by("order")
        if epro.patient_forms(definition, visit.code)
    ]
    issued, url, qr, error = None, "", "", ""
    if request.method == "POST":
        try:
            issued = epro.issue_link(
                subject,
                request.POST.get("visit", ""),
                by=request.user,
                language=request.POST.get("language", "en"),
            )
        except epro.EproError as refused:
            error = str(refused)
        else:
            url = request.build_absolute_uri(issued.path)
            qr = epro.qr_svg(url)
    links = PatientLink.objects.filter(subject=subject).order_by("-created_at")[:20]
    return render(
        request,
        "web/epro/issue.html",
        {
            "study": found,
            "subject": subject,
            "visits": visits,
            "issued": issued,
            "url": url,
            "qr": qr,
            "error": error,
            "links": links,
        },
        status=400 if error else 200,
    )
