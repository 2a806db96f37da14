"""The plots of the blinded reports, as base64 PNG for embedding in HTML."""

from __future__ import annotations

import base64
import datetime as dt
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


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
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
