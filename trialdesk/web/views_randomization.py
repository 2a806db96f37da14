"""Randomization, dispensing, unblinding, schedule, worklist and pharmacy pages.

Every page asks :mod:`trialdesk.accounts.policy` (through the screening lookups for studies and
subjects): a study the user has no role in, or a subject at a site the user cannot see, is a 404;
a write the user's role does not allow is a 403. Every write goes through the services of
:mod:`trialdesk.randomization` and :mod:`trialdesk.capture` (one audited transaction each); bad
input re-renders the page with status 400 and a message naming the field and the value.

Blinding: pages are built from the blinded summaries. The arm appears only where
:func:`~trialdesk.accounts.policy.may_see_subject_allocation` (one subject) or
:func:`~trialdesk.accounts.policy.may_see_allocation` (a site's stock) says yes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from trialdesk.accounts import policy
from trialdesk.accounts.models import Role
from trialdesk.capture import schedule
from trialdesk.capture.models import Discontinuation, ExitKind
from trialdesk.protocol.definitions import study_definition
from trialdesk.protocol.models import Site, Study
from trialdesk.randomization import allocation, supply, unblinding
from trialdesk.randomization.errors import NotAllowed, RandomizationError
from trialdesk.randomization.models import InjectionSite, Kit, KitStatus
from trialdesk.randomization.sealing import arms_of, kit_arms_for, stock_by_arm_for
from trialdesk.randomization.summary import treatment_summary
from trialdesk.screening import services as screening
from trialdesk.screening.models import Subject

# --------------------------------------------------------------------------------------------
# Lookups and input parsing


def _study(request: HttpRequest, code: str) -> Study:
    study = screening.find_study(request.user, code)
    if study is None:
        raise Http404(f"study {code!r} not found")
    return study


def _randomized_study(request: HttpRequest, code: str) -> Study:
    """A study the user takes part in that randomizes and doses (not an observational cohort)."""
    study = _study(request, code)
    definition = study_definition(study)
    if definition.randomization is None or definition.dosing is None or not definition.arms:
        raise Http404(f"study {code!r} has no randomization")
    return study


def _subject(request: HttpRequest, study: Study, subject_id: str) -> Subject:
    subject = screening.find_subject(request.user, study, subject_id)
    if subject is None:
        raise Http404(f"subject {subject_id!r} not found")
    return subject


def _site_param(request: HttpRequest, study: Study) -> Site | None:
    """The ``?site=`` asked for, among the sites the user may see (404 for any other)."""
    code = request.GET.get("site") or request.POST.get("site")
    if not code:
        return None
    site = policy.visible_sites(request.user, study).filter(code=code).first()
    if site is None:
        raise Http404(f"site {code!r} not found")
    return site


def _require_data_entry(request: HttpRequest, site: Site) -> None:
    if not policy.may_enter_data(request.user, site):
        raise PermissionDenied(_("You may not enter data at %(site)s.") % {"site": site.code})


def _date(form: dict[str, str], name: str, errors: dict[str, str]) -> dt.date | None:
    value = form.get(name, "")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors[name] = _("%(field)s: %(value)r is not a date (YYYY-MM-DD)") % {
            "field": name,
            "value": value,
        }
        return None


def _time(form: dict[str, str], name: str, errors: dict[str, str]) -> dt.time | None:
    value = form.get(name, "")
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        errors[name] = _("%(field)s: %(value)r is not a time (HH:MM)") % {
            "field": name,
            "value": value,
        }
        return None


def _integer(form: dict[str, str], name: str, errors: dict[str, str]) -> int | None:
    value = form.get(name, "")
    try:
        return int(value)
    except ValueError:
        errors[name] = _("%(field)s: %(value)r is not a number") % {"field": name, "value": value}
        return None


def _form(request: HttpRequest, *names: str) -> dict[str, str]:
    return {name: request.POST.get(name, "").strip() for name in names}


def _language() -> str:
    return "fr" if (translation.get_language() or "en").startswith("fr") else "en"


def _visit_labels(study: Study) -> dict[str, str]:
    language = _language()
    return {visit.code: visit.label.get(language) for visit in study_definition(study).visits}


def _context(study: Study, subject: Subject | None = None, **extra: Any) -> dict[str, Any]:
    return {"study": study, "subject": subject, **extra}


# --------------------------------------------------------------------------------------------
# Randomize


@login_required
@require_http_methods(["GET", "POST"])
def randomize(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """The checks (randomized yet, eligible, consented, list and stratum), then randomization."""
    found = _randomized_study(request, study)
    subject = _subject(request, found, subject_id)
    may_enter = policy.may_enter_data(request.user, subject.site)
    form = {"d0_date": timezone.localdate().isoformat()}
    errors: dict[str, str] = {}
    if request.method == "POST":
        _require_data_entry(request, subject.site)
        form = _form(request, "d0_date")
        d0 = _date(form, "d0_date", errors)
        if not errors:
            try:
                result = allocation.randomize(subject, by=request.user, on=d0)
            except RandomizationError as error:
                errors[error.field] = str(error)
            else:
                messages.success(
                    request,
                    _("%(subject)s randomized: %(number)s. Dispense kits %(kits)s (%(visit)s).")
                    % {
                        "subject": result.subject_id,
                        "number": result.randomization_number,
                        "kits": ", ".join(str(n) for n in result.kit_numbers) or "–",
                        "visit": result.dispensed_visit or "–",
                    },
                )
                return redirect("randomization:treatment", found.code, subject.subject_id)
    refusals = allocation.refusal_reasons(subject)
    return render(
        request,
        "web/randomization/randomize.html",
        _context(
            found,
            subject,
            checks=_checks(subject, refusals),
            refusals=refusals,
            may_enter=may_enter,
            form=form,
            errors=errors,
        ),
        status=400 if errors else 200,
    )


def _checks(subject: Subject, refusals: list[RandomizationError]) -> list[dict[str, Any]]:
    failed = {refusal.field: refusal.message for refusal in refusals}
    labels = [
        ("subject", _("Not yet randomized")),
        ("eligibility", _("Eligible (latest assessment)")),
        ("consent", _("Valid signed consent")),
        ("list", _("Sealed randomization list")),
        ("stratum", _("A free row in the site's stratum")),
    ]
    return [
        {"field": field, "label": label, "ok": field not in failed, "message": failed.get(field)}
        for field, label in labels
    ]


# --------------------------------------------------------------------------------------------
# Treatment: dispensing, administration, returns


@login_required
@require_http_methods(["GET", "POST"])
def treatment(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """Allocation number, dosing visits with their kits, administrations, compliance."""
    found = _randomized_study(request, study)
    subject = _subject(request, found, subject_id)
    errors: dict[str, str] = {}
    form: dict[str, str] = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        handler = _TREATMENT_ACTIONS.get(action)
        if handler is None:
            errors["action"] = _("action: %(value)r is not an action of this page") % {
                "value": action
            }
        else:
            allowed = (
                policy.may_enter_data(request.user, subject.site)
                if action == "administer"
                else _may_handle_kits(request.user, subject.site)
            )
            if not allowed:
                raise PermissionDenied(
                    _("You may not handle kits at %(site)s.") % {"site": subject.site.code}
                )
            form = handler(request, subject, errors)
            if not errors:
                return redirect("randomization:treatment", found.code, subject.subject_id)
    summary = treatment_summary(request.user, subject)
    labels = _visit_labels(found)
    dispensed = {d["visit"]: d for d in summary["dispensations"]}
    dosing_rows = [
        {
            **v,
            "label": labels.get(v["visit"], v["visit"]),
            "dispensation": dispensed.get(v["visit"]),
        }
        for v in summary.get("dosing_visits", [])
    ]
    staff = screening.consent_takers(subject.site)
    return render(
        request,
        "web/randomization/treatment.html",
        _context(
            found,
            subject,
            summary=summary,
            dosing_rows=dosing_rows,
            may_handle_kits=_may_handle_kits(request.user, subject.site),
            may_enter=policy.may_enter_data(request.user, subject.site),
            may_unblind=_is_investigator_at(request.user, subject.site),
            open_visits=[row for row in dosing_rows if not row["dispensed"]],
            open_kits=_kits_with_units_left(summary, supply.regimen(found).units_per_kit),
            staff=staff,
            injection_sites=InjectionSite.choices,
            today=timezone.localdate().isoformat(),
            form=form,
            errors=errors,
        ),
        status=400 if errors else 200,
    )


def _dispense(request: HttpRequest, subject: Subject, errors: dict[str, str]) -> dict[str, str]:
    form = _form(request, "visit", "on")
    on = _date(form, "on", errors)
    if not errors:
        try:
            dispensation = supply.dispense(subject, form["visit"], by=request.user, on=on)
        except RandomizationError as error:
            errors[error.field] = str(error)
        else:
            numbers = dispensation.kits.order_by("number").values_list("number", flat=True)
            messages.success(
                request,
                _("%(visit)s: dispense kits %(kits)s.")
                % {"visit": dispensation.visit_code, "kits": ", ".join(map(str, numbers))},
            )
    return form


def _administer(request: HttpRequest, subject: Subject, errors: dict[str, str]) -> dict[str, str]:
    form = _form(request, "kit", "given_on", "given_time", "injection_site", "given_by")
    kit = _integer(form, "kit", errors)
    given_on = _date(form, "given_on", errors)
    given_time = _time(form, "given_time", errors)
    given_by = next(
        (u for u in screening.consent_takers(subject.site) if u.username == form["given_by"]), None
    )
    if given_by is None:
        errors["given_by"] = _(
            "given_by: %(value)r is not investigator or coordinator at %(site)s"
        ) % {
            "value": form["given_by"],
            "site": subject.site.code,
        }
    if not errors:
        try:
            supply.record_administration(
                subject,
                kit,
                given_on=given_on,
                given_time=given_time,
                injection_site=form["injection_site"],
                given_by=given_by,
                by=request.user,
            )
        except RandomizationError as error:
            errors[error.field] = str(error)
    return form


def _return(request: HttpRequest, subject: Subject, errors: dict[str, str]) -> dict[str, str]:
    form = _form(request, "kit", "reason")
    kit = _integer(form, "kit", errors)
    if not errors:
        if not Kit.objects.filter(subject=subject, number=kit).exists():
            errors["kit"] = _("kit: %(value)r was not dispensed to %(subject)s") % {
                "value": form["kit"],
                "subject": subject.subject_id,
            }
        else:
            try:
                supply.return_kit(subject.site, kit, reason=form["reason"], by=request.user)
            except RandomizationError as error:
                errors[error.field] = str(error)
    return form


_TREATMENT_ACTIONS = {"dispense": _dispense, "administer": _administer, "return": _return}


def _kits_with_units_left(summary: dict[str, Any], units_per_kit: int) -> list[int]:
    return [
        kit["number"]
        for item in summary["dispensations"]
        for kit in item["kits"]
        if kit["status"] == KitStatus.DISPENSED and len(kit["administrations"]) < units_per_kit
    ]


def _may_handle_kits(user: Any, site: Site) -> bool:
    held = policy.roles(user, site.study, site)
    return bool(
        held & {Role.INVESTIGATOR, Role.COORDINATOR, Role.PHARMACIST}
    ) and policy.may_see_site(user, site)


def _is_investigator_at(user: Any, site: Site) -> bool:
    return any(
        m.site_id == site.pk and m.role == Role.INVESTIGATOR
        for m in policy.memberships(user, site.study)
    )


# --------------------------------------------------------------------------------------------
# Emergency unblinding


@login_required
@require_http_methods(["GET", "POST"])
def unblind(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """An investigator reveals one subject's arm: reason and password re-entered."""
    found = _randomized_study(request, study)
    subject = _subject(request, found, subject_id)
    if not _is_investigator_at(request.user, subject.site):
        raise PermissionDenied(
            _("Only an investigator at %(site)s may unblind.") % {"site": subject.site.code}
        )
    errors: dict[str, str] = {}
    form = {"reason": ""}
    if request.method == "POST":
        form = _form(request, "reason")
        try:
            result = unblinding.unblind(
                subject,
                by=request.user,
                reason=form["reason"],
                password=request.POST.get("password", ""),
            )
        except RandomizationError as error:
            errors[error.field] = str(error)
        else:
            return render(
                request,
                "web/randomization/unblinded.html",
                _context(
                    found,
                    subject,
                    arm_name=result.arm.name(_language()),
                    arm_code=result.arm.code,
                    unblinding=result.unblinding,
                    notified=result.notified,
                ),
            )
    return render(
        request,
        "web/randomization/unblind.html",
        _context(found, subject, form=form, errors=errors),
        status=400 if errors else 200,
    )


@login_required
def unblindings(request: HttpRequest, study: str) -> HttpResponse:
    """Unblinding counts by site (for the DSMB) and the events at the user's sites."""
    found = _randomized_study(request, study)
    return render(
        request,
        "web/randomization/unblindings.html",
        _context(
            found,
            counts=unblinding.unblinding_counts(found),
            events=unblinding.unblindings_for(request.user, found),
        ),
    )


# --------------------------------------------------------------------------------------------
# Visit schedule and worklist


@login_required
@require_http_methods(["GET", "POST"])
def schedule_page(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """Planned dates and windows of every visit; record a visit done or missed; discontinue."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    errors: dict[str, str] = {}
    form: dict[str, str] = {}
    if request.method == "POST":
        _require_data_entry(request, subject.site)
        action = request.POST.get("action", "")
        handler = _SCHEDULE_ACTIONS.get(action)
        if handler is None:
            errors["action"] = _("action: %(value)r is not an action of this page") % {
                "value": action
            }
        else:
            form = handler(request, subject, errors)
            if not errors:
                return redirect("randomization:schedule", found.code, subject.subject_id)
    today = timezone.localdate()
    labels = _visit_labels(found)
    visits = [
        {"visit": v, "label": labels.get(v.code, v.code), "state": schedule.visit_state(v, today)}
        for v in schedule.visits_of(subject)
    ]
    return render(
        request,
        "web/randomization/schedule.html",
        _context(
            found,
            subject,
            visits=visits,
            open_visits=[v["visit"].code for v in visits if v["visit"].status == "planned"],
            deviations=schedule.deviations_of(subject),
            discontinuation=Discontinuation.objects.filter(subject=subject).first(),
            exit_kinds=ExitKind.choices,
            may_enter=policy.may_enter_data(request.user, subject.site),
            today=today.isoformat(),
            form=form,
            errors=errors,
        ),
        status=400 if errors else 200,
    )


def _visit_done(request: HttpRequest, subject: Subject, errors: dict[str, str]) -> dict[str, str]:
    form = _form(request, "visit", "done_on")
    done_on = _date(form, "done_on", errors)
    if not errors:
        try:
            visit = schedule.record_visit(subject, form["visit"], done_on, by=request.user)
        except schedule.ScheduleError as error:
            errors[error.field] = str(error)
        else:
            if visit.out_of_window:
                messages.warning(
                    request,
                    _("%(visit)s was done outside its window: a protocol deviation is recorded.")
                    % {"visit": visit.code},
                )
    return form


def _visit_missed(request: HttpRequest, subject: Subject, errors: dict[str, str]) -> dict[str, str]:
    form = _form(request, "visit", "reason")
    try:
        schedule.mark_missed(subject, form["visit"], reason=form["reason"], by=request.user)
    except schedule.ScheduleError as error:
        errors[error.field] = str(error)
    return form


def _discontinue(request: HttpRequest, subject: Subject, errors: dict[str, str]) -> dict[str, str]:
    form = _form(request, "kind", "on", "reason")
    on = _date(form, "on", errors)
    if not errors:
        try:
            schedule.discontinue(
                subject, form["kind"], on=on, reason=form["reason"], by=request.user
            )
        except schedule.ScheduleError as error:
            errors[error.field] = str(error)
    return form


_SCHEDULE_ACTIONS = {"done": _visit_done, "missed": _visit_missed, "discontinue": _discontinue}


@login_required
def worklist(request: HttpRequest, study: str) -> HttpResponse:
    """Overdue, due, upcoming and missed visits at the user's sites, and low-stock warnings."""
    found = _study(request, study)
    site = _site_param(request, found)
    sites = [site] if site is not None else list(policy.visible_sites(request.user, found))
    labels = _visit_labels(found)
    items = [
        {"item": item, "label": labels.get(item.visit.code, item.visit.code)}
        for item in schedule.worklist(request.user, found, site)
    ]
    return render(
        request,
        "web/randomization/worklist.html",
        _context(
            found,
            items=items,
            site=site,
            sites=list(policy.visible_sites(request.user, found)),
            low_stock=[s.code for s in sites if supply.stock(s).low],
        ),
    )


# --------------------------------------------------------------------------------------------
# Pharmacy


@login_required
@require_http_methods(["GET", "POST"])
def pharmacy(request: HttpRequest, study: str) -> HttpResponse:
    """A site's kit stock: receive (pharmacist), destroy (pharmacist), see what is where."""
    found = _randomized_study(request, study)
    sites = list(policy.visible_sites(request.user, found))
    site = _site_param(request, found) or (sites[0] if sites else None)
    if site is None:
        raise Http404("no site")
    errors: dict[str, str] = {}
    form: dict[str, str] = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        handler = _PHARMACY_ACTIONS.get(action)
        if handler is None:
            errors["action"] = _("action: %(value)r is not an action of this page") % {
                "value": action
            }
        else:
            form = handler(request, site, errors)
            if not errors:
                return redirect(
                    f"{reverse('randomization:pharmacy', args=[found.code])}?site={site.code}"
                )
    unblinded = policy.may_see_allocation(request.user, found, site)
    arms = kit_arms_for(request.user, site) if unblinded else {}
    kits = [
        {"kit": kit, "arm": arms.get(kit.number)}
        for kit in Kit.objects.filter(site=site).select_related("subject", "dispensation")
    ]
    return render(
        request,
        "web/randomization/pharmacy.html",
        _context(
            found,
            site=site,
            sites=sites,
            stock=supply.stock(site),
            by_arm=_by_arm(request.user, found, site) if unblinded else None,
            unblinded=unblinded,
            kits=kits,
            is_pharmacist=Role.PHARMACIST in policy.roles(request.user, found, site),
            threshold=supply.regimen(found).low_stock_kits,
            form=form,
            errors=errors,
        ),
        status=400 if errors else 200,
    )


def _by_arm(user: Any, study: Study, site: Site) -> list[tuple[str, int]]:
    counts = stock_by_arm_for(user, site)
    return [(arm.name(_language()), counts.get(arm.code, 0)) for arm in arms_of(study)]


def _receive(request: HttpRequest, site: Site, errors: dict[str, str]) -> dict[str, str]:
    form = _form(request, "kits", "expiry", "lot")
    numbers: list[int] = []
    for text in form["kits"].replace(",", " ").split():
        try:
            numbers.append(int(text))
        except ValueError:
            errors["kits"] = _("kits: %(value)r is not a kit number") % {"value": text}
    expiry = _date(form, "expiry", errors)
    if not errors:
        try:
            kits = supply.receive_kits(
                site, numbers, expiry=expiry, lot=form["lot"], by=request.user
            )
        except NotAllowed as error:
            raise PermissionDenied(str(error)) from None
        except RandomizationError as error:
            errors[error.field] = str(error)
        else:
            messages.success(request, _("%(n)d kits received.") % {"n": len(kits)})
    return form


def _destroy(request: HttpRequest, site: Site, errors: dict[str, str]) -> dict[str, str]:
    form = _form(request, "kit", "reason")
    kit = _integer(form, "kit", errors)
    if not errors:
        try:
            supply.destroy_kit(site, kit, reason=form["reason"], by=request.user)
        except NotAllowed as error:
            raise PermissionDenied(str(error)) from None
        except RandomizationError as error:
            errors[error.field] = str(error)
    return form


_PHARMACY_ACTIONS = {"receive": _receive, "destroy": _destroy}
