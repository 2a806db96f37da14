"""Monte Carlo simulation of whole trials: power, type I error, bias and coverage.

:func:`simulate_trials` draws ``n_sims`` complete trials at once (in chunks of
``CHUNK_SIZE``), each one as NS-DUPI would run:

1. allocation by permuted blocks within site (:mod:`trialdesk.stats.allocation`), so that
   arm sizes vary from trial to trial as they do in a real blocked list cut at the last
   subject;
2. a baseline ``B ~ N(baseline_mean, sd_baseline**2)`` and a follow-up ``F`` with SD ``sd``
   and correlation ``correlation`` with the baseline; the active arm's follow-up (hence its
   change from baseline) is shifted by ``effect``;
3. dropout: each subject's follow-up is missing with probability ``dropout``, independently
   of everything else (missing completely at random); the analysis uses complete cases;
4. the ANCOVA of every trial, ``outcome ~ site + baseline + arm`` (each adjustment can be
   switched off), solved for all trials at once from their normal equations, and optionally
   a conditional permutation test of each trial (labels permuted among its analysed
   subjects, ``permutation_resamples`` draws).

The treatment estimate of a trial is ``estimate_0 + effect`` where ``estimate_0`` is the
estimate from the same trial with no effect: the effect enters the outcome linearly and the
analysed arm indicator is a column of the model. Type I error is therefore estimated on the
same simulated trials with the effect removed (common random numbers), and the power at any
other effect (:meth:`SimulationResult.power_curve`) costs no new simulation. Coverage of the
``1 - alpha`` interval equals ``1 -`` the type I error on these trials, by construction.

Monte Carlo standard errors: ``sqrt(p (1 - p) / n)`` for proportions and ``sd / sqrt(n)``
for the bias. Power and type I error are over all ``n_sims`` trials (a trial whose effect is
not estimable does not reject); bias and coverage over the estimable ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from trialdesk.stats.allocation import BlockScheme, draw_stratified_lists

__all__ = [
    "AnalysisPlan",
    "Scenario",
    "SimulatedTrials",
    "SimulationError",
    "SimulationResult",
    "TrialDesign",
    "batched_ols",
    "chunk_generators",
    "design_stack",
    "draw_trials",
    "simulate_trials",
]

#: Trials simulated per vectorized step; results depend on (seed, n_sims) through it.
CHUNK_SIZE = 1 << 16
OUTCOMES = ("change", "followup")


class SimulationError(ValueError):
    """An invalid design, scenario or analysis plan."""


@dataclass(frozen=True)
class TrialDesign:
    """Who is randomized where, and how.

    Parameters
    ----------
    sites : tuple of str
        Site (stratum) codes.
    site_sizes : tuple of int
        Subjects randomized per site.
    scheme : BlockScheme
        Two arms, their ratio and block sizes; the same in every site.
    control : str, optional
        The control arm; by default the scheme's last arm.

    Examples
    --------
    >>> design = TrialDesign.balanced(24, sites=("TLS", "NCK"), ratio=(2, 1), block_sizes=(3, 6))
    >>> design.site_sizes, design.active, design.control
    ((12, 12), 'active', 'control')
    """

    sites: tuple[str, ...]
    site_sizes: tuple[int, ...]
    scheme: BlockScheme
    control: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sites", tuple(self.sites))
        object.__setattr__(self, "site_sizes", tuple(int(n) for n in self.site_sizes))
        if len(self.scheme.arms) != 2:
            raise SimulationError(f"the simulator compares two arms, got {self.scheme.arms}")
        if len(self.sites) != len(self.site_sizes) or not self.sites:
            raise SimulationError(
                f"sites {self.sites} and site_sizes {self.site_sizes} must match in length"
            )
        if min(self.site_sizes) < 1:
            raise SimulationError(f"site_sizes must be >= 1, got {self.site_sizes}")
        control = self.scheme.arms[-1] if self.control is None else self.control
        if control not in self.scheme.arms:
            raise SimulationError(f"control {control!r} is not an arm of {self.scheme.arms}")
        object.__setattr__(self, "control", control)

    @classmethod
    def balanced(
        cls,
        n_subjects: int,
        *,
        sites: Sequence[str],
        ratio: Sequence[int],
        block_sizes: Sequence[int],
        arms: Sequence[str] = ("active", "control"),
    ) -> TrialDesign:
        """Spread ``n_subjects`` as evenly as possible over ``sites`` (earlier sites first).

        Examples
        --------
        >>> TrialDesign.balanced(25, sites=("A", "B"), ratio=(1, 1), block_sizes=(2,)).site_sizes
        (13, 12)
        """
        if n_subjects < len(sites):
            raise SimulationError(f"n_subjects {n_subjects} is smaller than the {len(sites)} sites")
        base, extra = divmod(int(n_subjects), len(sites))
        sizes = tuple(base + (1 if i < extra else 0) for i in range(len(sites)))
        scheme = BlockScheme(arms=tuple(arms), ratio=tuple(ratio), block_sizes=tuple(block_sizes))
        return cls(sites=tuple(sites), site_sizes=sizes, scheme=scheme)

    @property
    def n_subjects(self) -> int:
        """Subjects randomized in the trial.

        Examples
        --------
        >>> TrialDesign.balanced(24, sites=("A", "B"), ratio=(2, 1), block_sizes=(3,)).n_subjects
        24
        """
        return sum(self.site_sizes)

    @property
    def active(self) -> str:
        """The arm compared with the control.

        Examples
        --------
        >>> TrialDesign.balanced(6, sites=("A",), ratio=(2, 1), block_sizes=(3,)).active
        'active'
        """
        return next(a for a in self.scheme.arms if a != self.control)


@dataclass(frozen=True)
class Scenario:
    """The truth a simulation assumes.

    Parameters
    ----------
    effect : float
        Active minus control difference in mean follow-up (and in mean change).
    sd : float
        SD of the follow-up outcome.
    sd_baseline : float, optional
        SD of the baseline; equal to ``sd`` by default.
    correlation : float
        Correlation of baseline and follow-up.
    dropout : float
        Probability that a subject's follow-up is missing (MCAR).
    baseline_mean : float
        Mean baseline (irrelevant to the ANCOVA; kept for readable simulated data).
    control_change : float
        Mean change from baseline in the control arm.

    Examples
    --------
    >>> Scenario(effect=-2.0, sd=2.5).sd_baseline
    2.5
    """

    effect: float
    sd: float
    sd_baseline: float | None = None
    correlation: float = 0.5
    dropout: float = 0.0
    baseline_mean: float = 0.0
    control_change: float = 0.0

    def __post_init__(self) -> None:
        if self.sd_baseline is None:
            object.__setattr__(self, "sd_baseline", self.sd)
        if not (self.sd > 0 and self.sd_baseline > 0):
            raise SimulationError(
                f"sd ({self.sd}) and sd_baseline ({self.sd_baseline}) must be > 0"
            )
        if not -1 < self.correlation < 1:
            raise SimulationError(f"correlation must lie in (-1, 1), got {self.correlation}")
        if not 0 <= self.dropout < 1:
            raise SimulationError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not math.isfinite(self.effect):
            raise SimulationError(f"effect must be finite, got {self.effect}")


@dataclass(frozen=True)
class AnalysisPlan:
    """How each simulated trial is analysed.

    Parameters
    ----------
    adjust_baseline : bool
        Baseline as a covariate.
    adjust_site : bool
        Site as a factor (the stratification factor).
    outcome : {"change", "followup"}
        Analysed outcome; with baseline adjustment both give the same treatment estimate.
    alpha : float
        Two-sided significance level and ``1 - alpha`` interval.
    permutation_resamples : int
        Permutations per trial for the permutation test; 0 skips it.

    Examples
    --------
    >>> AnalysisPlan().adjust_baseline, AnalysisPlan().alpha
    (True, 0.05)
    """

    adjust_baseline: bool = True
    adjust_site: bool = True
    outcome: str = "change"
    alpha: float = 0.05
    permutation_resamples: int = 0

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise SimulationError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if not 0 < self.alpha < 1:
            raise SimulationError(f"alpha must lie in (0, 1), got {self.alpha}")
        if self.permutation_resamples < 0:
            raise SimulationError(
                f"permutation_resamples must be >= 0, got {self.permutation_resamples}"
            )


@dataclass(frozen=True)
class SimulationResult:
    """Operating characteristics of a design under a scenario, with Monte Carlo errors.

    Attributes
    ----------
    design, scenario, analysis
        What was simulated.
    n_sims : int
        Trials simulated.
    n_valid : int
        Trials whose effect was estimable (an arm emptied by dropout, or no residual df,
        makes a trial invalid; it counts as not rejecting in ``power`` and ``type1_error``
        and is left out of bias and coverage).
    seed : int
        Seed of the simulation.
    power, type1_error, coverage, bias : float
        Rejection rate under the effect, under no effect, coverage of the interval and mean
        estimate minus effect.
    power_mcse, type1_mcse, coverage_mcse, bias_mcse : float
        Their Monte Carlo standard errors.
    empirical_sd, mean_se : float
        SD of the estimates across trials and mean model-based standard error.
    permutation_power, permutation_type1 : float or None
        Rejection rates of the permutation test (None when it was not run).
    permutation_power_mcse, permutation_type1_mcse : float or None
        Their Monte Carlo standard errors.
    """

    design: TrialDesign
    scenario: Scenario
    analysis: AnalysisPlan
    n_sims: int
    n_valid: int
    seed: int
    power: float
    power_mcse: float
    type1_error: float
    type1_mcse: float
    bias: float
    bias_mcse: float
    coverage: float
    coverage_mcse: float
    empirical_sd: float
    mean_se: float
    permutation_power: float | None = None
    permutation_power_mcse: float | None = None
    permutation_type1: float | None = None
    permutation_type1_mcse: float | None = None
    null_estimates: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    standard_errors: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    critical_values: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    def power_curve(self, effects: Sequence[float] | np.ndarray) -> pd.DataFrame:
        """ANCOVA power at other effects, from the same simulated trials.

        Parameters
        ----------
        effects : sequence of float
            True effects (active minus control).

        Returns
        -------
        pandas.DataFrame
            Columns ``effect, power, mcse``.

        Examples
        --------
        >>> design = TrialDesign.balanced(24, sites=("A", "B"), ratio=(2, 1), block_sizes=(3, 6))
        >>> res = simulate_trials(design, Scenario(effect=-2.0, sd=2.5), 2000, seed=1)
        >>> curve = res.power_curve([0.0, -2.0])
        >>> curve["power"].tolist() == [res.type1_error, res.power]
        True
        """
        effects = np.asarray(effects, float)
        valid = np.isfinite(self.null_estimates)
        est = self.null_estimates[valid]
        bound = self.critical_values[valid] * self.standard_errors[valid]
        power = np.array([np.sum(np.abs(est + d) > bound) / self.n_sims for d in effects])
        return pd.DataFrame(
            {"effect": effects, "power": power, "mcse": np.sqrt(power * (1 - power) / self.n_sims)}
        )

    def to_frame(self) -> pd.DataFrame:
        """The operating characteristics as a table (``metric, value, mcse``).

        Examples
        --------
        >>> design = TrialDesign.balanced(24, sites=("A", "B"), ratio=(2, 1), block_sizes=(3, 6))
        >>> res = simulate_trials(design, Scenario(effect=-2.0, sd=2.5), 1000, seed=1)
        >>> res.to_frame()["metric"].tolist()[:3]
        ['power', 'type I error', 'bias']
        """
        rows = [
            ("power", self.power, self.power_mcse),
            ("type I error", self.type1_error, self.type1_mcse),
            ("bias", self.bias, self.bias_mcse),
            (f"coverage of {1 - self.analysis.alpha:.0%} CI", self.coverage, self.coverage_mcse),
            ("empirical SD of estimate", self.empirical_sd, math.nan),
            ("mean model SE", self.mean_se, math.nan),
        ]
        if self.permutation_power is not None:
            rows += [
                ("permutation power", self.permutation_power, self.permutation_power_mcse),
                ("permutation type I error", self.permutation_type1, self.permutation_type1_mcse),
            ]
        return pd.DataFrame(rows, columns=["metric", "value", "mcse"])


@dataclass(frozen=True)
class _Chunk:
    null_estimate: np.ndarray  # NaN where not estimable
    se: np.ndarray
    tcrit: np.ndarray
    perm_reject: np.ndarray | None  # (n, 2): under the effect, under no effect
    n: int


def simulate_trials(
    design: TrialDesign,
    scenario: Scenario,
    n_sims: int,
    seed: int | None = None,
    *,
    analysis: AnalysisPlan | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Simulate ``n_sims`` whole trials and analyse each by ANCOVA.

    Parameters
    ----------
    design : TrialDesign
        Sites, subjects per site and the block randomization scheme.
    scenario : Scenario
        True effect, SDs, baseline/follow-up correlation and dropout.
    n_sims : int
        Number of trials.
    seed : int, optional
        Seed; drawn from OS entropy and recorded in the result when None.
    analysis : AnalysisPlan, optional
        Adjustments, level and the optional permutation test (default: ANCOVA on change
        adjusted for baseline and site, two-sided 5 %).
    workers : int
        Threads running chunks in parallel (results do not depend on it).
    progress : callable, optional
        Called with the number of trials just finished, after every chunk (after every
        block of trials when the permutation test runs); from worker threads if any.

    Returns
    -------
    SimulationResult

    Examples
    --------
    NS-DUPI: 24 subjects, 2:1 in blocks of 3 and 6 within two sites, NASA change -2 points
    with SD 2.5:

    >>> design = TrialDesign.balanced(24, sites=("TLS", "NCK"), ratio=(2, 1), block_sizes=(3, 6))
    >>> res = simulate_trials(design, Scenario(effect=-2.0, sd=2.5), 20_000, seed=2024)
    >>> round(res.power, 2), res.power_mcse < 0.004
    (0.51, True)
    """
    analysis = analysis or AnalysisPlan()
    if n_sims < 1:
        raise SimulationError(f"n_sims must be >= 1, got {n_sims}")
    if workers < 1:
        raise SimulationError(f"workers must be >= 1, got {workers}")
    seed = int(np.random.SeedSequence().entropy % (2**63)) if seed is None else int(seed)
    sizes = [min(CHUNK_SIZE, n_sims - start) for start in range(0, n_sims, CHUNK_SIZE)]
    generators = chunk_generators(seed, n_sims)

    def run(i: int) -> _Chunk:
        return _simulate_chunk(
            design, scenario, analysis, sizes[i], generators[i], progress=progress
        )

    if workers == 1:
        chunks = [run(i) for i in range(len(sizes))]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            chunks = list(pool.map(run, range(len(sizes))))
    return _summarize(design, scenario, analysis, seed, chunks)


@dataclass(frozen=True)
class SimulatedTrials:
    """The data of many simulated trials, arrays of shape ``(n_trials, n_subjects)``.

    Subjects are in site order (the design's sites, ``site_sizes`` each), randomization order
    within site.

    Attributes
    ----------
    treated : numpy.ndarray
        1.0 for the active arm, 0.0 for control.
    baseline : numpy.ndarray
        Baseline values.
    null_outcome : numpy.ndarray
        Analysed outcome (change or follow-up) without the treatment effect.
    observed : numpy.ndarray
        1.0 when the follow-up is observed, 0.0 after dropout.
    effect : float
        The treatment effect of the scenario.
    """

    treated: np.ndarray
    baseline: np.ndarray
    null_outcome: np.ndarray
    observed: np.ndarray
    effect: float

    @property
    def outcome(self) -> np.ndarray:
        """Analysed outcome with the treatment effect.

        Examples
        --------
        >>> design = TrialDesign.balanced(6, sites=("A",), ratio=(2, 1), block_sizes=(3,))
        >>> rng = np.random.default_rng(0)
        >>> trials = draw_trials(design, Scenario(1.0, 1.0), AnalysisPlan(), 2, rng)
        >>> bool(np.allclose(trials.outcome - trials.null_outcome, trials.treated))
        True
        """
        return self.null_outcome + self.effect * self.treated


def draw_trials(
    design: TrialDesign,
    scenario: Scenario,
    analysis: AnalysisPlan,
    n_trials: int,
    rng: np.random.Generator,
) -> SimulatedTrials:
    """Draw the data of ``n_trials`` trials (allocation, baseline, outcome, dropout).

    Examples
    --------
    >>> design = TrialDesign.balanced(24, sites=("A", "B"), ratio=(2, 1), block_sizes=(3, 6))
    >>> rng = np.random.default_rng(1)
    >>> trials = draw_trials(design, Scenario(-2.0, 2.5), AnalysisPlan(), 5, rng)
    >>> trials.treated.shape
    (5, 24)
    """
    lists = draw_stratified_lists(design.scheme, design.site_sizes, n_trials, rng)
    treated = (lists == design.scheme.arms.index(design.active)).astype(np.float64)
    outcome0, baseline = _outcomes(scenario, analysis, rng, treated.shape)
    if scenario.dropout > 0:
        observed = (rng.random(treated.shape) >= scenario.dropout).astype(np.float64)
    else:
        observed = np.ones_like(treated)
    return SimulatedTrials(treated, baseline, outcome0, observed, scenario.effect)


def chunk_generators(
    seed: int, n_sims: int
) -> list[tuple[np.random.Generator, np.random.Generator]]:
    """The (data, permutation) random generators of every chunk of a simulation.

    Examples
    --------
    >>> len(chunk_generators(1, 2 * CHUNK_SIZE + 1))
    3
    """
    n_chunks = max(1, math.ceil(n_sims / CHUNK_SIZE))
    pairs = []
    for child in np.random.SeedSequence(seed).spawn(n_chunks):
        data_seq, perm_seq = child.spawn(2)
        pairs.append((np.random.default_rng(data_seq), np.random.default_rng(perm_seq)))
    return pairs


def _simulate_chunk(
    design: TrialDesign,
    scenario: Scenario,
    analysis: AnalysisPlan,
    n: int,
    generators: tuple[np.random.Generator, np.random.Generator],
    *,
    progress: Callable[[int], None] | None = None,
) -> _Chunk:
    data_rng, perm_rng = generators
    trials = draw_trials(design, scenario, analysis, n, data_rng)
    x = design_stack(design, analysis, trials.baseline, trials.treated)
    estimate, se, df = batched_ols(x, trials.null_outcome, trials.observed)
    tcrit = _critical_values(df, analysis.alpha)
    perm = None
    if analysis.permutation_resamples:
        perm = _permutation_rejections(
            x,
            y0=trials.null_outcome,
            w=trials.observed,
            effect=scenario.effect,
            analysis=analysis,
            rng=perm_rng,
            progress=progress,
        )
        perm[~np.isfinite(estimate)] = False
    elif progress is not None:
        progress(n)
    return _Chunk(estimate, se, tcrit, perm, n)


def _outcomes(
    scenario: Scenario, analysis: AnalysisPlan, rng: np.random.Generator, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Outcome with no treatment effect, and the baseline, per trial and subject."""
    z = rng.standard_normal((2, *shape))
    baseline = scenario.baseline_mean + scenario.sd_baseline * z[0]
    rho = scenario.correlation
    followup = (
        scenario.baseline_mean
        + scenario.control_change
        + scenario.sd * (rho * z[0] + math.sqrt(1 - rho * rho) * z[1])
    )
    outcome = followup - baseline if analysis.outcome == "change" else followup
    return outcome, baseline


def design_stack(
    design: TrialDesign, analysis: AnalysisPlan, baseline: np.ndarray, treated: np.ndarray
) -> np.ndarray:
    """Design matrices of all trials, ``(n_trials, n_subjects, p)``; treatment last.

    Columns: intercept, site indicators (all sites but the first), baseline, treatment, as
    the analysis plan asks.

    Examples
    --------
    >>> design = TrialDesign.balanced(6, sites=("A", "B"), ratio=(2, 1), block_sizes=(3,))
    >>> ones = np.ones((1, 6))
    >>> design_stack(design, AnalysisPlan(), 2 * ones, ones)[0, :2].tolist()
    [[1.0, 0.0, 2.0, 1.0], [1.0, 0.0, 2.0, 1.0]]
    """
    n_trials, n_subjects = treated.shape
    columns = [np.ones((n_trials, n_subjects))]
    if analysis.adjust_site and len(design.sites) > 1:
        site_of = np.repeat(np.arange(len(design.sites)), design.site_sizes)
        columns += [
            np.broadcast_to(site_of == s, treated.shape) for s in range(1, len(design.sites))
        ]
    if analysis.adjust_baseline:
        columns.append(baseline)
    columns.append(treated)
    return np.stack(columns, axis=-1).astype(np.float64, copy=False)


def batched_ols(
    x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Last coefficient, its SE and residual df of every trial's weighted least squares.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n_trials, n, p)`` design matrices.
    y : numpy.ndarray
        ``(n_trials, n)`` outcomes.
    w : numpy.ndarray
        ``(n_trials, n)`` 0/1 weights (0 = not analysed).

    Returns
    -------
    estimate, se, df : numpy.ndarray
        NaN estimate and SE where the design is singular or no df is left.

    Examples
    --------
    >>> x = np.array([[[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]]])
    >>> est, se, df = batched_ols(x, np.array([[1.0, 2.0, 4.0, 5.0]]), np.ones((1, 4)))
    >>> est.tolist(), se.round(4).tolist(), df.tolist()
    ([3.0], [0.7071], [2.0])
    """
    p = x.shape[-1]
    xw = x * w[..., None]
    gram = np.matmul(xw.transpose(0, 2, 1), x)
    xty = np.einsum("tni,tn->ti", xw, y)
    df = w.sum(axis=1) - p
    with np.errstate(divide="ignore", invalid="ignore"):
        diag = np.einsum("tii->ti", gram)
        sign, logdet = np.linalg.slogdet(gram)
        hadamard = logdet - np.log(diag).sum(axis=1)
        ok = (sign > 0) & (hadamard > math.log(1e-10)) & (df >= 1)
    gram[~ok] = np.eye(p)
    xty[~ok] = 0.0
    unit = np.zeros((len(x), p))
    unit[:, -1] = 1.0
    solution = np.linalg.solve(gram, np.stack([xty, unit], axis=-1))
    beta, inv_last = solution[..., 0], solution[:, -1, 1]
    rss = np.einsum("tn,tn->t", w * y, y) - np.einsum("ti,ti->t", beta, xty)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.maximum(rss, 0.0) / df * inv_last)
    estimate = np.where(ok, beta[:, -1], np.nan)
    return estimate, np.where(ok, se, np.nan), np.maximum(df, 1)


def _critical_values(df: np.ndarray, alpha: float) -> np.ndarray:
    values, inverse = np.unique(df, return_inverse=True)
    return stats.t.isf(alpha / 2, values)[inverse.ravel()]


def _permutation_rejections(
    x: np.ndarray,
    *,
    y0: np.ndarray,
    w: np.ndarray,
    effect: float,
    analysis: AnalysisPlan,
    rng: np.random.Generator,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Reject (p <= alpha) under the effect and under no effect, per trial: ``(n, 2)``."""
    n_trials, n = w.shape
    n_perm = analysis.permutation_resamples
    step = max(1, (1 << 22) // (n_perm * n))
    out = np.zeros((n_trials, 2), bool)
    for start in range(0, n_trials, step):
        sl = slice(start, min(start + step, n_trials))
        out[sl] = _permutation_block(
            x[sl], y0=y0[sl], w=w[sl], effect=effect, n_perm=n_perm, alpha=analysis.alpha, rng=rng
        )
        if progress is not None:
            progress(sl.stop - sl.start)
    return out


def _permutation_block(
    x: np.ndarray,
    *,
    y0: np.ndarray,
    w: np.ndarray,
    effect: float,
    n_perm: int,
    alpha: float,
    rng: np.random.Generator,
) -> np.ndarray:
    treated = x[..., -1] * w
    z = x[..., :-1] * w[..., None]
    q, r = np.linalg.qr(z)
    keep = np.abs(np.einsum("tii->ti", r)) > 1e-10
    q = q * keep[:, None, :]
    rank = keep.sum(axis=1)
    df = np.maximum(w.sum(axis=1) - rank - 1, 1)

    def residual(v: np.ndarray) -> np.ndarray:
        return v - np.einsum("tnk,tk->tn", q, np.einsum("tnk,tn->tk", q, v))

    r0, rt = residual(y0 * w), residual(treated)
    # permutations of the labels among each trial's analysed subjects
    keys = rng.random((len(w), n_perm, w.shape[1]))
    keys[np.broadcast_to(w[:, None, :] == 0, keys.shape)] = 2.0
    order = np.argsort(keys, axis=-1)
    slots = np.argsort(w == 0, axis=-1, kind="stable")[:, None, :]
    perm = np.zeros_like(keys)
    np.put_along_axis(
        perm,
        np.broadcast_to(slots, keys.shape),
        np.take_along_axis(np.broadcast_to(treated[:, None, :], keys.shape), order, axis=-1),
        axis=-1,
    )
    alloc = np.concatenate([treated[:, None, :], perm], axis=1)  # observed first
    proj = np.matmul(alloc, q)
    den = alloc.sum(axis=-1) - np.einsum("tbk,tbk->tb", proj, proj)
    num0 = np.einsum("tbn,tn->tb", alloc, r0)
    numt = np.einsum("tbn,tn->tb", alloc, rt)
    result = np.zeros((len(w), 2), bool)
    for j, delta in enumerate((effect, 0.0)):
        num = num0 + delta * numt
        resid = r0 + delta * rt
        with np.errstate(divide="ignore", invalid="ignore"):
            rss = np.einsum("tn,tn->t", resid, resid)[:, None] - num**2 / den
            t = num / np.sqrt(np.maximum(rss, 0.0) / df[:, None] * den)
        observed = np.abs(t[:, :1])
        extreme = np.abs(t[:, 1:]) >= observed * (1 - 1e-9)
        p = (1 + np.sum(extreme & np.isfinite(t[:, 1:]), axis=1)) / (1 + n_perm)
        result[:, j] = p <= alpha
    return result


def _proportion(hits: int, n: int) -> tuple[float, float]:
    p = hits / n
    return p, math.sqrt(p * (1 - p) / n)


def _summarize(
    design: TrialDesign,
    scenario: Scenario,
    analysis: AnalysisPlan,
    seed: int,
    chunks: list[_Chunk],
) -> SimulationResult:
    est0 = np.concatenate([c.null_estimate for c in chunks])
    se = np.concatenate([c.se for c in chunks])
    tcrit = np.concatenate([c.tcrit for c in chunks])
    n_sims = len(est0)
    valid = np.isfinite(est0)
    n_valid = int(valid.sum())
    if n_valid < 2:
        raise SimulationError(f"only {n_valid} of {n_sims} simulated trials were estimable")
    e0, s, c = est0[valid], se[valid], tcrit[valid]
    power, power_mcse = _proportion(int(np.sum(np.abs(e0 + scenario.effect) > c * s)), n_sims)
    type1, type1_mcse = _proportion(int(np.sum(np.abs(e0) > c * s)), n_sims)
    coverage, coverage_mcse = _proportion(int(np.sum(np.abs(e0) <= c * s)), n_valid)
    sd = float(np.std(e0, ddof=1))
    perm = {}
    if analysis.permutation_resamples:
        rejections = np.concatenate([c.perm_reject for c in chunks])
        perm_power, perm_power_mcse = _proportion(int(rejections[:, 0].sum()), n_sims)
        perm_type1, perm_type1_mcse = _proportion(int(rejections[:, 1].sum()), n_sims)
        perm = {
            "permutation_power": perm_power,
            "permutation_power_mcse": perm_power_mcse,
            "permutation_type1": perm_type1,
            "permutation_type1_mcse": perm_type1_mcse,
        }
    return SimulationResult(
        design=design,
        scenario=scenario,
        analysis=analysis,
        n_sims=n_sims,
        n_valid=n_valid,
        seed=seed,
        power=power,
        power_mcse=power_mcse,
        type1_error=type1,
        type1_mcse=type1_mcse,
        bias=float(e0.mean()),
        bias_mcse=sd / math.sqrt(n_valid),
        coverage=coverage,
        coverage_mcse=coverage_mcse,
        empirical_sd=sd,
        mean_se=float(s.mean()),
        null_estimates=est0,
        standard_errors=se,
        critical_values=tcrit,
        **perm,
    )
