"""Screening pages: the screening log, screening a person, subjects, eligibility and consent.

Every page asks :mod:`trialdesk.accounts.policy` through the screening services: a study the
user has no role in, or a subject at a site the user cannot see, is a 404 (it does not reveal
that the id exists); a write where the user may not enter data is a 403. The screening form's
fields are generated from the study file's screening form; every write goes through
:mod:`trialdesk.screening.services` (validated first, then one audited transaction).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from trialdesk.accounts import policy
from trialdesk.protocol import ProtocolError
from trialdesk.protocol.definitions import StudyDefinitionUnavailable, study_definition
from trialdesk.protocol.models import Site, Study
from trialdesk.protocol.schema import Item
from trialdesk.protocol.schema import Study as StudyDefinition
from trialdesk.screening import eligibility, services
from trialdesk.screening.models import EligibilityAssessment, Outcome, Subject

NEVER_SUFFIX = "__never"


# --------------------------------------------------------------------------------------------
# Lookups


def _language() -> str:
    return "fr" if (translation.get_language() or "en").startswith("fr") else "en"


def _study(request: HttpRequest, code: str) -> Study:
    study = services.find_study(request.user, code)
    if study is None:
        raise Http404(f"study {code!r} not found")
    return study


def _subject(request: HttpRequest, study: Study, subject_id: str) -> Subject:
    subject = services.find_subject(request.user, study, subject_id)
    if subject is None:
        raise Http404(f"subject {subject_id!r} not found")
    return subject


def _screening_definition(study: Study) -> StudyDefinition:
    definition = study_definition(study)
    if definition.screening is None:
        raise Http404(f"study {study.code!r} has no screening form")
    return definition


def _require_data_entry(request: HttpRequest, site: Site) -> None:
    if not policy.may_enter_data(request.user, site):
        raise PermissionDenied(_("You may not enter data at %(site)s.") % {"site": site.code})


# --------------------------------------------------------------------------------------------
# The screening form, generated from the study file


@dataclass
class ItemField:
    """One screening item as the template draws it."""

    code: str
    label: str
    help: str
    widget: str
    value: str = ""
    never: bool = False
    allow_never: bool = False
    choices: list[tuple[str, str]] = field(default_factory=list)
    unit: str = ""
    min: Any = None
    max: Any = None
    step: str = "any"
    error: str = ""


@dataclass
class FieldGroup:
    label: str
    fields: list[ItemField]


def _widget(item: Item) -> str:
    return {
        "boolean": "select",
        "choice": "select",
        "date": "date",
        "datetime": "datetime",
        "integer": "number",
        "decimal": "number",
    }.get(item.data_type, "text")


def _choices(definition: StudyDefinition, item: Item, language: str) -> list[tuple[str, str]]:
    if item.data_type == "boolean":
        return [("true", _("Yes")), ("false", _("No"))]
    if item.codelist:
        return [(c.code, c.label.get(language)) for c in definition.codelist(item.codelist).items]
    return []


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def screening_fields(
    definition: StudyDefinition,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    language: str,
) -> list[FieldGroup]:
    """The screening form's item groups and fields, filled with ``values`` (JSON or text)."""
    form = definition.screening
    groups = []
    for group in form.item_groups if form is not None else []:
        fields = []
        for item in group.items:
            if item.computed is not None:
                continue
            value = values.get(item.code)
            never = item.allow_never and value == "never"
            fields.append(
                ItemField(
                    code=item.code,
                    label=item.label.get(language),
                    help=item.help.get(language) if item.help else "",
                    widget=_widget(item),
                    value="" if never else _as_text(value),
                    never=never,
                    allow_never=item.allow_never,
                    choices=_choices(definition, item, language),
                    unit=item.unit or "",
                    min=item.min,
                    max=item.max,
                    step="1" if item.data_type == "integer" else "any",
                    error=errors.get(item.code, ""),
                )
            )
        if fields:
            groups.append(FieldGroup(group.label.get(language), fields))
    return groups


def posted_screening_values(post: QueryDict, definition: StudyDefinition) -> dict[str, str]:
    """The text the user typed for each screening item ("never" when its box is ticked)."""
    raw: dict[str, str] = {}
    for code, item in eligibility.screening_items(definition).items():
        if item.computed is not None:
            continue
        text = post.get(code, "").strip()
        if item.allow_never and post.get(code + NEVER_SUFFIX):
            text = "never" if not text else f"{text} + never"
        raw[code] = text
    return raw


def parse_posted(
    definition: StudyDefinition, raw: Mapping[str, str], language: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Screening values as JSON values, and an error message per item that is refused."""
    items = eligibility.screening_items(definition)
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for code, text in raw.items():
        item = items[code]
        if text.endswith(" + never"):
            errors[code] = _("%(label)s (%(code)s): give a date or tick “never”, not both") % {
                "label": item.label.get(language),
                "code": code,
            }
            continue
        try:
            value = eligibility.parse_item_value(definition, item, text, strict=False)
        except eligibility.InvalidScreeningData as error:
            errors[code] = f"{item.label.get(language)} ({code}): {error.reason_with_value}"
            continue
        if value is not None:
            data[code] = eligibility.data_to_json({code: value})[code]
    return data, errors


IDENTITY_LABELS = {
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
    "phone": gettext_lazy("Phone"),
    "email": gettext_lazy("E-mail"),
}


# --------------------------------------------------------------------------------------------
# Pages


@login_required
def screening_log(request: HttpRequest, study: str) -> HttpResponse:
    """The screening log of the sites the user may see, with CONSORT counts."""
    found = _study(request, study)
    sites = list(policy.visible_sites(request.user, found))
    site = None
    if request.GET.get("site"):
        site = next((s for s in sites if s.code == request.GET["site"]), None)
        if site is None:
            raise Http404("site not found")
    entries = list(services.screening_log(request.user, found, site))
    outcomes = Counter(entry.outcome for entry in entries)
    reasons = Counter(
        r for e in entries if e.outcome == Outcome.SCREEN_FAILED for r in e.failure_reasons
    )
    language = _language()
    try:
        definition = study_definition(found)
        texts = {c.id: c.text.get(language) for c in definition.eligibility}
        has_form = definition.screening is not None
    except (StudyDefinitionUnavailable, ProtocolError):  # the log stays readable without it
        texts, has_form = {}, False
    return render(
        request,
        "web/screening/log.html",
        {
            "study": found,
            "sites": sites,
            "site": site,
            "entries": entries,
            "rows": [(e, [(r, texts.get(r, "")) for r in e.failure_reasons]) for e in entries],
            "outcome_counts": [(label, outcomes.get(value, 0)) for value, label in Outcome.choices],
            "reason_counts": [(rid, texts.get(rid, ""), n) for rid, n in sorted(reasons.items())],
            "can_screen": has_form and bool(services.data_entry_sites(request.user, found)),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def screen_person(request: HttpRequest, study: str) -> HttpResponse:
    """Screen a person: identity and screening data, then the verdict."""
    found = _study(request, study)
    sites = services.data_entry_sites(request.user, found)
    if not sites:
        raise PermissionDenied(_("You may not screen anyone in this study."))
    definition = _screening_definition(found)
    language = _language()
    values: dict[str, Any] = {"screening_date": timezone.localdate().isoformat()}
    identity = {name: "" for name in services.IDENTITY_FIELDS}
    errors: dict[str, str] = {}
    site_code = sites[0].code
    if request.method == "POST":
        site_code = request.POST.get("site", "")
        identity = {name: request.POST.get(name, "").strip() for name in services.IDENTITY_FIELDS}
        raw = posted_screening_values(request.POST, definition)
        data, errors = parse_posted(definition, raw, language)
        errors.update(services.identity_problems(identity))
        site = next((s for s in sites if s.code == site_code), None)
        if site is None:
            errors["site"] = _("site: %(value)r is not a site where you may screen") % {
                "value": site_code
            }
        if "screening_date" not in data and "screening_date" not in errors:
            errors["screening_date"] = _("screening_date: the screening date is required")
        if not errors:
            try:
                result = services.screen(found, site, data, by=request.user, identity=identity)
            except services.ScreeningError as error:
                errors[error.field] = str(error)
            else:
                return redirect(_assessment_url(found, result.subject, result.assessment))
        values = {**raw}
    return render(
        request,
        "web/screening/screen.html",
        {
            "study": found,
            "sites": sites,
            "site_code": site_code,
            "identity_fields": [
                (name, IDENTITY_LABELS[name], identity[name], errors.get(name, ""))
                for name in services.IDENTITY_FIELDS
            ],
            "groups": screening_fields(definition, values, errors, language),
            "errors": errors,
        },
        status=400 if errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def reassess(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """Correct or complete the screening data of a subject still in screening."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    _require_data_entry(request, subject.site)
    definition = _screening_definition(found)
    language = _language()
    latest = services.latest_assessment(subject)
    values: dict[str, Any] = dict(latest.data) if latest is not None else {}
    errors: dict[str, str] = {}
    if request.method == "POST":
        raw = posted_screening_values(request.POST, definition)
        data, errors = parse_posted(definition, raw, language)
        if not errors:
            try:
                result = services.reassess(subject, data, by=request.user)
            except services.ScreeningError as error:
                errors[error.field] = str(error)
            else:
                return redirect(_assessment_url(found, subject, result.assessment))
        values = {**raw}
    return render(
        request,
        "web/screening/reassess.html",
        {
            "study": found,
            "subject": subject,
            "groups": screening_fields(definition, values, errors, language),
            "errors": errors,
        },
        status=400 if errors else 200,
    )


@login_required
def subject_detail(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """A subject: status, screening, eligibility history, consent; identity for site staff."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    may_enter = policy.may_enter_data(request.user, subject.site)
    return render(
        request,
        "web/screening/subject.html",
        {
            "study": found,
            "subject": subject,
            "entry": subject.screening_entry,
            "identity": services.identity_for(request.user, subject),
            "show_identity": policy.may_see_identity(request.user, subject.site),
            "assessments": subject.assessments.select_related(
                "assessed_by", "study_version"
            ).order_by("-assessed_at", "-id"),
            "consents": subject.consents.select_related("document", "obtained_by"),
            "eligible": services.is_eligible(subject),
            "consented": services.has_valid_consent(subject),
            "may_enter": may_enter,
            "is_open": subject.status in services.OPEN_STATUSES,
        },
    )


@login_required
def assessment_detail(request: HttpRequest, study: str, subject_id: str, pk: int) -> HttpResponse:
    """The verdict of one assessment: every criterion with its message, and the data."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    assessment = EligibilityAssessment.objects.filter(subject=subject, pk=pk).first()
    if assessment is None:
        raise Http404("assessment not found")
    language = _language()
    try:
        definition = study_definition(found)
    except (StudyDefinitionUnavailable, ProtocolError):  # show codes without the study file
        definition = None
    return render(
        request,
        "web/screening/verdict.html",
        {
            "study": found,
            "subject": subject,
            "assessment": assessment,
            "criteria": [{**r, "message": r[f"message_{language}"]} for r in assessment.results],
            "data_rows": _data_rows(definition, assessment.data, language),
            "may_enter": policy.may_enter_data(request.user, subject.site),
            "is_open": subject.status in services.OPEN_STATUSES,
            "is_latest": services.latest_assessment(subject) == assessment,
        },
    )


def _data_rows(
    definition: StudyDefinition | None, data: Mapping[str, Any], language: str
) -> list[tuple[str, str, str]]:
    if definition is None:
        return [(code, code, str(value)) for code, value in data.items()]
    items = eligibility.screening_items(definition)
    return [
        (
            code,
            item.label.get(language),
            eligibility.display_value(definition, code, data.get(code), language),
        )
        for code, item in items.items()
    ]


@login_required
@require_http_methods(["GET", "POST"])
def record_consent(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """Record a signed consent: the document version, the date and time, who obtained it."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    _require_data_entry(request, subject.site)
    documents = list(services.consent_documents(found))
    takers = services.consent_takers(subject.site)
    form = {"document": "", "signed_at": "", "obtained_by": request.user.username}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = {name: request.POST.get(name, "").strip() for name in form}
        document = next((d for d in documents if str(d.pk) == form["document"]), None)
        if document is None:
            errors["document"] = _(
                "document: %(value)r is not a consent document of this study"
            ) % {"value": form["document"]}
        signed_at = _parse_datetime(form["signed_at"])
        if signed_at is None:
            errors["signed_at"] = _("signed_at: %(value)r is not a date and time") % {
                "value": form["signed_at"]
            }
        taker = next((u for u in takers if u.username == form["obtained_by"]), None)
        if taker is None:
            errors["obtained_by"] = _(
                "obtained_by: %(value)r is not investigator or coordinator at %(site)s"
            ) % {"value": form["obtained_by"], "site": subject.site.code}
        if not errors:
            try:
                services.record_consent(
                    subject, document, signed_at, obtained_by=taker, by=request.user
                )
            except services.ScreeningError as error:
                errors[error.field] = str(error)
            else:
                return redirect(_subject_url(found, subject))
    return render(
        request,
        "web/screening/consent.html",
        {
            "study": found,
            "subject": subject,
            "documents": documents,
            "takers": takers,
            "form": form,
            "errors": errors,
        },
        status=400 if errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def withdraw_consent(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """Withdraw the subject's consent, with a reason."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    _require_data_entry(request, subject.site)
    reason = ""
    errors: dict[str, str] = {}
    if request.method == "POST":
        reason = request.POST.get("reason", "").strip()
        try:
            services.withdraw_consent(subject, reason=reason, by=request.user)
        except services.ScreeningError as error:
            errors[error.field] = str(error)
        else:
            return redirect(_subject_url(found, subject))
    return render(
        request,
        "web/screening/withdraw.html",
        {
            "study": found,
            "subject": subject,
            "reason": reason,
            "errors": errors,
        },
        status=400 if errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def screen_failure(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """Record a screen failure with the criteria that failed (prefilled from the verdict)."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    _require_data_entry(request, subject.site)
    language = _language()
    definition = _screening_definition(found)
    latest = services.latest_assessment(subject)
    chosen = [r["id"] for r in (latest.results if latest else []) if r["result"] == "not_met"]
    note = ""
    errors: dict[str, str] = {}
    if request.method == "POST":
        chosen = request.POST.getlist("reasons")
        note = request.POST.get("note", "").strip()
        try:
            services.mark_screen_failure(subject, chosen, note=note, by=request.user)
        except services.ScreeningError as error:
            errors[error.field] = str(error)
        else:
            return redirect(_subject_url(found, subject))
    return render(
        request,
        "web/screening/failure.html",
        {
            "study": found,
            "subject": subject,
            "criteria": [
                (c.id, c.kind, c.text.get(language), c.id in chosen) for c in definition.eligibility
            ],
            "note": note,
            "errors": errors,
        },
        status=400 if errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def consent_documents(request: HttpRequest, study: str) -> HttpResponse:
    """The study's consent documents; data managers register new versions here."""
    found = _study(request, study)
    may_manage = services.may_manage_consent_documents(request.user, found)
    fields = ("version", "language", "title", "valid_from", "valid_until", "file_name")
    form = dict.fromkeys(fields, "")
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not may_manage:
            raise PermissionDenied(_("Only data managers register consent documents."))
        form = {name: request.POST.get(name, "").strip() for name in fields}
        dates = {}
        for name in ("valid_from", "valid_until"):
            try:
                dates[name] = dt.date.fromisoformat(form[name]) if form[name] else None
            except ValueError:
                errors[name] = _("%(field)s: %(value)r is not a date (YYYY-MM-DD)") % {
                    "field": name,
                    "value": form[name],
                }
        if not errors and dates["valid_from"] is None:
            errors["valid_from"] = _("valid_from: the first day of validity is required")
        if not errors:
            try:
                services.create_consent_document(
                    found,
                    version=form["version"],
                    language=form["language"],
                    title=form["title"],
                    valid_from=dates["valid_from"],
                    valid_until=dates["valid_until"],
                    file_name=form["file_name"],
                    by=request.user,
                )
            except services.ScreeningError as error:
                errors[error.field] = str(error)
            else:
                return redirect(reverse("screening:documents", args=[found.code]))
    return render(
        request,
        "web/screening/documents.html",
        {
            "study": found,
            "documents": services.consent_documents(found),
            "may_manage": may_manage,
            "form": form,
            "errors": errors,
        },
        status=400 if errors else 200,
    )


# --------------------------------------------------------------------------------------------


def _subject_url(study: Study, subject: Subject) -> str:
    return reverse("screening:subject", args=[study.code, subject.subject_id])


def _assessment_url(study: Study, subject: Subject, assessment: EligibilityAssessment) -> str:
    return reverse("screening:assessment", args=[study.code, subject.subject_id, assessment.pk])


def _parse_datetime(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return timezone.make_aware(value) if timezone.is_naive(value) else value
