"""Benchmark: 1,000,000 simulated NS-DUPI trials analysed by ANCOVA.

Times :func:`trialdesk.stats.power.simulate_trials` (24 subjects, 2:1 in permuted blocks of 3
and 6 drawn at random within the two sites, ANCOVA of change on site, baseline and arm) with
one and with two worker threads, then times the peer, a loop of statsmodels OLS fits
(``smf.ols("y ~ C(site) + baseline + arm")``, one per trial), on a sample of the very same
trials (the first ones of the simulation, regenerated from its seed), checks that both give
the same estimates and prints the ratio of time per trial. The machine is shared: run it
when it is otherwise idle.

Run: ``python bench/power.py [--n-sims 1000000] [--sample 2000] [--seed 20240501]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from trialdesk.stats.power import (
    CHUNK_SIZE,
    AnalysisPlan,
    Scenario,
    TrialDesign,
    chunk_generators,
    draw_trials,
    simulate_trials,
)

DESIGN = TrialDesign.balanced(
    24, sites=("TLS", "NCK"), ratio=(2, 1), block_sizes=(3, 6), arms=("DUPI", "PBO")
)
SCENARIO = Scenario(effect=-2.0, sd=2.5, correlation=0.5)


def time_simulation(n_sims: int, seed: int, workers: int) -> tuple[float, object]:
    start = time.perf_counter()
    result = simulate_trials(DESIGN, SCENARIO, n_sims, seed, workers=workers)
    return time.perf_counter() - start, result


def time_statsmodels(sample: int, seed: int, n_sims: int) -> tuple[float, np.ndarray]:
    data_rng, _ = chunk_generators(seed, n_sims)[0]
    first_chunk = min(CHUNK_SIZE, n_sims)
    trials = draw_trials(DESIGN, SCENARIO, AnalysisPlan(), first_chunk, data_rng)
    sample = min(sample, first_chunk)
    site = np.repeat(DESIGN.sites, DESIGN.site_sizes)
    frames = [
        pd.DataFrame(
            {
                "y": trials.outcome[i],
                "site": site,
                "baseline": trials.baseline[i],
                "arm": trials.treated[i],
            }
        )
        for i in range(sample)
    ]
    start = time.perf_counter()
    estimates = np.array(
        [smf.ols("y ~ C(site) + baseline + arm", frame).fit().params["arm"] for frame in frames]
    )
    return time.perf_counter() - start, estimates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sims", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args()

    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} cores")
    simulate_trials(DESIGN, SCENARIO, 1000, 1)  # warm up imports and caches
    rows = []
    result = None
    for workers in (1, 2):
        seconds, result = time_simulation(args.n_sims, args.seed, workers)
        rows.append((workers, seconds))
        print(
            f"trialdesk simulate_trials, {args.n_sims:,} trials, {workers} worker(s): "
            f"{seconds:.2f} s ({seconds / args.n_sims * 1e6:.2f} us per trial)"
        )
    print(
        f"  power {result.power:.4f} (MCSE {result.power_mcse:.4f}), type I error "
        f"{result.type1_error:.4f}, bias {result.bias:+.4f}, coverage {result.coverage:.4f}"
    )
    sm_seconds, sm_estimates = time_statsmodels(args.sample, args.seed, args.n_sims)
    ours = result.null_estimates[: len(sm_estimates)] + SCENARIO.effect
    per_trial_sm = sm_seconds / len(sm_estimates)
    print(
        f"statsmodels OLS loop, {len(sm_estimates):,} of the same trials: {sm_seconds:.2f} s "
        f"({per_trial_sm * 1e3:.2f} ms per trial; {per_trial_sm * args.n_sims:,.0f} s "
        f"extrapolated to {args.n_sims:,}); max |estimate difference| "
        f"{np.max(np.abs(ours - sm_estimates)):.1e}"
    )
    for workers, seconds in rows:
        ratio = per_trial_sm * args.n_sims / seconds
        print(f"ratio statsmodels / trialdesk ({workers} worker(s)): {ratio:,.0f}x")


if __name__ == "__main__":
    main()
