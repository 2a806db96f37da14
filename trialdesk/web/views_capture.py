"""Case report form pages: casebook, forms, queries and SDV, signature, data management.

Every form page is rendered from the study file (groups, items, labels and help in the page's
language, units, ranges, code lists): there is no template per form, so an item added to the
study file appears without code. Every write goes through the services of
:mod:`trialdesk.capture` (``records.save_form``, ``queries``, ``verification``, ``signatures``,
``locks``), one audited transaction each; refused input re-renders the page with status 400 and
a message naming the item and the value, and nothing is written.

Access: a study the user has no role in, or a subject at a site they cannot see, is a 404; an
action their role does not allow is a 403. Nothing here loads an allocation: these pages are
the same for blinded and unblinded users.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from trialdesk.accounts import policy
from trialdesk.accounts.models import STUDY_ROLES, Role
from trialdesk.capture import cohort, locks, queries, records, signatures, verification
from trialdesk.capture.models import FormRecord, Lock, LockScope, Query, ValueState, Visit
from trialdesk.protocol.models import Study
from trialdesk.protocol.schema import Form, Item
from trialdesk.protocol.schema import Study as StudyDefinition
from trialdesk.screening import services as screening
from trialdesk.screening.models import Subject
from trialdesk.web.refusals import refusal

_INPUT_TYPES = {
    "integer": "number",
    "decimal": "text",
    "text": "text",
    "date": "date",
    "datetime": "datetime-local",
}


# --------------------------------------------------------------------------------------------
# Lookups


def _study(request: HttpRequest, code: str) -> Study:
    study = screening.find_study(request.user, code)
    if study is None:
        raise Http404(f"study {code!r} not found")
    return study


def _subject(request: HttpRequest, study: Study, subject_id: str) -> Subject:
    subject = screening.find_subject(request.user, study, subject_id)
    if subject is None:
        raise Http404(f"subject {subject_id!r} not found")
    # The study is already loaded (with its current version): share it rather than have the
    # role checks and the services fetch it again through the subject and its site.
    subject.study = study
    subject.site.study = study
    return subject


def _definition(study: Study) -> StudyDefinition:
    try:
        return records.definition_of(study)
    except records.CaptureError as error:
        raise Http404(str(error)) from None


def _form(definition: StudyDefinition, code: str) -> Form:
    form = next((form for form in definition.forms if form.code == code), None)
    if form is None:
        raise Http404(f"form {code!r} not found")
    return form


def _language() -> str:
    return "fr" if (translation.get_language() or "en").startswith("fr") else "en"


def _text(text: Any) -> str:
    return text.get(_language()) if text is not None else ""


def _roles(request: HttpRequest, subject: Subject) -> dict[str, bool]:
    """Which controls of the subject's pages the user gets, from one look-up of their roles.

    The answers are those of the services' own checks, which each look the roles up again when
    an action is posted: :func:`policy.may_enter_data`, :func:`verification.may_verify`,
    :func:`queries.may_raise`, :func:`signatures.may_sign` and :func:`locks.may_lock` (a test
    compares them for every persona). The subject is one the user may see (:func:`_subject`).
    """
    site = subject.site
    memberships = policy.memberships(request.user, subject.study)
    held = [(Role(role), site_id) for role, site_id in memberships.values_list("role", "site_id")]
    in_study = {role for role, _ in held}
    here = {role for role, site_id in held if site_id in (None, site.pk)}
    at_site = {role for role, site_id in held if site_id == site.pk}
    sees_site = bool(in_study & STUDY_ROLES) or any(site_id == site.pk for _, site_id in held)
    may_enter = bool(at_site & policy.DATA_ENTRY_ROLES)
    return {
        "may_enter": may_enter,
        "may_verify": Role.MONITOR in here and sees_site,
        "may_raise": sees_site and bool(here & queries.REVIEWER_ROLES),
        "may_sign": Role.INVESTIGATOR in here and may_enter,
        "may_lock": Role.DATA_MANAGER in in_study,
    }


# --------------------------------------------------------------------------------------------
# Casebook


@login_required
def casebook(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """The subject's visits × forms with their statuses, repeating records, signatures."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    definition = _definition(found)
    rows = [
        {
            "visit": row["visit"],
            "label": _text(definition.visit(row["visit"].code).label),
            "forms": [
                {**cell, "label": _text(cell["form"].label), "code": cell["form"].code}
                for cell in row["forms"]
            ],
            "signed": _visit_signature(subject, row["visit"].code),
        }
        for row in records.casebook(subject, definition)
    ]
    repeating = [
        {
            "form": form,
            "label": _text(form.label),
            "records": FormRecord.objects.filter(subject=subject, form=form.code).order_by(
                "number"
            ),
        }
        for form in definition.forms
        if form.repeating and definition.visits_of(form.code)
    ]
    screening_record = None
    if definition.screening_form and definition.kind == "observational":
        screening_record = records.find_record(subject, definition.screening_form)
    return render(
        request,
        "web/capture/casebook.html",
        {
            "study": found,
            "subject": subject,
            "rows": rows,
            "repeating": repeating,
            "screening_record": screening_record,
            "signatures": signatures.signatures_of(subject),
            "subject_lock": locks.active_lock(LockScope.SUBJECT, study=found, subject=subject),
            **_roles(request, subject),
        },
    )


def _visit_signature(subject: Subject, visit_code: str) -> Any:
    return (
        subject.signatures.filter(visit_code=visit_code, invalidated_at__isnull=True)
        .order_by("-signed_at")
        .first()
    )


# --------------------------------------------------------------------------------------------
# Form pages


@login_required
@require_http_methods(["GET", "POST"])
def visit_form(
    request: HttpRequest, study: str, subject_id: str, visit: str, form: str
) -> HttpResponse:
    """One visit form of a subject: entry, queries, SDV and lock controls."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    definition = _definition(found)
    declared = _form(definition, form)
    if declared.repeating:
        raise Http404(f"form {form!r} is a repeating form")
    if visit and not Visit.objects.filter(subject=subject, code=visit).exists():
        raise Http404(f"visit {visit!r} not found")
    if visit and declared.code not in definition.schedule.get(visit, []):
        raise Http404(f"form {form!r} is not done at {visit}")
    record = records.find_record(subject, declared.code, visit_code=visit)
    return _form_page(request, found, subject, definition, declared, record=record, visit=visit)


@login_required
@require_http_methods(["GET", "POST"])
def screening_form(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """The enrolment form of an observational study's subject (no visit)."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    definition = _definition(found)
    if not definition.screening_form or definition.kind != "observational":
        raise Http404("no enrolment form")
    declared = _form(definition, definition.screening_form)
    record = records.find_record(subject, declared.code)
    return _form_page(request, found, subject, definition, declared, record=record, visit="")


@login_required
@require_http_methods(["GET", "POST"])
def repeating_record(
    request: HttpRequest, study: str, subject_id: str, form: str, number: int | None = None
) -> HttpResponse:
    """A repeating record (AE, medication, infection, sample…): ``number`` None creates one."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    definition = _definition(found)
    declared = _form(definition, form)
    if not declared.repeating:
        raise Http404(f"form {form!r} is not a repeating form")
    record = None
    if number is not None:
        record = records.find_record(subject, declared.code, number=number)
        if record is None:
            raise Http404(f"{form} #{number} not found")
    visit = request.GET.get("visit") or request.POST.get("visit") or ""
    if visit and not Visit.objects.filter(subject=subject, code=visit).exists():
        raise Http404(f"visit {visit!r} not found")
    return _form_page(
        request,
        found,
        subject,
        definition,
        declared,
        record=record,
        visit=record.visit_code if record else visit,
    )


def _form_page(
    request: HttpRequest,
    study: Study,
    subject: Subject,
    definition: StudyDefinition,
    form: Form,
    *,
    record: FormRecord | None,
    visit: str,
) -> HttpResponse:
    errors: dict[str, str] = {}
    entered: dict[str, Any] | None = None
    if request.method == "POST":
        action = _action_of(request.POST)
        try:
            record = _act(request, subject, form, record=record, visit=visit, action=action)
        except records.CaptureNotAllowed as error:
            raise PermissionDenied(str(error)) from None
        except records.HardCheckFailed as error:
            errors = {error.field: refusal(error, form)}
            entered = request.POST.dict()
        except records.CaptureError as error:
            errors = {error.field: refusal(error, form)}
            locked = isinstance(error, records.RecordLocked)
            entered = request.POST.dict() if action == "save" and not locked else None
        else:
            return redirect(_record_url(study, subject, form, record, visit))
    context = {
        "study": study,
        "subject": subject,
        "form": form,
        "form_label": _text(form.label),
        "form_help": _text(form.help),
        "visit": visit,
        "visit_label": _text(definition.visit(visit).label) if visit else "",
        "record": record,
        "groups": _groups(definition, form, record, entered, _open_items(record)),
        "queries": _queries(request, record),
        "record_lock": (
            locks.active_lock(LockScope.FORM, study=study, record=record) if record else None
        ),
        "locked": bool(record and records.active_locks(record).exists()),
        "reason": (entered or {}).get("reason", ""),
        "complete": (
            entered.get("complete") == "on" if entered else bool(record and record.completed)
        ),
        "errors": errors,
        **_roles(request, subject),
    }
    return render(request, "web/capture/form.html", context, status=400 if errors else 200)


def _act(
    request: HttpRequest,
    subject: Subject,
    form: Form,
    *,
    record: FormRecord | None,
    visit: str,
    action: str,
) -> FormRecord:
    user = request.user
    post = request.POST
    if action == "save":
        data = _posted_values(form, post)
        result = records.save_form(
            subject,
            form.code,
            data,
            by=user,
            visit_code=visit,
            number=record.number if record is not None and record.repeating else None,
            reason=post.get("reason", ""),
            complete=post.get("complete") == "on",
        )
        for query in result.queries:
            messages.warning(request, _("A query was raised: %(text)s") % {"text": query.text})
        messages.success(request, _("Saved."))
        return result.record
    if record is None:
        raise records.CaptureError("record", "nothing is saved yet")
    if action == "verify_form":
        verification.verify_record(record, by=user)
    elif action == "verify_item":
        item = post.get("sdv_item") or post.get("item", "")
        verification.verify_item(record, item, by=user)
    elif action == "raise_query":
        item = post.get("query_item") or post.get("item", "")
        text = post.get(f"query__{item}") if post.get("query_item") else post.get("text", "")
        queries.raise_query(record, item, text or "", by=user)
    elif action in ("answer", "close", "reopen"):
        query = Query.objects.filter(record=record, pk=post.get("query") or 0).first()
        if query is None:
            raise records.CaptureError("query", "no such query on this form")
        {
            "answer": queries.answer_query,
            "close": queries.close_query,
            "reopen": queries.reopen_query,
        }[action](query, post.get("text", ""), by=user)
    elif action == "lock":
        locks.lock_record(record, by=user, reason=post.get("text", ""))
    elif action == "unlock":
        lock = locks.active_lock(LockScope.FORM, study=subject.study, record=record)
        if lock is None:
            raise records.CaptureError("lock", "this form is not locked on its own")
        locks.unlock(lock, by=user, reason=post.get("text", ""))
    else:
        raise records.CaptureError("action", f"{action!r} is not an action of this page")
    return record


def _action_of(post: Any) -> str:
    """The action of a post: the per-item SDV and query buttons name theirs by their field."""
    if post.get("sdv_item"):
        return "verify_item"
    if post.get("query_item"):
        return "raise_query"
    return post.get("action", "save")


def _posted_values(form: Form, post: Any) -> dict[str, Any]:
    """The items of a posted form page: a value, or a state with its reason."""
    data: dict[str, Any] = {}
    for item in form.items:
        if item.computed is not None:
            continue
        state = post.get(f"{item.code}__state") or ValueState.VALUE
        if state != ValueState.VALUE:
            data[item.code] = {"state": state, "reason": post.get(f"{item.code}__reason", "")}
        elif item.code in post:
            data[item.code] = post.get(item.code)
    return data


def _record_url(study: Study, subject: Subject, form: Form, record: FormRecord, visit: str) -> str:
    if form.repeating:
        return reverse(
            "capture:record", args=[study.code, subject.subject_id, form.code, record.number]
        )
    if not visit:
        return reverse("capture:enrolment", args=[study.code, subject.subject_id])
    return reverse("capture:form", args=[study.code, subject.subject_id, visit, form.code])


def _open_items(record: FormRecord | None) -> dict[str, int]:
    """Open or answered queries per item of a record."""
    counts: dict[str, int] = {}
    if record is not None:
        for item in record.queries.exclude(status="closed").values_list("item", flat=True):
            counts[item] = counts.get(item, 0) + 1
    return counts


def _groups(
    definition: StudyDefinition,
    form: Form,
    record: FormRecord | None,
    entered: dict[str, Any] | None,
    open_items: dict[str, int],
) -> list[dict[str, Any]]:
    """The form's groups and items as the template shows them (labels in the page's language)."""
    rows = {row.item: row for row in record.values.all()} if record is not None else {}
    groups = []
    for group in form.item_groups:
        if group.enabled_by and not definition.setting(group.enabled_by) and not group.items:
            continue
        groups.append(
            {
                "code": group.code,
                "label": _text(group.label) if len(form.item_groups) > 1 else "",
                "items": [
                    {
                        **_item_view(definition, item, rows.get(item.code), entered),
                        "open_queries": open_items.get(item.code, 0),
                    }
                    for item in group.items
                ],
            }
        )
    return groups


def _item_view(
    definition: StudyDefinition, item: Item, row: Any, entered: dict[str, Any] | None
) -> dict[str, Any]:
    value = row.value if row is not None else None
    state = row.state if row is not None else ValueState.VALUE
    reason = row.reason if row is not None else ""
    if entered is not None and item.computed is None:
        value = entered.get(item.code, value)
        state = entered.get(f"{item.code}__state", state)
        reason = entered.get(f"{item.code}__reason", reason)
    shown = "" if value is None else value
    if item.data_type == "boolean":
        shown = {True: "true", False: "false", "true": "true", "false": "false"}.get(value, "")
    elif item.data_type == "datetime" and isinstance(value, str):
        shown = value[:16]
    kind = _INPUT_TYPES.get(item.data_type, "text")
    if item.data_type == "date" and (item.partial or item.allow_never):
        kind = "text"
    return {
        "code": item.code,
        "label": _text(item.label),
        "help": _text(item.help),
        "unit": item.unit or "",
        "min": item.min,
        "max": item.max,
        "data_type": item.data_type,
        "input": kind,
        "step": "1" if item.data_type == "integer" else "",
        "max_length": item.max_length,
        "pattern": item.pattern or "",
        "required": item.required,
        "computed": item.computed is not None,
        "choices": (
            [(code.code, _text(code.label)) for code in definition.codelist(item.codelist).items]
            if item.codelist
            else []
        ),
        "value": shown,
        "state": state,
        "reason": reason,
        "verified": bool(row is not None and row.verified_at),
        "partial": item.partial,
        "allow_never": item.allow_never,
    }


def _queries(request: HttpRequest, record: FormRecord | None) -> list[dict[str, Any]]:
    if record is None:
        return []
    user_id = getattr(request.user, "pk", None)
    return [
        {
            "query": query,
            "messages": list(query.messages.all()),
            "mine": query.raised_by_id in (None, user_id),
        }
        for query in record.queries.prefetch_related("messages")
    ]


# --------------------------------------------------------------------------------------------
# Cohort enrolment


@login_required
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest, study: str) -> HttpResponse:
    """Enrol a subject in an observational study: its enrolment form, then the casebook."""
    found = _study(request, study)
    definition = _definition(found)
    if definition.kind != "observational" or not definition.screening_form:
        raise Http404(f"study {study!r} has no cohort enrolment")
    sites = screening.data_entry_sites(request.user, found)
    if not sites:
        raise PermissionDenied("only site staff enrol subjects")
    form = _form(definition, definition.screening_form)
    errors: dict[str, str] = {}
    entered: dict[str, Any] | None = None
    if request.method == "POST":
        site = next((s for s in sites if s.code == request.POST.get("site")), None)
        try:
            if site is None:
                raise records.CaptureError("site", f"{request.POST.get('site')!r} is not your site")
            subject = cohort.enrol(found, site, _posted_values(form, request.POST), by=request.user)
        except records.CaptureNotAllowed as error:
            raise PermissionDenied(str(error)) from None
        except records.CaptureError as error:
            errors = {error.field: refusal(error, form)}
            entered = request.POST.dict()
        else:
            messages.success(request, _("Enrolled."))
            return redirect("capture:casebook", found.code, subject.subject_id)
    return render(
        request,
        "web/capture/enrol.html",
        {
            "study": found,
            "sites": sites,
            "form_label": _text(form.label),
            "groups": _groups(definition, form, None, entered, {}),
            "errors": errors,
            "may_enter": True,
        },
        status=400 if errors else 200,
    )


# --------------------------------------------------------------------------------------------
# Signature


@login_required
@require_http_methods(["GET", "POST"])
def sign(request: HttpRequest, study: str, subject_id: str) -> HttpResponse:
    """The investigator signs a visit (``?visit=D0``) or the whole casebook."""
    found = _study(request, study)
    subject = _subject(request, found, subject_id)
    if not signatures.may_sign(request.user, subject):
        raise PermissionDenied("only the site's investigator may sign")
    visit = request.GET.get("visit") or request.POST.get("visit") or None
    if visit and not Visit.objects.filter(subject=subject, code=visit).exists():
        raise Http404(f"visit {visit!r} not found")
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            signatures.sign(
                subject,
                by=request.user,
                password=request.POST.get("password", ""),
                visit_code=visit,
            )
        except records.CaptureError as error:
            errors = {error.field: refusal(error)}
        else:
            messages.success(request, _("Signed."))
            return redirect("capture:casebook", found.code, subject.subject_id)
    what = _("visit %(visit)s") % {"visit": visit} if visit else _("subject casebook")
    return render(
        request,
        "web/capture/sign.html",
        {
            "study": found,
            "subject": subject,
            "visit": visit or "",
            "meaning": signatures.MEANING_SHOWN % {"what": what},
            "records": FormRecord.objects.filter(
                subject=subject, **({"visit_code": visit} if visit else {})
            ),
            "errors": errors,
        },
        status=400 if errors else 200,
    )


# --------------------------------------------------------------------------------------------
# Data management


@login_required
@require_http_methods(["GET", "POST"])
def data_management(request: HttpRequest, study: str) -> HttpResponse:
    """Query counts per site and age, open queries, and the locks of the study."""
    found = _study(request, study)
    may_lock = locks.may_lock(request.user, found)
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not may_lock:
            raise PermissionDenied("only a data manager may lock")
        try:
            _lock_action(request, found)
        except records.CaptureError as error:
            errors = {error.field: refusal(error)}
        else:
            return redirect("capture:data_management", found.code)
    open_queries = (
        queries.visible_queries(request.user, found)
        .exclude(status="closed")
        .select_related("record__subject")
        .order_by("raised_at")
    )
    return render(
        request,
        "web/capture/data_management.html",
        {
            "study": found,
            "counts": queries.counts_by_site(request.user, found),
            "open_queries": open_queries,
            "may_lock": may_lock,
            "study_lock": locks.active_lock(LockScope.STUDY, study=found),
            "locks": Lock.objects.filter(study=found, unlocked_at__isnull=True).select_related(
                "subject", "record"
            )
            if may_lock
            else [],
            "errors": errors,
        },
        status=400 if errors else 200,
    )


def _lock_action(request: HttpRequest, study: Study) -> None:
    action = request.POST.get("action")
    reason = request.POST.get("reason", "")
    subject_id = request.POST.get("subject", "")
    if action == "lock_study":
        locks.lock_study(study, by=request.user, reason=reason)
        messages.success(request, _("Study %(study)s locked.") % {"study": study.code})
    elif action == "lock_subject":
        subject = _subject(request, study, subject_id)
        locks.lock_subject(subject, by=request.user, reason=reason)
        messages.success(
            request, _("Casebook of %(subject)s locked.") % {"subject": subject.subject_id}
        )
    elif action == "unlock":
        lock = Lock.objects.filter(study=study, pk=request.POST.get("lock") or 0).first()
        if lock is None:
            raise Http404("lock not found")
        locks.unlock(lock, by=request.user, reason=reason)
        messages.success(request, _("Unlocked: %(lock)s.") % {"lock": lock})
    else:
        raise records.CaptureError("action", f"{action!r} is not an action of this page")
