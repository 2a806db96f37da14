"""Safety summaries over a dataset bundle: adverse events, laboratory shifts and exposure.

Each function takes the :class:`~trialdesk.analysis.datasets.DatasetBundle` of
:func:`~trialdesk.analysis.datasets.build_datasets` and returns a pandas data frame; none reads
the database. The population is the safety population (``SAFFL = "Y"`` in ADSL) and the
denominator ``N`` of every percentage is its number of subjects in the arm.

By arm or pooled: an unblinded bundle is summarised by actual treatment (``TRT01A`` of ADSL, one
row per arm, arms in alphabetical order); a blinded bundle has no arm and every row has
``ARM = "All"`` (:data:`POOLED`). The blinded summaries use nothing but the blinded bundle, so
they cannot depend on the allocation.

* :func:`ae_by_soc`: treatment-emergent adverse events by system organ class and preferred term.
* :func:`ae_overview`: subjects with any TEAE, related, serious, severe, of special interest,
  leading to discontinuation, and deaths.
* :func:`lab_shifts`: baseline CTCAE grade by worst post-baseline grade, per test.
* :func:`exposure`: doses given, days on treatment and compliance.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from django.utils.translation import gettext as _

from .datasets import DatasetBundle

__all__ = [
    "ANY",
    "MISSING_GRADE",
    "POOLED",
    "ae_by_soc",
    "ae_overview",
    "exposure",
    "lab_shifts",
    "safety_population",
]

#: The ARM of every row of a blinded bundle.
POOLED = "All"
#: AEBODSYS / AEDECOD of the total rows of :func:`ae_by_soc` (any class, any term of a class).
ANY = "ANY"
#: Grade of a subject without a graded baseline or post-baseline result in :func:`lab_shifts`.
MISSING_GRADE = "Missing"

_GRADE_ORDER = ["0", "1", "2", "3", "4", "5", MISSING_GRADE]


def safety_population(bundle: DatasetBundle) -> pd.DataFrame:
    """``USUBJID`` and ``ARM`` of the safety population (``ARM`` is ``"All"`` when blinded)."""
    adsl = bundle["ADSL"].frame
    subjects = adsl.loc[adsl["SAFFL"] == "Y"]
    arm = POOLED if bundle.blinded else subjects["TRT01A"]
    frame = pd.DataFrame({"USUBJID": subjects["USUBJID"], "ARM": arm})
    return frame.reset_index(drop=True)


def _arms(population: pd.DataFrame) -> list[str]:
    return sorted(population["ARM"].dropna().unique())


def _denominators(population: pd.DataFrame) -> dict[str, int]:
    return population.groupby("ARM")["USUBJID"].nunique().to_dict()


def _pct(subjects: int, n: int) -> float | None:
    return 100.0 * subjects / n if n else None


def _teae(bundle: DatasetBundle, population: pd.DataFrame) -> pd.DataFrame:
    """Treatment-emergent events of the safety population, with the population's ARM."""
    adae = bundle["ADAE"].frame
    events = adae.loc[adae["TRTEMFL"] == "Y"].drop(columns=["ARM"], errors="ignore")
    return events.merge(population, on="USUBJID", how="inner")


def ae_by_soc(bundle: DatasetBundle) -> pd.DataFrame:
    """Treatment-emergent adverse events by system organ class and preferred term, by arm.

    Columns ``AEBODSYS, AEDECOD, ARM, N, SUBJECTS, EVENTS, PCT``. The first rows (one per arm)
    are the total, ``AEBODSYS = AEDECOD = "ANY"``; then each class (alphabetical) has its total
    row (``AEDECOD = "ANY"``) followed by its terms, most frequent first (subjects over the
    arms), ties alphabetical. Every class and term has a row for every arm, zero included.
    ``SUBJECTS`` counts subjects with at least one such event, ``EVENTS`` the events, ``PCT`` is
    ``100 * SUBJECTS / N``.
    """
    population = safety_population(bundle)
    arms, n = _arms(population), _denominators(population)
    events = _teae(bundle, population)
    groups: list[tuple[str, str, pd.DataFrame]] = [(ANY, ANY, events)]
    for soc in sorted(events["AEBODSYS"].dropna().unique()):
        in_soc = events.loc[events["AEBODSYS"] == soc]
        groups.append((soc, ANY, in_soc))
        terms = in_soc.groupby("AEDECOD")["USUBJID"].nunique().reset_index(name="subjects")
        terms = terms.sort_values(["subjects", "AEDECOD"], ascending=[False, True])
        for term in terms["AEDECOD"]:
            groups.append((soc, term, in_soc.loc[in_soc["AEDECOD"] == term]))
    rows = []
    for soc, term, frame in groups:
        for arm in arms:
            of_arm = frame.loc[frame["ARM"] == arm]
            subjects = int(of_arm["USUBJID"].nunique())
            rows.append(
                {
                    "AEBODSYS": soc,
                    "AEDECOD": term,
                    "ARM": arm,
                    "N": n.get(arm, 0),
                    "SUBJECTS": subjects,
                    "EVENTS": len(of_arm),
                    "PCT": _pct(subjects, n.get(arm, 0)),
                }
            )
    columns = ["AEBODSYS", "AEDECOD", "ARM", "N", "SUBJECTS", "EVENTS", "PCT"]
    return pd.DataFrame(rows, columns=columns)


def _overview_categories() -> list[tuple[str, str, Callable[[pd.DataFrame], pd.Series]]]:
    return [
        ("ANY", _("Any treatment-emergent adverse event"), lambda f: f["USUBJID"].notna()),
        ("RELATED", _("Related to study drug"), lambda f: f["AERELFL"] == "Y"),
        ("SERIOUS", _("Serious"), lambda f: f["AESER"] == "Y"),
        ("SEVERE", _("Severe or CTCAE grade 3 or more"), lambda f: f["AESEVFL"] == "Y"),
        ("AESI", _("Of special interest"), lambda f: f["AESIFL"] == "Y"),
        ("DISCONTINUED", _("Leading to study drug withdrawal"), lambda f: f["AEDISFL"] == "Y"),
        ("DEATH", _("Leading to death"), lambda f: f["AESDTH"] == "Y"),
    ]


def ae_overview(bundle: DatasetBundle) -> pd.DataFrame:
    """Subjects and events in each category of treatment-emergent adverse event, by arm.

    Columns ``CATEGORY, LABEL, ARM, N, SUBJECTS, EVENTS, PCT``; categories in this order:
    ``ANY``, ``RELATED`` (possible, probable or certain), ``SERIOUS``, ``SEVERE`` (severe or
    CTCAE grade ≥ 3), ``AESI``, ``DISCONTINUED`` (study drug withdrawn), ``DEATH`` (fatal
    outcome or the seriousness criterion death). Each row is for one category and one arm.
    """
    population = safety_population(bundle)
    arms, n = _arms(population), _denominators(population)
    events = _teae(bundle, population)
    rows = []
    for code, label, selects in _overview_categories():
        chosen = events.loc[selects(events)] if len(events) else events
        for arm in arms:
            of_arm = chosen.loc[chosen["ARM"] == arm]
            subjects = int(of_arm["USUBJID"].nunique())
            rows.append(
                {
                    "CATEGORY": code,
                    "LABEL": label,
                    "ARM": arm,
                    "N": n.get(arm, 0),
                    "SUBJECTS": subjects,
                    "EVENTS": len(of_arm),
                    "PCT": _pct(subjects, n.get(arm, 0)),
                }
            )
    return pd.DataFrame(
        rows, columns=["CATEGORY", "LABEL", "ARM", "N", "SUBJECTS", "EVENTS", "PCT"]
    )


def _grade_label(value: object) -> str:
    if value is None or pd.isna(value):
        return MISSING_GRADE
    return str(int(value))


def lab_shifts(bundle: DatasetBundle) -> pd.DataFrame:
    """Baseline CTCAE grade by worst post-baseline grade, per test and arm.

    Columns ``PARAMCD, ARM, BTOXGR, WTOXGR, SUBJECTS, N``. Every subject of the safety
    population is counted once per test of ADLB: ``BTOXGR`` is the grade of the baseline result,
    ``WTOXGR`` the highest grade of the post-baseline results (``ANL01FL``), each ``"0"`` to
    ``"4"`` or ``"Missing"`` (no graded result). Only combinations with subjects are listed, so
    for each test and arm ``SUBJECTS`` adds up to ``N``, the arm's safety population.
    """
    population = safety_population(bundle)
    n = _denominators(population)
    adlb = bundle["ADLB"].frame
    columns = ["PARAMCD", "ARM", "BTOXGR", "WTOXGR", "SUBJECTS", "N"]
    params = sorted(adlb["PARAMCD"].dropna().unique())
    if not params or population.empty:
        return pd.DataFrame([], columns=columns)
    base = (
        adlb.loc[adlb["ABLFL"] == "Y"]
        .groupby(["USUBJID", "PARAMCD"])["ATOXGR"]
        .max()
        .rename("BTOXGR")
    )
    worst = (
        adlb.loc[adlb["ANL01FL"] == "Y"]
        .groupby(["USUBJID", "PARAMCD"])["ATOXGR"]
        .max()
        .rename("WTOXGR")
    )
    grid = population.merge(pd.DataFrame({"PARAMCD": params}), how="cross")
    grid = grid.join(base, on=["USUBJID", "PARAMCD"]).join(worst, on=["USUBJID", "PARAMCD"])
    grid["BTOXGR"] = grid["BTOXGR"].map(_grade_label)
    grid["WTOXGR"] = grid["WTOXGR"].map(_grade_label)
    counts = (
        grid.groupby(["PARAMCD", "ARM", "BTOXGR", "WTOXGR"])["USUBJID"]
        .nunique()
        .reset_index(name="SUBJECTS")
    )
    counts["N"] = counts["ARM"].map(n).astype(int)
    order = {grade: i for i, grade in enumerate(_GRADE_ORDER)}
    counts = counts.sort_values(
        ["PARAMCD", "ARM", "BTOXGR", "WTOXGR"],
        key=lambda s: s.map(order) if s.name in {"BTOXGR", "WTOXGR"} else s,
        kind="stable",
    )
    return counts.reset_index(drop=True)[columns]


def _exposure_params() -> list[tuple[str, str]]:
    """The exposure variables of ADSL summarised by :func:`exposure`, with their labels."""
    return [
        ("NDOSES", _("Doses given (syringes)")),
        ("TRTDURD", _("Days on treatment")),
        ("COMPLPCT", _("Compliance (%)")),
    ]


def exposure(bundle: DatasetBundle) -> pd.DataFrame:
    """Doses given, days on treatment and compliance of the safety population, by arm.

    Columns ``PARAMCD, LABEL, ARM, N, MEAN, SD, MEDIAN, MIN, MAX``: ``N`` is the number of
    subjects with a value, ``SD`` the sample standard deviation (empty below two values). The
    variables are ADSL's ``NDOSES``, ``TRTDURD`` and ``COMPLPCT`` (definitions in the data
    dictionary).
    """
    population = safety_population(bundle)
    adsl = bundle["ADSL"].frame
    values = population.merge(
        adsl[["USUBJID", "NDOSES", "TRTDURD", "COMPLPCT"]], on="USUBJID", how="left"
    )
    rows = []
    for code, label in _exposure_params():
        for arm in _arms(population):
            series = pd.to_numeric(values.loc[values["ARM"] == arm, code], errors="coerce")
            series = series.dropna().astype(float)
            count = len(series)
            rows.append(
                {
                    "PARAMCD": code,
                    "LABEL": label,
                    "ARM": arm,
                    "N": count,
                    "MEAN": series.mean() if count else None,
                    "SD": series.std(ddof=1) if count > 1 else None,
                    "MEDIAN": series.median() if count else None,
                    "MIN": series.min() if count else None,
                    "MAX": series.max() if count else None,
                }
            )
    columns = ["PARAMCD", "LABEL", "ARM", "N", "MEAN", "SD", "MEDIAN", "MIN", "MAX"]
    return pd.DataFrame(rows, columns=columns)
