"""Run the analysis plan on freshly built datasets and store every result with its provenance.

:func:`run_plan` builds the datasets (:mod:`trialdesk.analysis.datasets`), runs each declared
analysis through :mod:`trialdesk.stats` and writes one :class:`AnalysisRun` with one
:class:`AnalysisResult` per analysis, audited. :func:`run_analysis` runs one analysis on a
bundle and returns its tables; it writes nothing and is what the tests compare with direct calls
to the statistics.

A blinded run has no arm: each analysis stores the pooled summary of the data it would analyse
(status ``blinded``). An analysis that cannot run on the data (too few subjects, an arm without
data, a model that cannot be fitted) is stored with status ``not_run`` and the reason.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from trialdesk import stats
from trialdesk.audit.services import record
from trialdesk.protocol.definitions import study_definition
from trialdesk.protocol.models import Study

from .datasets import DatasetBundle, build_datasets
from .models import AnalysisResult, AnalysisRun, ResultStatus
from .plan import Analysis, AnalysisPlanFile

ARM = "TRT01P"
#: Fewest analysed subjects per arm for a comparison to run.
MIN_PER_ARM = 2


class AnalysisNotRun(ValueError):
    """An analysis that cannot run on the data; the message is the stored reason."""


@dataclass(frozen=True)
class Outcome:
    """What one analysis gave: status, reason, number of subjects and its tables."""

    status: str
    tables: dict[str, list[dict[str, Any]]]
    n_subjects: int = 0
    reason: str = ""


def code_version() -> str:
    try:
        return version("trialdesk")
    except PackageNotFoundError:  # pragma: no cover - always installed in practice
        return "unknown"


# --------------------------------------------------------------------------------------------
# Data of one analysis


def analysis_data(bundle: DatasetBundle, analysis: Analysis) -> pd.DataFrame:
    """The rows an analysis uses: its parameter and visits, in its population, ANL01FL rows.

    Subject-level columns of ADSL (population flags, arm and randomization order when present)
    are merged in. For ``rerandomization`` every subject of the population is kept, analysed or
    not (the test re-draws the allocation of all randomized subjects).
    """
    adsl = bundle["ADSL"].frame
    frame = bundle[analysis.dataset].frame
    rows = frame.loc[(frame["PARAMCD"] == analysis.param) & frame["AVISIT"].isin(analysis.visits)]
    if not _keeps_all(analysis):
        rows = rows.loc[rows["ANL01FL"] == "Y"]
    flag = {"ITT": "ITTFL", "PP": "PPROTFL", "SAF": "SAFFL"}[analysis.population]
    keep = [c for c in ("USUBJID", "STRATUM", ARM, "RANDSEQ") if c in adsl.columns]
    subjects = adsl.loc[adsl[flag] == "Y", keep]
    merged = subjects.merge(rows, on="USUBJID", how="left" if _keeps_all(analysis) else "inner")
    return merged.reset_index(drop=True)


def _keeps_all(analysis: Analysis) -> bool:
    return analysis.method in {"rerandomization", "tipping_point", "jump_to_reference"}


def ancova_formula(analysis: Analysis) -> str:
    """``"CHG ~ BASE + SITEID + TRT01P"``: the response, the covariates, then the arm."""
    return f"{analysis.response} ~ {' + '.join([*analysis.covariates, ARM])}"


def _complete(data: pd.DataFrame, analysis: Analysis) -> pd.DataFrame:
    columns = [analysis.response, *analysis.covariates, ARM]
    return data.dropna(subset=columns).reset_index(drop=True)


def _check_arms(data: pd.DataFrame, arms: tuple[str, str]) -> None:
    counts = data[ARM].value_counts()
    for arm in arms:
        if counts.get(arm, 0) < MIN_PER_ARM:
            raise AnalysisNotRun(
                f"too little data: {counts.get(arm, 0)} analysable subject(s) in arm {arm} "
                f"(at least {MIN_PER_ARM} needed)"
            )


# --------------------------------------------------------------------------------------------
# Methods


@dataclass(frozen=True)
class Context:
    """What every method needs beside its data: arms, control, the scheme, the seed."""

    active: str
    control: str
    scheme: stats.BlockScheme
    seed: int

    @property
    def arms(self) -> tuple[str, str]:
        return (self.active, self.control)


def _ancova(data: pd.DataFrame, analysis: Analysis, ctx: Context) -> Outcome:
    data = _complete(data, analysis)
    _check_arms(data, ctx.arms)
    fit = stats.fit_ancova(
        data,
        ancova_formula(analysis),
        treatment=ARM,
        reference=ctx.control,
        levels=[ctx.active, ctx.control],
        alpha=analysis.alpha,
    )
    return Outcome(
        ResultStatus.DONE,
        {"lsmeans": records(fit.lsmeans), "differences": records(fit.differences)},
        len(data),
    )


def _rerandomization(data: pd.DataFrame, analysis: Analysis, ctx: Context) -> Outcome:
    _check_arms(_complete(data, analysis), ctx.arms)
    result = stats.rerandomization_test(
        data,
        ancova_formula(analysis),
        treatment=ARM,
        scheme=ctx.scheme,
        reference=ctx.control,
        stratum="STRATUM",
        order="RANDSEQ",
        seed=ctx.seed,
    )
    return Outcome(ResultStatus.DONE, {"test": [_test_row(result)]}, len(data))


def _test_row(result: Any) -> dict[str, Any]:
    return {
        "estimate": result.estimate,
        "statistic": result.statistic,
        "statistic_name": result.statistic_name,
        "p_value": result.p_value,
        "alternative": result.alternative,
        "method": result.method,
        "reference_set": result.reference_set,
        "n_allocations": result.n_allocations,
        "total_allocations": result.total_allocations,
        "mc_error": result.mc_error,
        "seed": result.seed,
        "n_degenerate": result.n_degenerate,
    }


def _hodges_lehmann(data: pd.DataFrame, analysis: Analysis, ctx: Context) -> Outcome:
    data = _complete(data, analysis)
    _check_arms(data, ctx.arms)
    active = data.loc[data[ARM] == ctx.active, analysis.response].to_numpy(float)
    control = data.loc[data[ARM] == ctx.control, analysis.response].to_numpy(float)
    res = stats.wilcoxon_rank_sum(active, control, alpha=analysis.alpha)
    row = {
        "contrast": f"{ctx.active} - {ctx.control}",
        "hodges_lehmann": res.hodges_lehmann,
        "lower": res.lower,
        "upper": res.upper,
        "conf_level": res.conf_level,
        "u": res.u,
        "rank_sum": res.rank_sum,
        "p_value": res.p_value,
        "ties": res.ties,
        "n_active": len(active),
        "n_control": len(control),
    }
    return Outcome(ResultStatus.DONE, {"test": [row]}, len(data))


def _bayes(data: pd.DataFrame, analysis: Analysis, ctx: Context) -> Outcome:
    fitted = _ancova(data, analysis, ctx)
    diff = fitted.tables["differences"][0]
    sd = analysis.prior.sd if analysis.prior.sd is not None else math.inf
    post = stats.normal_posterior(
        diff["estimate"], diff["se"], stats.NormalPrior(mean=analysis.prior.mean, sd=sd)
    )
    lower, upper = post.interval(1 - analysis.alpha)
    threshold = float(analysis.threshold or 0.0)
    row = {
        "contrast": diff["contrast"],
        "estimate": diff["estimate"],
        "se": diff["se"],
        "prior_mean": analysis.prior.mean,
        "prior_sd": analysis.prior.sd,
        "posterior_mean": post.mean,
        "posterior_sd": post.sd,
        "lower": lower,
        "upper": upper,
        "threshold": threshold,
        "prob_below_threshold": post.prob_below(threshold),
    }
    return Outcome(ResultStatus.DONE, {"posterior": [row]}, fitted.n_subjects)


def mmrm_data(data: pd.DataFrame, analysis: Analysis) -> pd.DataFrame:
    """Complete rows with AVISIT an ordered categorical of the plan's visits."""
    data = _complete(data, analysis).copy()
    data["AVISIT"] = pd.Categorical(data["AVISIT"], categories=analysis.visits, ordered=True)
    return data


def mmrm_formula(analysis: Analysis) -> str:
    """``"CHG ~ BASE + SITEID + TRT01P * AVISIT"``."""
    return f"{analysis.response} ~ {' + '.join([*analysis.covariates, f'{ARM} * AVISIT'])}"


def _mmrm(data: pd.DataFrame, analysis: Analysis, ctx: Context) -> Outcome:
    data = mmrm_data(data, analysis)
    _check_arms(data.drop_duplicates("USUBJID"), ctx.arms)
    present = [v for v in analysis.visits if (data["AVISIT"] == v).any()]
    if len(present) < len(analysis.visits):
        missing = sorted(set(analysis.visits) - set(present))
        raise AnalysisNotRun(f"too little data: no analysable value at {', '.join(missing)}")
    data[ARM] = pd.Categorical(data[ARM], categories=[ctx.control, ctx.active])
    fit = stats.fit_mmrm(
        data,
        mmrm_formula(analysis),
        subject="USUBJID",
        visit="AVISIT",
        covariance=analysis.covariance,
        df_method=analysis.df_method,
        conf_level=1 - analysis.alpha,
    )
    tables = {
        "lsmeans": records(fit.lsmeans(ARM, by="AVISIT")),
        "differences": records(fit.contrasts(ARM, by="AVISIT", reference=ctx.control)),
        "type3": records(fit.type3().reset_index(names="term")),
    }
    return Outcome(ResultStatus.DONE, tables, int(fit.n_subjects))


def _rate_model(data: pd.DataFrame, analysis: Analysis, ctx: Context) -> Outcome:
    data = data.dropna(subset=[analysis.response, analysis.exposure, ARM, *analysis.covariates])
    data = data.loc[data[analysis.exposure] > 0].reset_index(drop=True)
    _check_arms(data, ctx.arms)
    fit = stats.fit_rate_model(
        data,
        f"{analysis.response} ~ {' + '.join([*analysis.covariates, ARM])}",
        exposure=analysis.exposure,
        treatment=ARM,
        reference=ctx.control,
        levels=[ctx.control, ctx.active],
        family=analysis.family,
        alpha=analysis.alpha,
    )
    summary = {
        "family": fit.family,
        "dispersion": fit.dispersion,
        "pearson_dispersion": fit.pearson_dispersion,
        "converged": fit.converged,
        "n": fit.n,
        "messages": "; ".join(fit.messages),
    }
    tables = {"rate_ratios": records(fit.rate_ratios), "fit": [summary]}
    return Outcome(ResultStatus.DONE, tables, int(fit.n))


def tipping_point_data(
    data: pd.DataFrame, analysis: Analysis, ctx: Context, delta: float
) -> tuple[pd.DataFrame, int]:
    """Missing responses imputed: the control arm's observed mean (+ delta in the active arm).

    Subjects of the population whose response is missing but whose covariates are present get
    the mean response of the observed control subjects; in the active arm ``delta`` is added
    (a positive delta makes the missing active subjects worse on a scale where lower is better).
    """
    frame = data.dropna(subset=[*analysis.covariates, ARM]).copy()
    observed = frame[analysis.response].notna()
    control_mean = frame.loc[observed & (frame[ARM] == ctx.control), analysis.response].mean()
    missing = ~observed
    frame.loc[missing, analysis.response] = control_mean + np.where(
        frame.loc[missing, ARM] == ctx.active, delta, 0.0
    )
    return frame.reset_index(drop=True), int(missing.sum())


def _tipping_point(data: pd.DataFrame, analysis: Analysis, ctx: Context) -> Outcome:
    _check_arms(_complete(data, analysis), ctx.arms)
    rows = []
    for delta in analysis.deltas:
        frame, n_imputed = tipping_point_data(data, analysis, ctx, delta)
        diff = _ancova(frame, analysis, ctx).tables["differences"][0]
        rows.append(
            {
                "delta": delta,
                "n_imputed": n_imputed,
                "estimate": diff["estimate"],
                "se": diff["se"],
                "lower": diff["lower"],
                "upper": diff["upper"],
                "p": diff["p"],
            }
        )
    summary = {
        "alpha": analysis.alpha,
        "n_imputed": rows[0]["n_imputed"],
        **_tipping(rows, analysis),
    }
    return Outcome(ResultStatus.DONE, {"deltas": rows, "summary": [summary]}, len(data))


def _tipping(rows: list[dict[str, Any]], analysis: Analysis) -> dict[str, Any]:
    """The first delta at which a significant result stops being significant, with a note."""
    significant = [r["p"] is not None and r["p"] < analysis.alpha for r in rows]
    if not significant[0]:
        return {"tipping_delta": None, "note": "not significant without a shift"}
    for row, still in zip(rows, significant, strict=True):
        if not still:
            return {"tipping_delta": row["delta"], "note": "significance lost at this delta"}
    return {"tipping_delta": None, "note": "significant at every delta tried"}


def _jump_to_reference(data: pd.DataFrame, analysis: Analysis, ctx: Context) -> Outcome:
    """Missing responses imputed from the control arm's model, pooled by Rubin's rules.

    Every subject of the population with the covariates and the arm takes part: observed
    responses as they are, missing ones imputed ``analysis.imputations`` times with the run's
    seed by :func:`trialdesk.stats.jump_to_reference` (rows in randomization order, so that a
    seed gives the same draws for the same data).
    """
    _check_arms(_complete(data, analysis), ctx.arms)
    frame = data.dropna(subset=[*analysis.covariates, ARM]).reset_index(drop=True)
    result = stats.jump_to_reference(
        frame,
        ancova_formula(analysis),
        treatment=ARM,
        reference=ctx.control,
        levels=[ctx.active, ctx.control],
        m=int(analysis.imputations or 0),
        seed=ctx.seed,
        df_method=analysis.pooling_df,
        alpha=analysis.alpha,
    )
    summary = {
        "reference": ctx.control,
        "imputations": result.m,
        "seed": result.seed,
        "n": result.n,
        "n_imputed_active": result.n_imputed[ctx.active],
        "n_imputed_control": result.n_imputed[ctx.control],
        "n_excluded": result.n_excluded,
        "df_complete": result.df_complete,
        "df_method": result.df_method,
    }
    tables = {"differences": records(result.differences), "imputation": [summary]}
    return Outcome(ResultStatus.DONE, tables, result.n)


METHODS: dict[str, Callable[[pd.DataFrame, Analysis, Context], Outcome]] = {
    "ancova": _ancova,
    "rerandomization": _rerandomization,
    "hodges_lehmann": _hodges_lehmann,
    "bayes_posterior": _bayes,
    "mmrm": _mmrm,
    "rate_model": _rate_model,
    "tipping_point": _tipping_point,
    "jump_to_reference": _jump_to_reference,
}


# --------------------------------------------------------------------------------------------
# One analysis, the whole plan


def context_of(study: Study, plan: AnalysisPlanFile, seed: int) -> Context:
    """Arms, control, block scheme of the study file; the run's seed."""
    definition = study_definition(study)
    arms = [arm.code for arm in definition.arms]
    active = next(a for a in arms if a != plan.control_arm)
    scheme = stats.BlockScheme(
        arms=tuple(arms),
        ratio=tuple(int(arm.ratio) for arm in definition.arms),
        block_sizes=tuple(int(b) for b in definition.randomization.block_sizes),
    )
    return Context(active=active, control=plan.control_arm, scheme=scheme, seed=seed)


def run_analysis(bundle: DatasetBundle, analysis: Analysis, ctx: Context) -> Outcome:
    """Run one analysis on a bundle; a blinded bundle gives the pooled summary only."""
    data = analysis_data(bundle, analysis)
    if bundle.blinded:
        return Outcome(
            ResultStatus.BLINDED,
            {"pooled": pooled_summary(data, analysis)},
            int(data["USUBJID"].nunique()),
            "blinded run: the arms are not read; pooled summary only",
        )
    if "RANDSEQ" in data.columns:
        data = data.sort_values(["RANDSEQ", "USUBJID"], kind="stable").reset_index(drop=True)
    try:
        outcome = METHODS[analysis.method](data, analysis, ctx)
    except AnalysisNotRun as reason:
        return Outcome(ResultStatus.NOT_RUN, {}, 0, str(reason))
    except (ValueError, ArithmeticError, np.linalg.LinAlgError, stats.MmrmError) as error:
        # What the data cannot identify (ValueError subclasses naming it) or an MMRM that does
        # not converge (ConvergenceError) is a reason, not a crash.
        return Outcome(ResultStatus.NOT_RUN, {}, 0, f"{type(error).__name__}: {error}")
    tables = {name: [_clean_row(row) for row in rows] for name, rows in outcome.tables.items()}
    return Outcome(outcome.status, tables, outcome.n_subjects, outcome.reason)


def pooled_summary(data: pd.DataFrame, analysis: Analysis) -> list[dict[str, Any]]:
    """n, mean, SD, median, min and max of the response by visit, arms pooled."""
    rows = []
    for visit in analysis.visits:
        values = data.loc[data["AVISIT"] == visit, analysis.response].dropna().astype(float)
        rows.append(
            {
                "visit": visit,
                "n": len(values),
                "mean": values.mean() if len(values) else None,
                "sd": values.std(ddof=1) if len(values) > 1 else None,
                "median": values.median() if len(values) else None,
                "min": values.min() if len(values) else None,
                "max": values.max() if len(values) else None,
            }
        )
    return [_clean_row(r) for r in rows]


def run_plan(
    study: Study,
    plan: AnalysisPlanFile,
    *,
    blinded: bool,
    user: Any = None,
    seed: int | None = None,
    progress: Callable[[Analysis], None] | None = None,
) -> AnalysisRun:
    """Build the datasets, run every analysis of the plan and store the run and its results.

    Parameters
    ----------
    study : Study
        The study (its current study-file version is recorded).
    plan : AnalysisPlanFile
        The analysis plan.
    blinded : bool
        A blinded run reads no allocation and stores pooled summaries.
    user : User, optional
        Who asked (audited); required for an unblinded run (the blinding policy decides).
    seed : int, optional
        Seed of the Monte Carlo parts; drawn and recorded when None.
    progress : callable, optional
        Called with each analysis after it has run.
    """
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    started = timezone.now()
    bundle = build_datasets(study, plan, blinded=blinded, user=user)
    hashes = bundle.hashes()
    ctx = context_of(study, plan, seed)
    outcomes = []
    for analysis in plan.analyses:
        began = timezone.now()
        outcome = run_analysis(bundle, analysis, ctx)
        outcomes.append((analysis, outcome, began, timezone.now()))
        if progress is not None:
            progress(analysis)
    return _store(
        study,
        plan,
        bundle,
        hashes=hashes,
        outcomes=outcomes,
        user=user,
        seed=seed,
        started=started,
    )


def _store(
    study: Study,
    plan: AnalysisPlanFile,
    bundle: DatasetBundle,
    *,
    hashes: dict[str, str],
    outcomes: list[tuple[Analysis, Outcome, Any, Any]],
    user: Any,
    seed: int,
    started: Any,
) -> AnalysisRun:
    version_row = study.current_version
    with transaction.atomic():
        run = AnalysisRun.objects.create(
            study=study,
            study_version=version_row,
            study_version_label=version_row.version,
            study_sha256=version_row.sha256,
            plan_version=plan.version,
            plan_sha256=plan.sha256,
            code_version=code_version(),
            seed=seed,
            blinded=bundle.blinded,
            dataset_hashes=hashes,
            started_at=started,
            finished_at=timezone.now(),
            requested_by=user if getattr(user, "pk", None) else None,
        )
        for analysis, outcome, began, ended in outcomes:
            AnalysisResult.objects.create(
                run=run,
                analysis_id=analysis.id,
                label=analysis.label,
                method=analysis.method,
                population=analysis.population,
                dataset=analysis.dataset,
                dataset_sha256=hashes[analysis.dataset],
                status=outcome.status,
                reason=outcome.reason,
                n_subjects=outcome.n_subjects,
                tables=outcome.tables,
                started_at=began,
                finished_at=ended,
            )
        record(
            "analysis.run",
            user=user,
            entity=run,
            study=study.code,
            changes={
                "blinded": bundle.blinded,
                "seed": seed,
                "study_version": version_row.version,
                "study_sha256": version_row.sha256,
                "plan_sha256": plan.sha256,
                "code_version": run.code_version,
                "datasets": hashes,
                "results": {a.id: o.status for a, o, _, _ in outcomes},
            },
        )
    return run


def latest_run(study: Study, *, blinded: bool) -> AnalysisRun | None:
    """The most recent blinded (or unblinded) run of the study, with its results prefetched."""
    runs = AnalysisRun.objects.filter(study=study, blinded=blinded).prefetch_related("results")
    return runs.order_by("-started_at", "-id").first()


# --------------------------------------------------------------------------------------------
# JSON tables


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A data frame as JSON-safe rows: numpy scalars as Python, NaN and infinities as None."""
    return [_clean_row(row) for row in frame.to_dict("records")]


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    return {str(key): _clean(value) for key, value in row.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
