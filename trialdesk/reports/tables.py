"""Report tables: column headings and rows of text, and the layout of the safety summaries.

The safety summaries of :mod:`trialdesk.analysis.safety` are long data frames (one row per arm);
:func:`safety_tables` lays them out with one column per arm, for the unblinded reports (by arm)
and the DSMB open report (one pooled column, ``All``, from a blinded bundle). The numbers are
computed by :mod:`trialdesk.analysis.safety`; this module only formats them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from django.utils.translation import gettext as _

from trialdesk.analysis.datasets import DatasetBundle
from trialdesk.analysis.safety import ae_by_soc, ae_overview, exposure, lab_shifts

#: The total rows of ``ae_by_soc`` and the pooled arm (as in :mod:`trialdesk.analysis.safety`).
ANY = "ANY"
GRADES: tuple[str, ...] = ("0", "1", "2", "3", "4", "5", "Missing")


@dataclass(frozen=True)
class Table:
    """A report table: column headings and rows of cells already formatted as text."""

    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    note: str = ""
    empty: str = "-"


def _arms(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["ARM"]))


def _heading(frame: pd.DataFrame, arm: str) -> str:
    n = frame.loc[frame["ARM"] == arm, "N"]
    return f"{arm} (N={int(n.iloc[0])})" if len(n) else arm


def _subjects(row: Any) -> str:
    pct = row["PCT"]
    share = "" if pct is None or (isinstance(pct, float) and math.isnan(pct)) else f" ({pct:.0f}%)"
    return f"{int(row['SUBJECTS'])}{share} [{int(row['EVENTS'])}]"


def ae_overview_table(frame: pd.DataFrame) -> Table:
    """``ae_overview`` with one column per arm: subjects (%) [events] per category."""
    arms = _arms(frame)
    rows = []
    for _key, group in frame.groupby("CATEGORY", sort=False):
        cells = {row["ARM"]: _subjects(row) for _index, row in group.iterrows()}
        rows.append((group["LABEL"].iloc[0], *(cells.get(arm, "-") for arm in arms)))
    return Table(
        (_("Treatment-emergent adverse events"), *(_heading(frame, arm) for arm in arms)),
        rows,
        note=_("n (%) of subjects [number of events]; percentages of the safety population."),
    )


def ae_by_soc_table(frame: pd.DataFrame) -> Table:
    """``ae_by_soc`` with one column per arm: the total, each class, then its terms indented."""
    arms = _arms(frame)
    rows = []
    for (soc, term), group in frame.groupby(["AEBODSYS", "AEDECOD"], sort=False):
        cells = {row["ARM"]: _subjects(row) for _index, row in group.iterrows()}
        if soc == ANY:
            label = _("Any treatment-emergent adverse event")
        elif term == ANY:
            label = str(soc)
        else:
            label = f"\u2003{term}"
        rows.append((label, *(cells.get(arm, "-") for arm in arms)))
    return Table(
        (_("System organ class / preferred term"), *(_heading(frame, arm) for arm in arms)),
        rows,
        note=_(
            "Treatment-emergent events of the safety population: n (%) of subjects [events]; "
            "terms indented under their class."
        ),
        empty=_("No treatment-emergent adverse event."),
    )


def lab_shift_table(frame: pd.DataFrame) -> Table:
    """``lab_shifts`` as baseline grade by worst post-baseline grade, per test and arm.

    Tests with grade 0 (or no graded result) at every time in every subject are named in the
    note instead of taking rows.
    """
    graded = {
        test
        for test, group in frame.groupby("PARAMCD")
        if (set(group["BTOXGR"]) | set(group["WTOXGR"])) - {"0", "Missing"}
    }
    shown = frame.loc[frame["PARAMCD"].isin(graded)]
    grades = [g for g in GRADES if g in set(shown["WTOXGR"])]
    rows = []
    for (test, arm, base), group in shown.groupby(["PARAMCD", "ARM", "BTOXGR"], sort=False):
        counts = dict(zip(group["WTOXGR"], group["SUBJECTS"], strict=True))
        rows.append(
            (
                str(test).upper(),
                str(arm),
                str(base),
                str(int(group["SUBJECTS"].sum())),
                *(str(int(counts.get(g, 0))) for g in grades),
            )
        )
    others = sorted(str(t).upper() for t in set(frame["PARAMCD"]) - graded) if len(frame) else []
    note = _("CTCAE v5.0: baseline (D0) grade against the worst post-baseline grade, subjects.")
    if others:
        note += " " + _("Grade 0 (or not graded) throughout in every subject: %(tests)s.") % {
            "tests": ", ".join(others)
        }
    return Table(
        (
            _("Test"),
            _("Arm"),
            _("Baseline grade"),
            "n",
            *(_("Worst %(grade)s") % {"grade": g} for g in grades),
        ),
        rows,
        note=note,
        empty=_("No graded abnormality."),
    )


def _summary(row: Any, digits: int) -> str:
    if not row["N"]:
        return "-"
    sd = row["SD"]
    sd_text = "-" if sd is None or (isinstance(sd, float) and math.isnan(sd)) else f"{sd:.1f}"
    return (
        f"{row['MEAN']:.{digits}f} ({sd_text}); {row['MEDIAN']:.{digits}f} "
        f"({row['MIN']:.{digits}f}-{row['MAX']:.{digits}f}); n={int(row['N'])}"
    )


def exposure_table(frame: pd.DataFrame, population: Sequence[tuple[str, int]]) -> Table:
    """``exposure`` with one column per arm: mean (SD); median (min-max); n."""
    arms = _arms(frame)
    sizes = dict(population)
    rows = [(_("Subjects in the safety population"), *(str(sizes.get(arm, 0)) for arm in arms))]
    for _key, group in frame.groupby("PARAMCD", sort=False):
        cells = {row["ARM"]: _summary(row, 1) for _index, row in group.iterrows()}
        rows.append((group["LABEL"].iloc[0], *(cells.get(arm, "-") for arm in arms)))
    return Table(
        (_("Safety population"), *arms),
        rows,
        note=_("Mean (SD); median (min-max); number of subjects with a value."),
    )


def safety_tables(bundle: DatasetBundle) -> dict[str, Table]:
    """Exposure, AE overview, AEs by class and term, lab shifts (:mod:`trialdesk.analysis.safety`).

    By arm for an unblinded bundle, one pooled column for a blinded one.
    """
    adsl = bundle["ADSL"].frame
    safety = adsl.loc[adsl["SAFFL"] == "Y"]
    if bundle.blinded:
        population = [("All", len(safety))]
    else:
        population = sorted(Counter(safety["TRT01A"].dropna()).items())
    return {
        "exposure": exposure_table(exposure(bundle), population),
        "ae_overview": ae_overview_table(ae_overview(bundle)),
        "ae_by_soc": ae_by_soc_table(ae_by_soc(bundle)),
        "lab_shifts": lab_shift_table(lab_shifts(bundle)),
    }
