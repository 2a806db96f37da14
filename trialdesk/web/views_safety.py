"""Safety pages: the SAE clock worklist, laboratory alerts, a subject's AEs and lab results.

Every page asks :mod:`trialdesk.accounts.policy` through the screening lookups: a study the user
has no role in, a subject or site the user cannot see, is a 404; an action the user's role does
not allow is a 403. Nothing here reads an allocation: the safety rows hold no arm, so every
page is blind by construction. Writes (an SAE reported, an alert acknowledged) go through
:mod:`trialdesk.safety.services`, audited in their transaction.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from trialdesk.accounts import policy
from trialdesk.accounts.models import Role
from trialdesk.protocol import ProtocolError
from trialdesk.protocol.definitions import study_definition
from trialdesk.protocol.models import Site, Study
from trialdesk.safety import ctcae, services
from trialdesk.safety.models import AdverseEvent, LabResult, ReferenceRange
from trialdesk.screening import services as screening
from trialdesk.screening.models import Subject


def _study(request: HttpRequest, code: str) -> Study:
    study = screening.find_study(request.user, code)
    if study is None:
        raise Http404(f"study {code!r} not found")
    return study


def _subject(request: HttpRequest, study: Study, subject_id: str) -> Subject:
    subject = screening.find_subject(request.user, study, subject_id)
    if subject is None:
        raise Http404(f"subject {subject_id!r} not found")
    return subject


def _site_param(request: HttpRequest, study: Study) -> Site | None:
    code = request.GET.get("site")
    if not code:
        return None
    site = policy.visible_sites(request.user, study).filter(code=code).first()
    if site is None:
        raise Http404(f"site {code!r} not found")
    return site


def _labels(study: Study, language: str) -> dict[str, dict[str, str]]:
    """Code → label of the AE code lists in ``language`` (empty when a list is absent)."""
    try:
        definition = study_definition(study)
    except ProtocolError:
        return {}
    labels: dict[str, dict[str, str]] = {}
    for code in ("AE_SEVERITY", "AE_RELATIONSHIP", "AE_ACTION", "AE_OUTCOME", "AESI"):
        try:
            codelist = definition.codelist(code)
        except (KeyError, ProtocolError):
            continue
        labels[code] = {item.code: item.label.get(language) for item in codelist.items}
    return labels


def _ae_row(event: AdverseEvent, labels: dict[str, dict[str, str]]) -> dict[str, Any]:
    def label(codelist: str, code: str) -> str:
        return labels.get(codelist, {}).get(code, code)

    return {
        "event": event,
        "severity": label("AE_SEVERITY", event.severity),
        "relationship": label("AE_RELATIONSHIP", event.relationship),
        "action": label("AE_ACTION", event.action),
        "outcome": label("AE_OUTCOME", event.outcome),
        "aesi": label("AESI", event.aesi_code) if event.is_aesi else "",
        "suggested": label("AESI", event.aesi_suggested) if event.aesi_suggested else "",
        "report": getattr(event, "sae_report", None),
    }


def number(value: Decimal | None) -> str:
    """A decimal without trailing zeros (``1.200000`` → ``1.2``), blank for none."""
    if value is None:
        return ""
    return format(value.normalize(), "f")


def _lab_row(result: LabResult) -> dict[str, Any]:
    return {
        "result": result,
        **{
            name: number(getattr(result, name))
            for name in ("value", "value_std", "lln_std", "uln_std", "baseline")
        },
    }


def _alert_rows(alerts: Any) -> list[dict[str, Any]]:
    return [{"alert": alert, "value_std": number(alert.lab_result.value_std)} for alert in alerts]


def _hours_left(report: Any, now: Any) -> float:
    return round(services.time_left(report, now).total_seconds() / 3600, 1)


@login_required
def worklist(request: HttpRequest, study: str) -> HttpResponse:
    """Open SAE clocks (soonest due first) and unacknowledged laboratory alerts."""
    found = _study(request, study)
    site = _site_param(request, found)
    now = timezone.now()
    clocks = [
        {"report": report, "hours_left": _hours_left(report, now), "overdue": report.due_at < now}
        for report in services.sae_clocks(request.user, found, site)
    ]
    context = {
        "study": found,
        "site": site,
        "sites": policy.visible_sites(request.user, found),
        "clocks": clocks,
        "alerts": _alert_rows(services.lab_alerts(request.user, found, site)),
    }
    return render(request, "web/safety/worklist.html", context)


@login_required
def alerts(request: HttpRequest, study: str) -> HttpResponse:
    """Every laboratory alert at the user's sites, acknowledged or not."""
    found = _study(request, study)
    site = _site_param(request, found)
    context = {
        "study": found,
        "site": site,
        "sites": policy.visible_sites(request.user, found),
        "alerts": _alert_rows(services.lab_alerts(request.user, found, site, open_only=False)),
    }
    return render(request, "web/safety/alerts.html", context)


@login_required
def adverse_events(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """A subject's adverse events: answers, AESI (answer and suggestion), SAE clock."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    labels = _labels(found, translation.get_language() or "en")
    rows = [_ae_row(event, labels) for event in services.adverse_events_of(subject)]
    context = {
        "study": found,
        "subject": subject,
        "rows": rows,
        "infections": subject.skin_infections.count(),
    }
    return render(request, "web/safety/adverse_events.html", context)


@login_required
def labs(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """A subject's laboratory results with units, ranges, flags and CTCAE grades."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    context = {
        "study": found,
        "subject": subject,
        "rows": [_lab_row(result) for result in services.lab_results_of(subject)],
    }
    return render(request, "web/safety/labs.html", context)


@login_required
@require_POST
def sae_reported(request: HttpRequest, study: str, pk: int) -> HttpResponse:
    """The site sent the SAE report to the sponsor: stop the clock."""
    found = _study(request, study)
    report = services.find_sae(request.user, found, pk)
    if report is None:
        raise Http404(f"SAE report #{pk} not found")
    try:
        services.mark_sae_reported(report, by=request.user)
    except services.SafetyNotAllowed as error:
        raise PermissionDenied(str(error)) from None
    except services.SafetyError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("SAE of %(subject)s recorded as reported.")
            % {"subject": report.adverse_event.subject.subject_id},
        )
    return redirect(reverse("safety:worklist", args=[found.code]))


@login_required
@require_http_methods(["POST"])
def acknowledge(request: HttpRequest, study: str, pk: int) -> HttpResponse:
    """An investigator of the site has reviewed the alert."""
    found = _study(request, study)
    alert = services.find_alert(request.user, found, pk)
    if alert is None:
        raise Http404(f"alert #{pk} not found")
    try:
        services.acknowledge_alert(alert, by=request.user)
    except services.SafetyNotAllowed as error:
        raise PermissionDenied(str(error)) from None
    except services.SafetyError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Alert acknowledged."))
    back = "safety:alerts" if request.POST.get("back") == "alerts" else "safety:worklist"
    return redirect(reverse(back, args=[found.code]))


_RANGE_FIELDS = (
    "site",
    "lab_name",
    "test",
    "unit",
    "lln",
    "uln",
    "sex",
    "age_min",
    "age_max",
    "valid_from",
)


def _parsed_range(form: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """The typed fields of a reference range form; problems land in ``errors`` by field."""
    values: dict[str, Any] = {"lab_name": form["lab_name"], "test": form["test"]}
    values["unit"], values["sex"] = form["unit"], form["sex"]
    for name in ("lln", "uln"):
        try:
            values[name] = Decimal(form[name].replace(",", ".")) if form[name] else None
        except ArithmeticError:
            errors[name] = _("%(field)s: %(value)r is not a number") % {
                "field": name,
                "value": form[name],
            }
    for name in ("age_min", "age_max"):
        try:
            values[name] = int(form[name]) if form[name] else None
        except ValueError:
            errors[name] = _("%(field)s: %(value)r is not a number") % {
                "field": name,
                "value": form[name],
            }
    try:
        values["valid_from"] = dt.date.fromisoformat(form["valid_from"])
    except ValueError:
        errors["valid_from"] = _("%(field)s: %(value)r is not a date (YYYY-MM-DD)") % {
            "field": "valid_from",
            "value": form["valid_from"],
        }
    if not values["lab_name"]:
        errors["lab_name"] = _("lab_name: the laboratory name is required")
    return values


@login_required
@require_http_methods(["GET", "POST"])
def reference_ranges(request: HttpRequest, study: str) -> HttpResponse:
    """The site laboratories' normal ranges; data managers add new ones."""
    found = _study(request, study)
    sites = policy.visible_sites(request.user, found)
    may_add = Role.DATA_MANAGER in policy.roles(request.user, found)
    errors: dict[str, str] = {}
    form = {name: request.POST.get(name, "").strip() for name in _RANGE_FIELDS}
    if request.method == "POST":
        if not may_add:
            raise PermissionDenied(_("Only data managers register reference ranges."))
        site = sites.filter(code=form["site"]).first()
        if site is None:
            raise Http404(f"site {form['site']!r} not found")
        values = _parsed_range(form, errors)
        if not errors:
            try:
                services.add_reference_range(site, by=request.user, **values)
            except services.SafetyError as error:
                errors[error.field] = str(error)
            else:
                messages.success(request, _("Reference range added."))
                return redirect(reverse("safety:reference_ranges", args=[found.code]))
    context = {
        "study": found,
        "ranges": ReferenceRange.objects.filter(site__in=sites).select_related("site"),
        "sites": sites,
        "tests": ctcae.TESTS,
        "may_add": may_add,
        "form": form,
        "errors": errors,
    }
    return render(
        request, "web/safety/reference_ranges.html", context, status=400 if errors else 200
    )
