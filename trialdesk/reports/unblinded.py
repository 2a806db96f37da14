"""The numbers of the unblinded reports (DSMB closed, final): everything by arm.

The arms come from the unblinded analysis datasets (:func:`trialdesk.analysis.datasets.
build_datasets` with the requesting user, which reads the allocation through the blinding
policy), the model results from the stored run of the analysis plan
(:mod:`trialdesk.analysis.runner`). When the latest unblinded run was made on other data (its
dataset hashes, study-file or plan differ from the datasets built now) or there is none, the plan
is run first, for the requesting user, and the provenance box says so.

Only users allowed to see the allocation at every site of the study get here
(:func:`check_access`, composed from :mod:`trialdesk.accounts.policy`): the unblinded
statistician and the DSMB; a site's unblinded pharmacist is refused (one site only).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from django.utils import timezone
from django.utils.translation import gettext as _

from trialdesk.accounts import policy
from trialdesk.analysis.datasets import DatasetBundle, build_datasets
from trialdesk.analysis.models import AnalysisResult, AnalysisRun, ResultStatus
from trialdesk.analysis.plan import AnalysisPlanFile, load_plan
from trialdesk.analysis.runner import ARM, latest_run, run_plan
from trialdesk.analysis.safety import safety_population
from trialdesk.capture.models import (
    ProtocolDeviation,
    Query,
    QueryMessage,
    QueryStatus,
)
from trialdesk.protocol import resolve_study_path
from trialdesk.protocol.definitions import study_definition
from trialdesk.protocol.models import Study
from trialdesk.safety.models import SaeReport
from trialdesk.screening.models import EligibilityAssessment, Subject

from .blinded import BlindedData, collect, is_synthetic
from .consort import ArmFlow, ConsortByArm
from .tables import Table, safety_tables

#: The primary endpoint: every analysis of the plan on it (primary or sensitivity) goes to the
#: primary endpoint table, in the plan's order.
PRIMARY_ENDPOINT = "NASA_CHANGE"
PRIMARY_ANCOVA = "NASA_ANCOVA"
PRIMARY_TIPPING = "NASA_TIPPING_POINT"
#: The primary endpoint's dataset, parameter and visit (the figure's points).
PRIMARY_DATA = ("ADNASA", "NASA", "W16")
#: The MMRM analyses drawn over time: (analysis id, panel title).
OVER_TIME: tuple[tuple[str, str], ...] = (
    ("PRURITUS_MMRM", "Pruritus NRS, change from D0"),
    ("PAIN_MMRM", "Skin pain NRS, change from D0"),
)
#: Baseline variables of ADSL: (column, label).
BASELINE_VARIABLES: tuple[tuple[str, str], ...] = (
    ("NASABL", "NASA total (0-12)"),
    ("PRURBL", "Pruritus NRS (0-10)"),
    ("PAINBL", "Skin pain NRS (0-10)"),
    ("DLQIBL", "DLQI (0-30)"),
    ("TEWLBL", "TEWL (g/m2/h)"),
)
#: Endpoints whose missing values by visit the data-quality section shows: (dataset, PARAMCD).
MISSING_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("ADNASA", "NASA"),
    ("ADPRUR", "PRURITUS"),
    ("ADPAIN", "PAIN"),
    ("ADDLQI", "DLQI"),
)
#: Age bins of the queries (days): (label, upper bound inclusive).
QUERY_AGE_BINS: tuple[tuple[str, float], ...] = (
    ("0-7 d", 7),
    ("8-30 d", 30),
    ("31-90 d", 90),
    ("> 90 d", math.inf),
)


class ReportAccessError(PermissionError):
    """The user may not get an unblinded report of the study; the message says who and why."""


def may_get_unblinded(user: Any, study: Study) -> bool:
    """May ``user`` see the allocation at every site of ``study`` (the policy, site by site)?"""
    sites = list(study.sites.all())
    return bool(sites) and all(
        policy.may_see_site(user, site) and policy.may_see_allocation(user, study, site)
        for site in sites
    )


def check_access(user: Any, study: Study) -> None:
    """Raise :class:`ReportAccessError` unless ``user`` may get the unblinded reports."""
    if user is None:
        raise ReportAccessError(
            f"user: the unblinded reports of {study.code} need a user with an unblinded role "
            "(unblinded statistician or DSMB)"
        )
    if not may_get_unblinded(user, study):
        raise ReportAccessError(
            f"user: {user.username!r} has no unblinded role at every site of {study.code} "
            "(unblinded statistician or DSMB needed)"
        )


@dataclass(frozen=True)
class Provenance:
    """Where the numbers come from: the analysis run, its inputs and whether it ran now."""

    run_id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    seed: int
    study_version: str
    study_sha256: str
    plan_version: str
    plan_sha256: str
    code_version: str
    dataset_hashes: dict[str, str]
    ran_now: bool
    why: str
    requested_by: str


@dataclass(frozen=True)
class UnblindedData:
    """All the numbers and figure data of an unblinded report."""

    study_code: str
    study_title: str
    synthetic: bool
    as_of: dt.date
    arms: tuple[str, ...]
    arm_names: dict[str, str]
    consort: ConsortByArm
    provenance: Provenance
    tables: dict[str, Table]
    primary_points: dict[str, list[float]]
    primary_lsmeans: list[dict[str, Any]]
    over_time: dict[str, list[dict[str, Any]]]
    query_ages: dict[str, Counter[str]]
    missing: dict[str, list[tuple[str, float]]]
    blinded: BlindedData
    not_run: list[tuple[str, str]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# The run


def _plan(study: Study) -> AnalysisPlanFile:
    return load_plan(resolve_study_path(study.code))


def current_run(
    study: Study, plan: AnalysisPlanFile, bundle: DatasetBundle
) -> tuple[AnalysisRun | None, str]:
    """The latest unblinded run if it was made on these very datasets, study file and plan.

    Returns the run (or None) and, when None, why a new run is needed.
    """
    run = latest_run(study, blinded=False)
    if run is None:
        return None, _("no unblinded run was stored")
    version = study.current_version
    if run.study_sha256 != version.sha256:
        return None, _("the stored run %(run)s was made on another study-file version") % {
            "run": run.pk
        }
    if run.plan_sha256 != plan.sha256:
        return None, _("the stored run %(run)s was made with another analysis plan") % {
            "run": run.pk
        }
    if run.dataset_hashes != bundle.hashes():
        return None, _("the data changed since the stored run %(run)s") % {"run": run.pk}
    if {r.analysis_id for r in run.results.all()} != {a.id for a in plan.analyses}:
        return None, _("the stored run %(run)s lacks analyses of the plan") % {"run": run.pk}
    return run, ""


def _provenance(run: AnalysisRun, ran_now: bool, why: str) -> Provenance:
    who = run.requested_by.username if run.requested_by_id else "-"
    return Provenance(
        run_id=run.pk,
        started_at=run.started_at,
        finished_at=run.finished_at,
        seed=run.seed,
        study_version=run.study_version_label,
        study_sha256=run.study_sha256,
        plan_version=run.plan_version,
        plan_sha256=run.plan_sha256,
        code_version=run.code_version,
        dataset_hashes=dict(run.dataset_hashes),
        ran_now=ran_now,
        why=why,
        requested_by=who,
    )


def collect_unblinded(
    study: Study,
    user: Any,
    *,
    seed: int | None = None,
    progress: Callable[[Any], None] | None = None,
) -> UnblindedData:
    """Read the numbers of the closed reports of ``study`` for ``user``, running the plan if needed.

    Raises
    ------
    ReportAccessError
        ``user`` may not see the allocation at every site.
    """
    check_access(user, study)
    plan = _plan(study)
    bundle = build_datasets(study, plan, blinded=False, user=user)
    run, why = current_run(study, plan, bundle)
    ran_now = run is None
    if run is None:
        run = run_plan(study, plan, blinded=False, user=user, seed=seed, progress=progress)
        run = AnalysisRun.objects.prefetch_related("results").get(pk=run.pk)
    results = {r.analysis_id: r for r in run.results.all()}
    definition = study_definition(study)
    arms = tuple(arm.code for arm in definition.arms)
    arm_names = {arm.code: arm.name.en for arm in definition.arms}
    adsl = bundle["ADSL"].frame
    blinded = collect(study)
    subjects = {
        s.subject_id: s
        for s in Subject.objects.filter(study=study, subject_id__in=list(adsl["USUBJID"]))
    }
    arm_of = dict(zip(adsl["USUBJID"], adsl[ARM], strict=True))
    today = timezone.localdate()
    consort = _consort(blinded.consort, adsl, arms)
    tables = {
        "baseline": _baseline(adsl, arms, subjects),
        "primary": _primary(results, plan),
        "primary_lsmeans": _lsmeans_table(results.get(PRIMARY_ANCOVA), arms),
        "tipping": _tipping(results.get(PRIMARY_TIPPING)),
        "over_time": _over_time_table(results, arms),
        "secondary": _secondary(results, plan),
        **safety_tables(bundle),
        "aesi": aesi_table(bundle),
        "saes": _saes(subjects, arm_of),
        "deviations": _deviations(subjects, arm_of, arms),
    }
    ages = _query_ages(study, today)
    missing = _missing_by_visit(bundle, definition, today)
    tables["queries"] = _queries_table(ages)
    tables["missing"] = _missing_table(missing)
    not_run = [(r.analysis_id, r.reason) for r in results.values() if r.status != ResultStatus.DONE]
    return UnblindedData(
        study_code=study.code,
        study_title=study.title,
        synthetic=is_synthetic(study),
        as_of=today,
        arms=arms,
        arm_names=arm_names,
        consort=consort,
        provenance=_provenance(run, ran_now, why),
        tables=tables,
        primary_points=_primary_points(bundle, arms),
        primary_lsmeans=_rows(results.get(PRIMARY_ANCOVA), "lsmeans"),
        over_time={title: _rows(results.get(aid), "lsmeans") for aid, title in OVER_TIME},
        query_ages=ages,
        missing=missing,
        blinded=blinded,
        not_run=not_run,
    )


# --------------------------------------------------------------------------------------------
# Formatting


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _p(value: Any) -> str:
    if value is None:
        return "-"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _ci(row: dict[str, Any], estimate: str = "estimate", digits: int = 2) -> str:
    return (
        f"{_num(row.get(estimate), digits)} "
        f"({_num(row.get('lower'), digits)} to {_num(row.get('upper'), digits)})"
    )


def _n_pct(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.0f}%)" if total else "0"


def _mean_sd(values: Sequence[float]) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "-"
    series = pd.Series(values, dtype=float)
    sd = series.std(ddof=1) if len(values) > 1 else 0.0
    return f"{series.mean():.1f} ({sd:.1f}), n={len(values)}"


def _median_range(values: Sequence[float], digits: int = 1) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "-"
    series = pd.Series(values, dtype=float)
    return f"{series.median():.{digits}f} ({series.min():.{digits}f}-{series.max():.{digits}f})"


def _rows(result: AnalysisResult | None, table: str) -> list[dict[str, Any]]:
    if result is None or result.status != ResultStatus.DONE:
        return []
    return list(result.tables.get(table, []))


# --------------------------------------------------------------------------------------------
# CONSORT and baseline


def _consort(pooled: Any, adsl: pd.DataFrame, arms: tuple[str, ...]) -> ConsortByArm:
    flows = []
    for arm in arms:
        mine = adsl.loc[adsl[ARM] == arm]
        flows.append(
            ArmFlow(
                arm=arm,
                allocated=len(mine),
                received=int((mine["SAFFL"] == "Y").sum()),
                lost=int((mine["DCSREAS"] == "lost_to_follow_up").sum()),
                withdrawn=int((mine["DCSREAS"] == "withdrawn").sum()),
                completed=int((mine["EOSSTT"] == "COMPLETED").sum()),
                ongoing=int((mine["EOSSTT"] == "ONGOING").sum()),
                analysed_itt=int((mine["ITTFL"] == "Y").sum()),
                analysed_pp=int((mine["PPROTFL"] == "Y").sum()),
                analysed_safety=int((mine["SAFFL"] == "Y").sum()),
            )
        )
    totals = {
        name: sum(getattr(flow, name) for flow in flows)
        for name in ("received", "lost", "withdrawn", "completed", "ongoing")
    }
    # Above randomization the screening log; below it the analysis datasets, summed over arms.
    enrolment = type(pooled)(
        assessed=pooled.assessed,
        excluded_not_eligible=pooled.excluded_not_eligible,
        excluded_declined=pooled.excluded_declined,
        pending=pooled.pending,
        randomized=pooled.randomized,
        received=totals["received"],
        lost=totals["lost"],
        withdrawn=totals["withdrawn"],
        completed=totals["completed"],
        ongoing=totals["ongoing"],
        analysed_itt=sum(f.analysed_itt for f in flows),
        analysed_safety=sum(f.analysed_safety for f in flows),
    )
    return ConsortByArm(enrolment, tuple(flows))


def _arm_columns(arms: tuple[str, ...], adsl: pd.DataFrame, flag: str = "ITTFL") -> tuple:
    counts = {arm: int(((adsl[ARM] == arm) & (adsl[flag] == "Y")).sum()) for arm in arms}
    total = int((adsl[flag] == "Y").sum())
    return (*(f"{arm} (N={counts[arm]})" for arm in arms), _("Total (N=%(n)d)") % {"n": total})


def _baseline(adsl: pd.DataFrame, arms: tuple[str, ...], subjects: dict[str, Subject]) -> Table:
    groups = [adsl.loc[adsl[ARM] == arm] for arm in arms] + [adsl]
    demographics = _demographics(subjects)
    rows: list[tuple[str, ...]] = []
    for site in sorted(adsl["SITEID"].dropna().unique()):
        rows.append(
            (
                _("Site %(site)s: n (%%)") % {"site": site},
                *(_n_pct(int((g["SITEID"] == site).sum()), len(g)) for g in groups),
            )
        )
    ages = [[demographics.get(u, {}).get("age") for u in g["USUBJID"]] for g in groups]
    rows.append((_("Age, years: median (min-max)"), *(_median_range(a) for a in ages)))
    sexes = sorted({d.get("sex") or "?" for d in demographics.values()})
    for sex in sexes:
        rows.append(
            (
                _("Sex %(sex)s: n (%%)") % {"sex": sex},
                *(
                    _n_pct(
                        sum(
                            (demographics.get(u, {}).get("sex") or "?") == sex for u in g["USUBJID"]
                        ),
                        len(g),
                    )
                    for g in groups
                ),
            )
        )
    for column, label in BASELINE_VARIABLES:
        if column in adsl.columns:
            rows.append(
                (f"{label}: mean (SD)", *(_mean_sd(list(g[column].astype(float))) for g in groups))
            )
    if "IGEBL" in adsl.columns:
        rows.append(
            (
                _("Total IgE (kU/L): median (min-max)"),
                *(_median_range(list(g["IGEBL"].astype(float)), 0) for g in groups),
            )
        )
    return Table((_("Characteristic"), *_arm_columns(arms, adsl)), rows)


def _demographics(subjects: dict[str, Subject]) -> dict[str, dict[str, Any]]:
    """Age at screening and sex of each subject, from their latest eligibility assessment."""
    by_pk = {s.pk: key for key, s in subjects.items()}
    out: dict[str, dict[str, Any]] = {}
    assessments = EligibilityAssessment.objects.filter(subject_id__in=list(by_pk)).order_by("pk")
    for assessment in assessments:
        data = assessment.data or {}
        age = None
        if data.get("birth_date") and data.get("screening_date"):
            born = dt.date.fromisoformat(data["birth_date"])
            seen = dt.date.fromisoformat(data["screening_date"])
            age = (seen - born).days / 365.25
        out[by_pk[assessment.subject_id]] = {"age": age, "sex": data.get("sex")}
    return out


# --------------------------------------------------------------------------------------------
# Efficacy


def _primary(results: dict[str, AnalysisResult], plan: AnalysisPlanFile) -> Table:
    rows = []
    for analysis in plan.analyses:
        result = results.get(analysis.id)
        if analysis.endpoint != PRIMARY_ENDPOINT or result is None:
            continue
        if result.status != ResultStatus.DONE:
            rows.append((analysis.label, result.population, "-", f"not run: {result.reason}", "-"))
            continue
        tables = result.tables
        if analysis.method == "jump_to_reference" and tables.get("differences"):
            diff, summary = tables["differences"][0], tables.get("imputation", [{}])[0]
            m, reference = summary.get("imputations", "?"), summary.get("reference")
            how = f"{m} imputations, reference {reference}"
            estimate = f"{diff['contrast']}: {_ci(diff)} [{how}]"
            stat = f"p = {_p(diff.get('p'))}"
        elif tables.get("differences"):
            diff = tables["differences"][0]
            estimate, stat = f"{diff['contrast']}: {_ci(diff)}", f"p = {_p(diff.get('p'))}"
        elif analysis.method == "rerandomization":
            test = tables["test"][0]
            allocations = f"{test['method']}, {test['n_allocations']:,} allocations"
            estimate = f"{_num(test['estimate'])} ({allocations})"
            stat = f"p = {_p(test['p_value'])}"
        elif analysis.method == "hodges_lehmann":
            test = tables["test"][0]
            level = f"{100 * test['conf_level']:.1f}% CI"
            estimate = f"HL shift {_ci(test, 'hodges_lehmann')} [{level}]"
            stat = f"p = {_p(test['p_value'])}"
        elif analysis.method == "bayes_posterior":
            post = tables["posterior"][0]
            estimate = f"posterior mean {_ci(post, 'posterior_mean')} [95% CrI]"
            stat = f"P(diff < {post['threshold']:g}) = {post['prob_below_threshold']:.3f}"
        elif analysis.method == "tipping_point":
            summary = tables["summary"][0]
            delta = summary["tipping_delta"]
            estimate = f"{summary['n_imputed']} missing imputed; {summary['note']}"
            stat = "tipping delta " + ("none" if delta is None else f"{delta:g}")
        else:
            estimate, stat = "-", "-"
        rows.append((analysis.label, result.population, str(result.n_subjects), estimate, stat))
    return Table(
        (_("Analysis"), _("Population"), "n", _("Estimate (95% CI)"), _("p / probability")),
        rows,
        note=_("Difference DUPI - PBO in the change from D0 to W16; negative favours DUPI."),
    )


def _lsmeans_table(result: AnalysisResult | None, arms: tuple[str, ...]) -> Table:
    rows = [(r["level"], _ci(r), _num(r.get("se"))) for r in _rows(result, "lsmeans")]
    return Table((_("Arm"), _("LS mean change (95% CI)"), "SE"), rows, empty=_("Not run."))


def _tipping(result: AnalysisResult | None) -> Table:
    rows = [
        (_num(r["delta"], 1), str(r["n_imputed"]), _ci(r), _p(r["p"]))
        for r in _rows(result, "deltas")
    ]
    return Table(
        (_("Delta added in the active arm"), _("Imputed"), _("Difference (95% CI)"), "p"),
        rows,
        note=_(
            "Missing W16 values imputed by the observed control mean, plus delta in the active arm."
        ),
        empty=_("Not run."),
    )


def _over_time_table(results: dict[str, AnalysisResult], arms: tuple[str, ...]) -> Table:
    rows = []
    for analysis_id, title in OVER_TIME:
        lsmeans = _rows(results.get(analysis_id), "lsmeans")
        diffs = {r["AVISIT"]: r for r in _rows(results.get(analysis_id), "differences")}
        by_visit: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for row in lsmeans:
            by_visit[row["AVISIT"]][row[ARM]] = row
        for visit, cells in by_visit.items():
            diff = diffs.get(visit, {})
            rows.append(
                (
                    title.split(",")[0],
                    visit,
                    *(_ci(cells[arm]) if arm in cells else "-" for arm in arms),
                    _ci(diff) if diff else "-",
                    _p(diff.get("p")),
                )
            )
    return Table(
        (
            _("Endpoint"),
            _("Visit"),
            *(f"{arm} LS mean (95% CI)" for arm in arms),
            _("Difference (95% CI)"),
            "p",
        ),
        rows,
        note=_(
            "MMRM, unstructured covariance, Kenward-Roger df; change from D0 adjusted for "
            "baseline and site."
        ),
        empty=_("Not run."),
    )


def _secondary(results: dict[str, AnalysisResult], plan: AnalysisPlanFile) -> Table:
    rows = []
    for analysis in plan.analyses:
        if analysis.kind not in {"secondary", "exploratory"} or analysis.method == "mmrm":
            continue
        result = results.get(analysis.id)
        if result is None:
            continue
        if result.status != ResultStatus.DONE:
            rows.append((analysis.label, result.population, "-", f"not run: {result.reason}", "-"))
            continue
        if result.tables.get("rate_ratios"):
            ratio = result.tables["rate_ratios"][0]
            if ratio.get("ratio") is None:  # an arm without events (see the fit's messages)
                note = (result.tables.get("fit") or [{}])[0].get("messages") or ""
                estimate = f"rate ratio {ratio['contrast']}: not estimable; {note}".rstrip("; ")
            else:
                estimate = f"rate ratio {ratio['contrast']}: {_ci(ratio, 'ratio')}"
            p = ratio["p"]
        else:
            diff = result.tables["differences"][0]
            estimate = f"{diff['contrast']}: {_ci(diff)}"
            p = diff["p"]
        rows.append((analysis.label, result.population, str(result.n_subjects), estimate, _p(p)))
    return Table((_("Analysis"), _("Population"), "n", _("Estimate (95% CI)"), "p"), rows)


def _primary_points(bundle: DatasetBundle, arms: tuple[str, ...]) -> dict[str, list[float]]:
    name, param, visit = PRIMARY_DATA
    frame = bundle[name].frame
    rows = frame.loc[(frame["PARAMCD"] == param) & (frame["AVISIT"] == visit)]
    rows = rows.loc[rows["ANL01FL"] == "Y"].merge(bundle["ADSL"].frame[["USUBJID", ARM]])
    return {arm: [float(v) for v in rows.loc[rows[ARM] == arm, "CHG"].dropna()] for arm in arms}


# --------------------------------------------------------------------------------------------
# Exposure and safety


def aesi_table(bundle: DatasetBundle) -> Table:
    """Adverse events of special interest (ADAE ``AESIFL``) by category: subjects [events]."""
    population = safety_population(bundle)
    arms = sorted(population["ARM"].dropna().unique())
    adae = bundle["ADAE"].frame
    events = adae.loc[adae["AESIFL"] == "Y"].drop(columns=["ARM"], errors="ignore")
    events = events.merge(population, on="USUBJID", how="inner")
    rows = []
    for category, group in events.groupby(events["AESICAT"].fillna("(not given)")):
        cells = []
        for arm in arms:
            mine = group.loc[group["ARM"] == arm]
            cells.append(f"{mine['USUBJID'].nunique()} [{len(mine)}]")
        rows.append((str(category), *cells))
    return Table(
        (_("AESI category"), *arms),
        rows,
        note=_("Subjects [events] of the safety population, treatment-emergent or not."),
        empty=_("No AESI recorded."),
    )


def _saes(subjects: dict[str, Subject], arm_of: dict[str, str]) -> Table:
    reports = SaeReport.objects.filter(
        adverse_event__subject__in=list(subjects.values())
    ).select_related("adverse_event__subject")
    rows = []
    for report in reports.order_by("clock_started_at"):
        event = report.adverse_event
        rows.append(
            (
                event.subject.subject_id,
                arm_of.get(event.subject.subject_id) or "-",
                event.term,
                event.start or "-",
                ", ".join(event.seriousness_criteria or []) or "-",
                event.relationship or "-",
                event.outcome or "-",
                "yes" if report.reported_at else "no",
            )
        )
    return Table(
        (
            _("Subject"),
            _("Arm"),
            _("Term"),
            _("Onset"),
            _("Seriousness"),
            _("Relationship"),
            _("Outcome"),
            _("Reported"),
        ),
        rows,
        empty=_("No serious adverse events."),
    )


def _deviations(
    subjects: dict[str, Subject], arm_of: dict[str, str], arms: tuple[str, ...]
) -> Table:
    deviations = ProtocolDeviation.objects.filter(
        subject__in=list(subjects.values())
    ).select_related("subject", "visit")
    rows = [
        (
            d.subject.subject_id,
            arm_of.get(d.subject.subject_id) or "-",
            d.get_kind_display(),
            d.visit.code if d.visit else "-",
            d.occurred_on.isoformat(),
            d.description,
        )
        for d in deviations.order_by("occurred_on", "pk")
    ]
    counts = Counter(r[1] for r in rows)
    note = "; ".join(f"{arm}: {counts[arm]}" for arm in arms)
    return Table(
        (_("Subject"), _("Arm"), _("Kind"), _("Visit"), _("Date"), _("Description")),
        rows,
        note=_("Deviations by arm: %(counts)s.") % {"counts": note},
        empty=_("No protocol deviation recorded."),
    )


# --------------------------------------------------------------------------------------------
# Data quality


def _query_ages(study: Study, today: dt.date) -> dict[str, Counter[str]]:
    """Queries by status (open = open or answered, closed) and age bin in days."""
    closed_at = dict(
        QueryMessage.objects.filter(query__record__subject__study=study, action="close")
        .order_by("at")
        .values_list("query_id", "at")
    )
    ages: dict[str, Counter[str]] = {"open": Counter(), "closed": Counter()}
    now = timezone.now()
    for pk, status, raised in Query.objects.filter(record__subject__study=study).values_list(
        "pk", "status", "raised_at"
    ):
        closed = status == QueryStatus.CLOSED
        end = closed_at.get(pk, now) if closed else now
        days = max((end - raised).total_seconds() / 86400, 0.0)
        label = next(name for name, upper in QUERY_AGE_BINS if days <= upper)
        ages["closed" if closed else "open"][label] += 1
    return ages


def _queries_table(ages: dict[str, Counter[str]]) -> Table:
    rows = [
        (name, str(ages["open"][name]), str(ages["closed"][name])) for name, _ in QUERY_AGE_BINS
    ]
    rows.append((_("Total"), str(sum(ages["open"].values())), str(sum(ages["closed"].values()))))
    return Table(
        (_("Age"), _("Open or answered"), _("Closed")),
        rows,
        note=_("Age of an open query: days since it was raised; of a closed one: days to closing."),
    )


def visit_order(missing: dict[str, list[tuple[str, float]]]) -> list[str]:
    """Every visit of the endpoints in schedule order (each endpoint's list is in that order)."""
    order: list[str] = []
    for points in sorted(missing.values(), key=len, reverse=True):
        for index, (visit, _share) in enumerate(points):
            if visit in order:
                continue
            before = [v for v, _ in points[:index] if v in order]
            order.insert(order.index(before[-1]) + 1 if before else 0, visit)
    return order


def _missing_by_visit(
    bundle: DatasetBundle, definition: Any, today: dt.date
) -> dict[str, list[tuple[str, float]]]:
    """Per endpoint, (visit, % missing) among the subjects for whom the visit is past."""
    days = {v.code: v.day for v in definition.visits}
    randomized = dict(
        zip(bundle["ADSL"].frame["USUBJID"], bundle["ADSL"].frame["RANDDT"], strict=True)
    )
    out: dict[str, list[tuple[str, float]]] = {}
    for name, param in MISSING_ENDPOINTS:
        if name not in bundle.datasets:
            continue
        frame = bundle[name].frame
        frame = frame.loc[frame["PARAMCD"] == param]
        points = []
        for visit in sorted(dict.fromkeys(frame["AVISIT"]), key=lambda code: days[code]):
            rows = frame.loc[frame["AVISIT"] == visit]
            due = [
                pd.isna(aval)
                for subject, aval in zip(rows["USUBJID"], rows["AVAL"], strict=True)
                if randomized.get(subject) is not None
                and randomized[subject] + dt.timedelta(days=days[visit]) <= today
            ]
            if due:
                points.append((visit, 100 * sum(due) / len(due)))
        out[param] = points
    return out


def _missing_table(missing: dict[str, list[tuple[str, float]]]) -> Table:
    visits = visit_order(missing)
    rows = []
    for param, points in missing.items():
        values = dict(points)
        rows.append((param, *(_num(values.get(v), 0) if v in values else "" for v in visits)))
    return Table(
        (_("Endpoint"), *visits),
        rows,
        note=_(
            "Percentage of subjects with no value among those whose visit date is past (missed "
            "visits, dropouts and items not done)."
        ),
    )
