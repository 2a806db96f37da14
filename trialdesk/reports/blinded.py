"""The numbers of the blinded reports, read from tables that hold no allocation.

Everything here reads the screening log, the visit schedules, the case report forms, the safety
tables and the protocol; nothing reads :mod:`trialdesk.randomization` (allocations, the sealed
list, kits). A subject counts as randomized when its screening entry says so; the arms are pooled
because they are never known here.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.utils import timezone

from trialdesk.capture.models import (
    Discontinuation,
    ExitKind,
    ItemValue,
    Query,
    QueryStatus,
    ValueState,
    Visit,
    VisitStatus,
)
from trialdesk.protocol.definitions import study_definition
from trialdesk.protocol.models import Study
from trialdesk.safety.models import AdverseEvent, SaeReport
from trialdesk.screening.models import (
    EligibilityAssessment,
    Outcome,
    ScreeningEntry,
    Subject,
)

from .consort import Consort

#: Baseline endpoints of the baseline table: (label, endpoint code in the study file).
BASELINE_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("NASA total (0-12)", "NASA_CHANGE"),
    ("Pruritus NRS (0-10)", "PRURITUS"),
    ("DLQI (0-30)", "DLQI"),
)


@dataclass(frozen=True)
class SiteCounts:
    """One site's line of the enrolment table."""

    site: str
    screened: int
    screen_failed: int
    randomized: int
    visits_done: int
    visits_due: int
    visits_overdue: int
    queries_open: int


@dataclass(frozen=True)
class BlindedData:
    """All the numbers of a blinded report, pooled over the arms."""

    study_code: str
    study_title: str
    synthetic: bool
    as_of: dt.date
    consort: Consort
    sites: list[SiteCounts]
    enrolment: dict[str, list[tuple[dt.date, int, int]]]
    failure_reasons: list[tuple[str, int]]
    baseline: list[tuple[str, str]]
    adverse_events: list[tuple[str, int, int]]
    saes: list[dict[str, Any]]
    queries: dict[str, int] = field(default_factory=dict)


def is_synthetic(study: Study) -> bool:
    """Does the study carry the demo's marker (looked up by app label, never imported)?"""
    if not apps.is_installed("trialdesk.demo"):
        return False
    marker = apps.get_model("demo", "DemoMarker")
    return marker.objects.filter(study=study).exists()


def collect(study: Study, site_codes: Iterable[str] | None = None) -> BlindedData:
    """Read the blinded numbers of ``study``, for the given sites (all sites when None)."""
    today = timezone.localdate()
    sites = list(study.sites.order_by("code"))
    if site_codes is not None:
        wanted = set(site_codes)
        sites = [s for s in sites if s.code in wanted]
    entries = list(
        ScreeningEntry.objects.filter(study=study, site__in=sites).select_related("site")
    )
    subjects = list(
        Subject.objects.filter(
            study=study, site__in=sites, screening_entry__outcome=Outcome.RANDOMIZED
        )
        .select_related("site")
        .order_by("subject_id")
    )
    visits = list(Visit.objects.filter(subject__in=subjects).select_related("subject__site"))
    open_queries = Query.objects.filter(
        record__subject__study=study, record__subject__site__in=sites
    ).exclude(status=QueryStatus.CLOSED)
    return BlindedData(
        study_code=study.code,
        study_title=study.title,
        synthetic=is_synthetic(study),
        as_of=today,
        consort=_consort(entries, subjects, visits, _last_visit(study)),
        sites=[_site_counts(site, entries, visits, open_queries, today) for site in sites],
        enrolment=_enrolment(entries),
        failure_reasons=_failure_reasons(entries, _criterion_texts(study)),
        baseline=_baseline(study, subjects),
        adverse_events=_adverse_events(subjects),
        saes=_saes(subjects),
        queries=dict(Counter(open_queries.values_list("status", flat=True))),
    )


def _last_visit(study: Study) -> str:
    return study_definition(study).visits[-1].code


def _consort(
    entries: list[ScreeningEntry], subjects: list[Subject], visits: list[Visit], last_visit: str
) -> Consort:
    outcomes = Counter(e.outcome for e in entries)
    exited = dict(
        Discontinuation.objects.filter(subject__in=subjects).values_list("subject_id", "kind")
    )
    exits = Counter(exited.values())
    # Completed: the schedule's last visit done, without a withdrawal or loss to follow-up.
    completed = sum(
        1
        for v in visits
        if v.code == last_visit and v.status == VisitStatus.DONE and v.subject_id not in exited
    )
    dosed = (
        ItemValue.objects.filter(
            record__subject__in=subjects, item="administered_at", state=ValueState.VALUE
        )
        .values("record__subject")
        .distinct()
        .count()
    )
    lost, withdrawn = exits[ExitKind.LOST_TO_FOLLOW_UP], exits[ExitKind.WITHDRAWN]
    return Consort(
        assessed=len(entries),
        excluded_not_eligible=outcomes[Outcome.SCREEN_FAILED],
        excluded_declined=outcomes[Outcome.WITHDREW],
        pending=outcomes[Outcome.IN_PROGRESS] + outcomes[Outcome.ELIGIBLE],
        randomized=outcomes[Outcome.RANDOMIZED],
        received=dosed,
        lost=lost,
        withdrawn=withdrawn,
        completed=completed,
        ongoing=len(subjects) - lost - withdrawn - completed,
        analysed_itt=len(subjects),
        analysed_safety=dosed,
    )


def _site_counts(
    site: Any, entries: list[ScreeningEntry], visits: list[Visit], queries: Any, today: dt.date
) -> SiteCounts:
    mine = [e for e in entries if e.site_id == site.pk]
    own_visits = [v for v in visits if v.subject.site_id == site.pk]
    planned = [v for v in own_visits if v.status == VisitStatus.PLANNED]
    return SiteCounts(
        site=site.code,
        screened=len(mine),
        screen_failed=sum(1 for e in mine if e.outcome == Outcome.SCREEN_FAILED),
        randomized=sum(1 for e in mine if e.outcome == Outcome.RANDOMIZED),
        visits_done=sum(1 for v in own_visits if v.status == VisitStatus.DONE),
        visits_due=sum(1 for v in planned if v.window_start <= today <= v.window_end),
        visits_overdue=sum(1 for v in planned if v.window_end < today),
        queries_open=queries.filter(record__subject__site=site).count(),
    )


def _enrolment(entries: list[ScreeningEntry]) -> dict[str, list[tuple[dt.date, int, int]]]:
    """Per site, cumulative (date, screened, randomized) at each screening date."""
    by_site: dict[str, list[ScreeningEntry]] = defaultdict(list)
    for entry in sorted(entries, key=lambda e: (e.screening_date, e.number)):
        by_site[entry.site.code].append(entry)
    curves = {}
    for code, own in sorted(by_site.items()):
        screened = randomized = 0
        points = []
        for entry in own:
            screened += 1
            randomized += entry.outcome == Outcome.RANDOMIZED
            points.append((entry.screening_date, screened, randomized))
        curves[code] = points
    return curves


def _criterion_texts(study: Study) -> dict[str, str]:
    """Criterion id to its English text, from the study definition."""
    return {c.id: c.text.en for c in study_definition(study).eligibility}


def _failure_reasons(entries: list[ScreeningEntry], texts: dict[str, str]) -> list[tuple[str, int]]:
    """(criterion id and text, screen failures citing it), most frequent first."""
    reasons: Counter[str] = Counter()
    for entry in entries:
        if entry.outcome == Outcome.SCREEN_FAILED:
            reasons.update(entry.failure_reasons or ["(not given)"])
    labelled = ((f"{key}: {texts[key]}" if key in texts else key, n) for key, n in reasons.items())
    return sorted(labelled, key=lambda kv: (-kv[1], kv[0]))


def _baseline(study: Study, subjects: list[Subject]) -> list[tuple[str, str]]:
    rows = [("Randomized (arms pooled)", str(len(subjects)))]
    ages, sexes = [], Counter()
    for subject in subjects:
        assessment = EligibilityAssessment.objects.filter(subject=subject).order_by("-pk").first()
        if assessment is None:
            continue
        data = assessment.data
        if data.get("birth_date") and data.get("screening_date"):
            born = dt.date.fromisoformat(data["birth_date"])
            seen = dt.date.fromisoformat(data["screening_date"])
            ages.append((seen - born).days / 365.25)
        sexes[data.get("sex") or "?"] += 1
    rows.append(("Age, years: median (min-max)", _median_range(ages)))
    for sex, count in sorted(sexes.items()):
        rows.append((f"Sex {sex}: n (%)", _n_pct(count, len(subjects))))
    definition = study_definition(study)
    d0 = next(v.code for v in definition.visits if v.day == 0)
    endpoints = {e.code: e for e in definition.endpoints}
    for label, code in BASELINE_ENDPOINTS:
        endpoint = endpoints.get(code)
        if endpoint is None:
            continue
        values = ItemValue.objects.filter(
            record__subject__in=subjects,
            record__form=endpoint.form,
            record__visit_code=d0,
            item=endpoint.item,
            state=ValueState.VALUE,
        ).values_list("value", flat=True)
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        rows.append((f"{label}: mean (SD), n", _mean_sd(numbers)))
    return rows


def _median_range(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.1f} ({sd:.1f}), {len(values)}"


def _n_pct(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.0f}%)" if total else "0"


def _adverse_events(subjects: list[Subject]) -> list[tuple[str, int, int]]:
    """(term, events, subjects) pooled; the AE form carries no MedDRA system organ class."""
    events = AdverseEvent.objects.filter(record__subject__in=subjects).values_list(
        "term", "record__subject_id"
    )
    counts: Counter[str] = Counter()
    people: dict[str, set[int]] = defaultdict(set)
    for term, subject_id in events:
        key = term.strip().capitalize()
        counts[key] += 1
        people[key].add(subject_id)
    return sorted(((t, n, len(people[t])) for t, n in counts.items()), key=lambda r: (-r[1], r[0]))


def _saes(subjects: list[Subject]) -> list[dict[str, Any]]:
    reports = SaeReport.objects.filter(adverse_event__record__subject__in=subjects).select_related(
        "adverse_event__record__subject__site"
    )
    rows = []
    for report in reports.order_by("clock_started_at"):
        event = report.adverse_event
        rows.append(
            {
                "subject": event.record.subject.subject_id,
                "term": event.term,
                "criteria": ", ".join(event.seriousness_criteria or []),
                "outcome": event.outcome or "-",
                "reported": "yes" if report.reported_at else "no",
            }
        )
    return rows
