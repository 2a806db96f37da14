"""The plots of the blinded reports, as base64 PNG for embedding in HTML."""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections import Counter
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(figure: Any) -> str:
    """Save ``figure`` as base64 PNG and close it."""
    try:
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def enrolment_png(curves: dict[str, list[tuple[dt.date, int, int]]]) -> str:
    """Cumulative screened (solid) and randomized (dashed) per site over time, base64 PNG."""
    figure, axes = plt.subplots(figsize=(7, 3.2), dpi=110)
    try:
        for index, (site, points) in enumerate(sorted(curves.items())):
            colour = f"C{index}"
            days = [p[0] for p in points]
            axes.step(
                days, [p[1] for p in points], where="post", color=colour, label=f"{site} screened"
            )
            axes.step(
                days,
                [p[2] for p in points],
                where="post",
                color=colour,
                linestyle="--",
                label=f"{site} randomized",
            )
        axes.set_xlabel("Screening date")
        axes.set_ylabel("Cumulative number")
        axes.grid(alpha=0.3)
        if curves:
            axes.legend(fontsize=8, loc="upper left")
        figure.autofmt_xdate()
    except BaseException:
        plt.close(figure)
        raise
    return _png(figure)


def primary_png(
    points: dict[str, list[float]], lsmeans: Sequence[dict[str, Any]], title: str
) -> str:
    """Each subject's change (jittered dots) and the ANCOVA LS mean with its 95% CI, by arm."""
    figure, axes = plt.subplots(figsize=(6, 3.4), dpi=110)
    arms = list(points)
    means = {row["level"]: row for row in lsmeans}
    for index, arm in enumerate(arms):
        values = points[arm]
        offsets = [index + 0.18 * (((k * 37) % 11) / 10 - 0.5) for k in range(len(values))]
        axes.scatter(
            offsets, values, s=18, alpha=0.6, color=f"C{index}", label=f"{arm} (n={len(values)})"
        )
        row = means.get(arm)
        if row and row.get("estimate") is not None:
            axes.errorbar(
                index + 0.32,
                row["estimate"],
                yerr=[[row["estimate"] - row["lower"]], [row["upper"] - row["estimate"]]],
                fmt="D",
                color="black",
                capsize=4,
            )
    axes.axhline(0, color="grey", linewidth=0.8)
    axes.set_xticks(range(len(arms)), arms)
    axes.set_xlim(-0.6, len(arms) - 0.2)
    axes.set_ylabel("Change from D0")
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    if arms:
        axes.legend(fontsize=8, loc="best")
    return _png(figure)


def over_time_png(panels: dict[str, Sequence[dict[str, Any]]], arm_column: str) -> str:
    """MMRM LS means with 95% CI per visit and arm, one panel per endpoint."""
    figure, all_axes = plt.subplots(
        1, max(len(panels), 1), figsize=(7.4, 3.2), dpi=110, squeeze=False
    )
    for axes, (title, rows) in zip(all_axes[0], panels.items(), strict=False):
        visits = list(dict.fromkeys(row["AVISIT"] for row in rows))
        arms = list(dict.fromkeys(row[arm_column] for row in rows))
        for index, arm in enumerate(sorted(arms)):
            mine = {row["AVISIT"]: row for row in rows if row[arm_column] == arm}
            xs = [k + (index - 0.5) * 0.12 for k, v in enumerate(visits) if v in mine]
            ys = [mine[v]["estimate"] for v in visits if v in mine]
            low = [mine[v]["estimate"] - mine[v]["lower"] for v in visits if v in mine]
            high = [mine[v]["upper"] - mine[v]["estimate"] for v in visits if v in mine]
            axes.errorbar(
                xs, ys, yerr=[low, high], marker="o", capsize=3, color=f"C{index}", label=arm
            )
        axes.axhline(0, color="grey", linewidth=0.8)
        axes.set_xticks(range(len(visits)), visits, fontsize=8)
        axes.set_title(title, fontsize=9)
        axes.set_ylabel("LS mean change (95% CI)", fontsize=8)
        axes.grid(alpha=0.3)
        if rows:
            axes.legend(fontsize=8)
        else:
            axes.text(0.5, 0.5, "not run", ha="center", transform=axes.transAxes)
    return _png(figure)


def queries_png(ages: dict[str, Counter[str]], bins: Sequence[str]) -> str:
    """Queries by age bin: open (or answered) and closed side by side."""
    figure, axes = plt.subplots(figsize=(6, 2.8), dpi=110)
    width = 0.38
    for index, status in enumerate(("open", "closed")):
        counts = [ages.get(status, Counter())[b] for b in bins]
        axes.bar([k + (index - 0.5) * width for k in range(len(bins))], counts, width, label=status)
    axes.set_xticks(range(len(bins)), list(bins))
    axes.set_ylabel("Queries")
    axes.set_xlabel("Age (open: since raised; closed: to closing)")
    axes.legend(fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def missing_png(missing: dict[str, Sequence[tuple[str, float]]], visits: Sequence[str]) -> str:
    """Percentage of past visits without a value, per endpoint and visit (in ``visits`` order)."""
    figure, axes = plt.subplots(figsize=(7, 2.8), dpi=110)
    visits = list(visits)
    for index, (param, points) in enumerate(missing.items()):
        values = dict(points)
        xs = [k for k, v in enumerate(visits) if v in values]
        axes.plot(xs, [values[visits[k]] for k in xs], marker="o", color=f"C{index}", label=param)
    axes.set_xticks(range(len(visits)), visits, fontsize=8)
    axes.set_ylabel("% missing")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    if missing:
        axes.legend(fontsize=8, ncol=4)
    return _png(figure)
