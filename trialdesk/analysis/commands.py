"""``trialdesk simulate``: Monte Carlo of whole trials for sample-size and design questions.

``trialdesk simulate power --study ns-dupi --effect -2 --sd 2.5 --n-sims 100000`` simulates
NS-DUPI trials with the engine :func:`trialdesk.stats.power.simulate_trials` and prints their
operating characteristics; ``--plot power.png`` adds the power curve over effect sizes.

``--study`` selects the design defaults: the arms and their ratio, the site codes, the block
sizes and the target enrollment are read from the study file (``studies/<id>/study.yaml``);
every one of them can be overridden by its own option. The control arm is the study's last
arm unless ``--control`` names another. For ``ns-dupi`` only, when the study file cannot be
loaded, the command says so and uses the published design (24 subjects, DUPI:PBO 2:1, sites
TLS and NCK, blocks of 3 and 6).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from trialdesk.stats.power import (
    CHUNK_SIZE,
    AnalysisPlan,
    Scenario,
    SimulationError,
    SimulationResult,
    TrialDesign,
    simulate_trials,
)

#: Runs with at least this many trial-analyses (trials x (1 + permutations)) show a progress bar.
PROGRESS_THRESHOLD = 2 * CHUNK_SIZE


@dataclass(frozen=True)
class DesignDefaults:
    """The design of a study as the simulator needs it."""

    source: str
    n_subjects: int
    arms: tuple[str, ...]
    ratio: tuple[int, ...]
    sites: tuple[str, ...]
    block_sizes: tuple[int, ...]


#: The published NS-DUPI design (NCT04244006; blocks of 3 and 6 are the project's convention).
NS_DUPI_DEFAULTS = DesignDefaults(
    source="built-in NS-DUPI design",
    n_subjects=24,
    arms=("DUPI", "PBO"),
    ratio=(2, 1),
    sites=("TLS", "NCK"),
    block_sizes=(3, 6),
)


def design_from_study(study: Any) -> DesignDefaults:
    """Read arms, ratio, sites, block sizes and target enrollment from a loaded study.

    Parameters
    ----------
    study : trialdesk.protocol.Study
        A study loaded by :func:`trialdesk.protocol.load_study`.

    Returns
    -------
    DesignDefaults

    Raises
    ------
    click.ClickException
        The study is not randomized or misses a part of the design.
    """
    if not study.arms or study.randomization is None:
        raise click.ClickException(f"study {study.id!r} declares no arms or no randomization")
    if study.target_enrollment is None:
        raise click.ClickException(
            f"study {study.id!r} has no target_enrollment: give --n-subjects"
        )
    return DesignDefaults(
        source=f"study file {study.id} v{study.version}",
        n_subjects=int(study.target_enrollment),
        arms=tuple(arm.code for arm in study.arms),
        ratio=tuple(int(arm.ratio) for arm in study.arms),
        sites=tuple(site.code for site in study.sites),
        block_sizes=tuple(int(b) for b in study.randomization.block_sizes),
    )


def _load_study(study: str) -> Any:
    from trialdesk.protocol import load_study, resolve_study_path

    return load_study(resolve_study_path(study))


def resolve_defaults(
    study: str, warn: Callable[[str], None], loader: Callable[[str], Any] | None = None
) -> DesignDefaults:
    """Design defaults of ``study``: from its study file, else the built-in NS-DUPI design.

    Parameters
    ----------
    study : str
        Study id (``ns-dupi``) or path of a study directory or file.
    warn : callable
        Receives a message when the built-in design replaces an unloadable study file.
    loader : callable, optional
        Loads a study; :func:`trialdesk.protocol.load_study` by default.
    """
    from trialdesk.protocol import ProtocolError

    try:
        return design_from_study((loader or _load_study)(study))
    except ProtocolError as err:
        if study != "ns-dupi":
            raise click.ClickException(f"cannot load study {study!r}: {err}") from err
        first = str(err).splitlines()[0]
        warn(f"study file of ns-dupi not usable ({first}); using the {NS_DUPI_DEFAULTS.source}")
        return NS_DUPI_DEFAULTS


def _int_list(value: str | None, name: str, sep: str = ",") -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(int(part) for part in value.split(sep))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a {sep!r}-separated list of integers", param_hint=name
        ) from None
    if min(numbers) < 1:
        raise click.BadParameter(f"{value!r} must hold positive integers", param_hint=name)
    return numbers


def build_design(
    defaults: DesignDefaults,
    *,
    n_subjects: int | None,
    sites: str | None,
    ratio: str | None,
    block_sizes: str | None,
    control: str | None,
) -> TrialDesign:
    """The simulated design: study defaults with the command-line overrides applied."""
    chosen = replace(
        defaults,
        n_subjects=n_subjects or defaults.n_subjects,
        sites=tuple(s.strip() for s in sites.split(",")) if sites else defaults.sites,
        ratio=_int_list(ratio, "--ratio", ":") or defaults.ratio,
        block_sizes=_int_list(block_sizes, "--block-sizes") or defaults.block_sizes,
    )
    if len(chosen.ratio) != len(chosen.arms):
        raise click.BadParameter(
            f"ratio {':'.join(map(str, chosen.ratio))} does not fit the arms {chosen.arms}",
            param_hint="--ratio",
        )
    if len(chosen.arms) != 2:
        raise click.ClickException(f"the simulator compares two arms; the study has {chosen.arms}")
    try:
        design = TrialDesign.balanced(
            chosen.n_subjects,
            sites=chosen.sites,
            ratio=chosen.ratio,
            block_sizes=chosen.block_sizes,
            arms=chosen.arms,
        )
        return replace(design, control=control or chosen.arms[-1])
    except (SimulationError, ValueError) as err:
        raise click.ClickException(str(err)) from err


@click.group()
def simulate() -> None:
    """Simulate whole trials: power, type I error, bias and coverage."""


@simulate.command()
@click.option(
    "--study",
    default="ns-dupi",
    show_default=True,
    help="Study id or path; its design (arms, ratio, sites, blocks, size) sets the defaults.",
)
@click.option(
    "--effect",
    type=float,
    required=True,
    help="True difference in mean change, active minus control (e.g. -2 NASA points).",
)
@click.option("--sd", type=float, required=True, help="SD of the outcome at follow-up.")
@click.option("--sd-baseline", type=float, help="SD at baseline  [default: --sd]")
@click.option(
    "--correlation",
    type=float,
    default=0.5,
    show_default=True,
    help="Correlation of baseline and follow-up.",
)
@click.option(
    "--dropout",
    type=float,
    default=0.0,
    show_default=True,
    help="Probability that a subject's follow-up is missing (completely at random).",
)
@click.option(
    "--alpha", type=float, default=0.05, show_default=True, help="Two-sided significance level."
)
@click.option(
    "--n-sims",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Simulated trials.",
)
@click.option("--seed", type=click.IntRange(min=0), help="Seed (drawn and printed when omitted).")
@click.option(
    "--permutations",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also run a permutation test with this many permutations per trial.",
)
@click.option("--n-subjects", type=click.IntRange(min=2), help="Override the study's size.")
@click.option("--sites", help="Override the site codes, comma-separated (subjects split evenly).")
@click.option("--ratio", help="Override the allocation ratio, e.g. 2:1.")
@click.option("--block-sizes", help="Override the block sizes, e.g. 3,6.")
@click.option("--control", help="Control arm  [default: the study's last arm]")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Threads (results do not depend on it).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the power curve over effect sizes to this PNG file.",
)
def power(**options: Any) -> None:
    """Power of the ANCOVA (and optionally of a permutation test) by simulating whole trials."""
    console = Console()
    errors = Console(stderr=True)
    study = options["study"]
    overrides_all = all(options[k] for k in ("n_subjects", "sites", "ratio", "block_sizes"))
    if overrides_all:
        defaults = replace(NS_DUPI_DEFAULTS, source="command-line design")
    else:
        defaults = resolve_defaults(study, lambda msg: errors.print(f"[yellow]{msg}[/yellow]"))
    design = build_design(
        defaults,
        n_subjects=options["n_subjects"],
        sites=options["sites"],
        ratio=options["ratio"],
        block_sizes=options["block_sizes"],
        control=options["control"],
    )
    try:
        scenario = Scenario(
            effect=options["effect"],
            sd=options["sd"],
            sd_baseline=options["sd_baseline"],
            correlation=options["correlation"],
            dropout=options["dropout"],
        )
        analysis = AnalysisPlan(
            alpha=options["alpha"], permutation_resamples=options["permutations"]
        )
    except SimulationError as err:
        raise click.ClickException(str(err)) from err
    result = _run(design, scenario, analysis, options, errors)
    console.print(_header(defaults, design, scenario, analysis, result))
    console.print(_table(result))
    if options["plot"] is not None:
        path = write_power_plot(result, options["plot"])
        console.print(f"power curve written to {path}")


def _run(
    design: TrialDesign,
    scenario: Scenario,
    analysis: AnalysisPlan,
    options: dict[str, Any],
    errors: Console,
) -> SimulationResult:
    n_sims = options["n_sims"]
    kwargs = {"analysis": analysis, "workers": options["workers"]}
    try:
        if n_sims * (1 + analysis.permutation_resamples) < PROGRESS_THRESHOLD:
            return simulate_trials(design, scenario, n_sims, options["seed"], **kwargs)
        columns = (
            TextColumn("simulating"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,}"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=errors, transient=True) as bar:
            task = bar.add_task("trials", total=n_sims)
            return simulate_trials(
                design,
                scenario,
                n_sims,
                options["seed"],
                progress=lambda done: bar.advance(task, done),
                **kwargs,
            )
    except SimulationError as err:
        raise click.ClickException(str(err)) from err


def _header(
    defaults: DesignDefaults,
    design: TrialDesign,
    scenario: Scenario,
    analysis: AnalysisPlan,
    result: SimulationResult,
) -> str:
    sites = ", ".join(f"{s} {n}" for s, n in zip(design.sites, design.site_sizes, strict=True))
    arms = ":".join(design.scheme.arms)
    ratio = ":".join(map(str, design.scheme.ratio))
    blocks = " and ".join(map(str, design.scheme.block_sizes))
    return (
        f"Design ({defaults.source}): {design.n_subjects} subjects ({sites}), {arms} {ratio}, "
        f"permuted blocks of {blocks} drawn at random within site; control {design.control}.\n"
        f"Scenario: effect {scenario.effect:g}, SD {scenario.sd:g} (baseline "
        f"{scenario.sd_baseline:g}), correlation {scenario.correlation:g}, dropout "
        f"{scenario.dropout:.0%}.\n"
        f"Analysis: ANCOVA of change ~ site + baseline + arm, two-sided alpha {analysis.alpha:g}"
        + (
            f", permutation test with {analysis.permutation_resamples} permutations"
            if analysis.permutation_resamples
            else ""
        )
        + f".\n{result.n_sims:,} trials (seed {result.seed}); type I error from the same trials "
        "with the effect removed."
    )


def _table(result: SimulationResult) -> Table:
    table = Table(title="Simulated operating characteristics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("Monte Carlo SE", justify="right")
    for row in result.to_frame().itertuples(index=False):
        mcse = "" if math.isnan(row.mcse) else f"{row.mcse:.4f}"
        table.add_row(str(row.metric), f"{row.value:.4f}", mcse)
    if result.n_valid < result.n_sims:
        table.caption = f"{result.n_sims - result.n_valid:,} trials had an inestimable effect"
    return table


def write_power_plot(result: SimulationResult, path: Path, n_points: int = 41) -> Path:
    """Plot ANCOVA power against the true effect, with a 95 % Monte Carlo band.

    Parameters
    ----------
    result : SimulationResult
        A simulation; the curve reuses its trials (common random numbers).
    path : Path
        PNG file to write.
    n_points : int
        Effects evaluated, from 0 to 1.5 times the simulated effect.

    Returns
    -------
    Path
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    effect = result.scenario.effect or 1.0
    curve = result.power_curve(np.linspace(0.0, 1.5 * effect, n_points))
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    band = 1.96 * curve["mcse"]
    ax.fill_between(curve["effect"], curve["power"] - band, curve["power"] + band, alpha=0.25)
    ax.plot(curve["effect"], curve["power"], label="ANCOVA power (95 % Monte Carlo band)")
    ax.axhline(0.8, color="grey", linestyle=":", linewidth=1, label="80 %")
    ax.axhline(result.analysis.alpha, color="grey", linestyle="--", linewidth=1, label="alpha")
    ax.axvline(result.scenario.effect, color="black", linewidth=0.8, label="simulated effect")
    ax.legend(loc="upper left", fontsize="small")
    ax.set_xlabel("true effect (active - control)")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1)
    design = result.design
    ax.set_title(
        f"{design.n_subjects} subjects, {':'.join(map(str, design.scheme.ratio))}, "
        f"SD {result.scenario.sd:g}, r {result.scenario.correlation:g}, "
        f"{result.n_sims:,} trials"
    )
    if result.scenario.effect < 0:
        ax.invert_xaxis()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


# --------------------------------------------------------------------------------------------
# trialdesk analyze


@click.command()
@click.option("--study", "study_code", default="ns-dupi", show_default=True, help="Study id.")
@click.option(
    "--blinded/--unblinded",
    default=True,
    show_default=True,
    help="Blinded runs never read the allocation and store pooled summaries.",
)
@click.option("--seed", type=click.IntRange(min=0), help="Seed (drawn and recorded when omitted).")
@click.option("--by", "username", help="The trialdesk user running it (required with --unblinded).")
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Analysis plan file  [default: analysis_plan.yaml of the study's directory]",
)
def analyze(
    study_code: str, blinded: bool, seed: int | None, username: str | None, plan_path: Path | None
) -> None:
    """Run the study's analysis plan on datasets built now; store every result with provenance."""
    from django.contrib.auth import get_user_model

    from trialdesk.analysis.datasets import DatasetError
    from trialdesk.analysis.plan import PlanError, load_plan
    from trialdesk.analysis.runner import run_plan
    from trialdesk.protocol import resolve_study_path
    from trialdesk.protocol.models import Study
    from trialdesk.randomization.errors import BlindingError

    study = Study.objects.filter(code=study_code).first()
    if study is None:
        raise click.BadParameter(f"no study {study_code!r} in the database", param_hint="--study")
    user = None
    if username:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise click.BadParameter(f"no active user {username!r}", param_hint="--by")
    if not blinded and user is None:
        raise click.UsageError("--unblinded needs --by USER, a user allowed to see allocations")
    try:
        directory = resolve_study_path(study_code)
        plan = load_plan(plan_path or directory)
    except PlanError as error:
        raise click.ClickException(str(error)) from error
    console, errors = Console(), Console(stderr=True)
    columns = (TextColumn("analysing"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    try:
        with Progress(*columns, TextColumn("{task.description}"), console=errors) as bar:
            task = bar.add_task("", total=len(plan.analyses))
            run = run_plan(
                study,
                plan,
                blinded=blinded,
                user=user,
                seed=seed,
                progress=lambda a: bar.update(task, advance=1, description=a.id),
            )
    except (DatasetError, BlindingError) as error:
        raise click.ClickException(str(error)) from error
    console.print(_results_table(run))
    console.print(
        f"run {run.pk}: {'blinded' if run.blinded else 'unblinded'}, seed {run.seed}, study file "
        f"v{run.study_version_label} ({run.study_sha256[:12]}), plan {run.plan_sha256[:12]}, "
        f"trialdesk {run.code_version}"
    )


def _results_table(run: Any) -> Table:
    table = Table(title=f"Analyses of {run.study.code}")
    for name in ("analysis", "population", "n", "status", "result"):
        table.add_column(name)
    for result in run.results.all():
        table.add_row(
            result.analysis_id,
            result.population,
            str(result.n_subjects),
            result.status,
            headline(result.tables) or result.reason,
        )
    return table


def headline(tables: dict[str, list[dict[str, Any]]]) -> str:
    """One line of a result: the effect and its p value, or what the method reports first."""
    if tables.get("posterior"):
        row = tables["posterior"][0]
        return f"P(effect < {row['threshold']:g}) = {row['prob_below_threshold']:.3f}"
    if tables.get("summary"):
        row = tables["summary"][0]
        delta = row["tipping_delta"]
        return row["note"] if delta is None else f"tipping delta {delta:g} ({row['note']})"
    if tables.get("rate_ratios"):
        row = tables["rate_ratios"][0]
        return f"{row['contrast']} rate ratio {_num(row['ratio'])}, p {_num(row['p'])}"
    if tables.get("differences"):
        row = tables["differences"][-1]
        return f"{row['contrast']} {_num(row['estimate'])}, p {_num(row['p'])}"
    if tables.get("test"):
        row = tables["test"][0]
        effect = row.get("estimate", row.get("hodges_lehmann"))
        return f"effect {_num(effect)}, p {_num(row['p_value'])}"
    if tables.get("pooled"):
        return ", ".join(f"{r['visit']} n={r['n']}" for r in tables["pooled"])
    return ""


def _num(value: Any) -> str:
    return "NA" if value is None else f"{value:.4g}"
