"""Benchmark: MMRM fits of fev_data replicated x1, x10, x100 against R's mmrm.

Each replication copies fev_data with new subject ids (200 / 2,000 / 20,000 subjects) and
fits ``FEV1 ~ RACE + SEX + ARMCD * AVISIT`` with an unstructured covariance by REML, with
Satterthwaite and with Kenward-Roger degrees of freedom. The time is the median over runs
(11 / 5 / 3) of a complete fit plus its coefficient table, after a warm-up fit; factors are
pandas Categoricals, as the R benchmark uses R factors.

If ``Rscript`` with the R package mmrm is installed, the same fits run in R in the same
run (mmrm's default optimizer for Satterthwaite, nlminb for Kenward-Roger, as in
``refdata/r-results/03_timing.R``) and the ratio R / trialdesk is printed. Otherwise the
ratio is against the R figures recorded in ``refdata/r-results/timing_r.json`` (measured
on another machine of the same kind), and says so.

Usage::

    python bench/mmrm.py [--refdata DIR] [--max-replication 100] [--no-r]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from trialdesk.stats import fit_mmrm

REPO = Path(__file__).resolve().parent.parent
FORMULA = "FEV1 ~ RACE + SEX + ARMCD * AVISIT"
LEVELS = {
    "AVISIT": ["VIS1", "VIS2", "VIS3", "VIS4"],
    "ARMCD": ["PBO", "TRT"],
    "RACE": ["Asian", "Black or African American", "White"],
    "SEX": ["Male", "Female"],
}
RUNS = {1: 11, 10: 5, 100: 3}
METHODS = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger"}
#: timing_r.json entries the issue quotes for each df method.
R_REFERENCE_FITS = {
    "satterthwaite": "mmrm_default_satterthwaite",
    "kenward-roger": "mmrm_nlminb_kenward_roger",
}

R_SCRIPT = r"""
suppressPackageStartupMessages(suppressWarnings(library(mmrm)))
args <- commandArgs(trailingOnly = TRUE)
fev <- read.csv(args[1], stringsAsFactors = FALSE)
reps <- as.integer(strsplit(args[2], ",")[[1]])
runs <- as.integer(strsplit(args[3], ",")[[1]])
fml <- FEV1 ~ RACE + SEX + ARMCD * AVISIT + us(AVISIT | USUBJID)
fits <- list(
  satterthwaite = function(d) mmrm(fml, data = d),
  `kenward-roger` = function(d) mmrm(fml, data = d, optimizer = "nlminb", method = "Kenward-Roger")
)
out <- list()
for (i in seq_along(reps)) {
  k <- reps[i]
  d <- do.call(rbind, lapply(seq_len(k), function(j) {
    x <- fev
    x$USUBJID <- paste0(x$USUBJID, "_r", j)
    x
  }))
  d$USUBJID <- factor(d$USUBJID, levels = unique(d$USUBJID))
  d$AVISIT <- factor(d$AVISIT, levels = c("VIS1", "VIS2", "VIS3", "VIS4"))
  d$ARMCD <- factor(d$ARMCD, levels = c("PBO", "TRT"))
  d$RACE <- factor(d$RACE, levels = c("Asian", "Black or African American", "White"))
  d$SEX <- factor(d$SEX, levels = c("Male", "Female"))
  for (nm in names(fits)) {
    if (i == 1) invisible(fits[[nm]](d))
    times <- vapply(seq_len(runs[i]), function(r) system.time(fits[[nm]](d))[["elapsed"]], 0)
    out[[length(out) + 1]] <- sprintf(
      '{"replication": %d, "method": "%s", "median_s": %.6f}', k, nm, median(times))
  }
}
cat("[", paste(out, collapse = ","), "]\n")
"""


def default_refdata() -> Path:
    return Path(os.environ.get("TRIALDESK_REFDATA", REPO.parent / "shared" / "refdata"))


def replicate(fev: pd.DataFrame, k: int, *, categorical: bool = True) -> pd.DataFrame:
    """fev_data copied ``k`` times with new subject ids."""
    copies = [fev.assign(USUBJID=fev["USUBJID"] + f"_r{i}") for i in range(1, k + 1)]
    data = pd.concat(copies, ignore_index=True)
    if categorical:
        for name, levels in LEVELS.items():
            data[name] = pd.Categorical(data[name], categories=levels)
    return data


def time_fit(data: pd.DataFrame, df_method: str, runs: int) -> tuple[float, float, float]:
    """Median and fastest seconds of a fit plus coefficient table, and the log-likelihood."""
    times = []
    loglik = float("nan")
    for _ in range(runs):
        start = time.perf_counter()
        fit = fit_mmrm(data, FORMULA, subject="USUBJID", visit="AVISIT", df_method=df_method)
        fit.coefficients  # noqa: B018 - the df computations are part of the timing
        times.append(time.perf_counter() - start)
        loglik = fit.loglik
    return statistics.median(times), min(times), loglik


def r_with_mmrm() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(
        ["Rscript", "-e", 'quit(status = !requireNamespace("mmrm", quietly = TRUE))'],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def run_r(refdata: Path, reps: list[int]) -> dict[tuple[int, str], float]:
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as script:
        script.write(R_SCRIPT)
    try:
        proc = subprocess.run(
            [
                "Rscript",
                script.name,
                str(refdata / "fev_data.csv"),
                ",".join(map(str, reps)),
                ",".join(str(RUNS[k]) for k in reps),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(script.name).unlink()
    rows = json.loads(proc.stdout)
    return {(r["replication"], r["method"]): r["median_s"] for r in rows}


def recorded_r(refdata: Path) -> dict[tuple[int, str], float]:
    results = json.loads((refdata / "r-results" / "timing_r.json").read_text())["results"]
    wanted = {v: k for k, v in R_REFERENCE_FITS.items()}
    return {
        (r["replication"], wanted[r["fit"]]): r["median_s"] for r in results if r["fit"] in wanted
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refdata", type=Path, default=default_refdata())
    parser.add_argument("--max-replication", type=int, default=100, choices=(1, 10, 100))
    parser.add_argument("--no-r", action="store_true", help="do not run R even if available")
    args = parser.parse_args(argv)

    fev = pd.read_csv(args.refdata / "fev_data.csv")
    reps = [k for k in (1, 10, 100) if k <= args.max_replication]
    ours: dict[tuple[int, str], float] = {}
    print(f"trialdesk MMRM: {FORMULA}, us, REML; seconds per fit (incl. df)")
    print(f"  load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for k in reps:
        data = replicate(fev, k)
        for method in METHODS:
            if k == reps[0]:
                time_fit(data, method, 1)  # warm-up
            ours[(k, method)], fastest, loglik = time_fit(data, method, RUNS[k])
            print(
                f"  x{k:<4} subjects={data['USUBJID'].nunique():6d}  {method:14s} "
                f"median {ours[(k, method)]:7.4f} s  (fastest {fastest:7.4f} s)  "
                f"logLik {loglik:.6f}"
            )
    strings = replicate(fev, reps[-1], categorical=False)
    seconds, _, _ = time_fit(strings, "satterthwaite", RUNS[reps[-1]])
    print(f"  x{reps[-1]} from string columns (factor coding included): {seconds:.4f} s")

    if not args.no_r and r_with_mmrm():
        label = "R mmrm measured now, in this run"
        peer = run_r(args.refdata, reps)
    else:
        label = (
            "R mmrm NOT available here: ratio against the RECORDED R figures of "
            "refdata/r-results/timing_r.json (another machine of the same kind)"
        )
        peer = recorded_r(args.refdata)
    print(f"\nRatio R / trialdesk ({label}):")
    for (k, method), seconds in ours.items():
        r_seconds = peer[(k, method)]
        print(
            f"  x{k:<4} {method:14s} R {r_seconds:7.3f} s  trialdesk {seconds:7.4f} s  "
            f"ratio {r_seconds / seconds:6.1f}"
        )
    print("\nTargets:")
    first = max(ours[(reps[0], m)] for m in METHODS) if reps[0] == 1 else None
    if first is not None:
        print(f"  x1 under 30 ms: {'met' if first < 0.030 else 'NOT met'} ({first * 1e3:.1f} ms)")
    if 100 in reps:
        for method in METHODS:
            ratio = peer[(100, method)] / ours[(100, method)]
            verdict = "met" if ratio >= 10 else "NOT met"
            print(f"  x100 {method}: at most a tenth of R's time: {verdict} (ratio {ratio:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
