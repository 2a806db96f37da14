"""``trialdesk study``: check a study file, show its schedule of activities.

``trialdesk study check PATH`` exits 0 for a valid study (printing a one-line summary) and 1 with
one ``file:line: name: message`` line per problem otherwise. ``trialdesk study show ID_OR_PATH``
prints the schedule of activities as a table of assessments by visit. A bare id such as
``ns-dupi`` is looked up in the repository's ``studies/`` folder.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from .errors import StudyFileError
from .loader import load_study, resolve_study_path
from .schema import Study


def _load_or_exit(id_or_path: str) -> Study:
    try:
        return load_study(resolve_study_path(id_or_path))
    except StudyFileError as error:
        for problem in error.problems:
            click.echo(str(problem))
        count = len(error.problems)
        click.echo(
            f"{count} problem{'s' if count != 1 else ''}: the study file is refused", err=True
        )
        raise SystemExit(1) from None


def summary(study: Study) -> str:
    """One line describing a valid study (what ``study check`` prints)."""
    items = sum(len(form.items) for form in study.forms)
    parts = [
        f"{len(study.forms)} forms",
        f"{items} items",
        f"{len(study.visits)} visits",
        f"{len(study.arms)} arms",
        f"{len(study.eligibility)} eligibility criteria",
        f"{len(study.edit_checks)} edit checks",
        f"{len(study.endpoints)} endpoints",
        f"{len(study.settings)} settings",
    ]
    return f"ok: {study.id} version {study.version}, {', '.join(parts)}; sha256 {study.sha256}"


def schedule_table(study: Study, language: str = "en") -> Table:
    """The schedule of activities: one row per form, one column per visit.

    The screening form gets its own column; at dosing visits the dosing form's cell shows the
    number of units to give (``×2``).
    """
    table = Table(
        title=f"{study.short_title or study.id} {study.version}: schedule of activities",
        caption=_caption(study, language),
        show_lines=False,
    )
    table.add_column("assessment", overflow="fold", min_width=24)
    if study.screening_form:
        table.add_column("SCR", justify="center")
    for visit in study.visits:
        window = (
            f"±{visit.window_before}"
            if visit.window_before == visit.window_after
            else (f"-{visit.window_before}/+{visit.window_after}")
        )
        heading = f"{visit.code}\nd{visit.day}" + (
            f"\n{window}" if visit.latest > visit.day or visit.earliest < visit.day else ""
        )
        table.add_column(heading, justify="center")
    for code in _rows(study):
        form = study.form(code)
        cells = [f"{form.label.get(language)} [dim]{form.code}[/dim]"]
        if study.screening_form:
            cells.append("x" if code == study.screening_form else "")
        for visit in study.visits:
            cells.append(_cell(study, code, visit.code))
        table.add_row(*cells)
    return table


def _rows(study: Study) -> list[str]:
    rows = [study.screening_form] if study.screening_form else []
    for visit in study.visits:
        for code in study.schedule.get(visit.code, []):
            if code not in rows:
                rows.append(code)
    return rows


def _cell(study: Study, form: str, visit: str) -> str:
    if form not in study.schedule.get(visit, []):
        return ""
    dosing = study.dosing
    if dosing is not None and form == dosing.form and visit in dosing.units_per_visit:
        return f"×{dosing.units_per_visit[visit]}"
    return "x"


def _caption(study: Study, language: str) -> str | None:
    dosing = study.dosing
    if dosing is None:
        return None
    return (
        f"×N: {dosing.unit.get(language)} units at a dosing visit (reading {dosing.reading}, "
        f"last dosing week {dosing.last_dosing_week}, {dosing.total_units} in all)"
    )


@click.group()
def study() -> None:
    """Study files: check them, show their schedule of activities."""


@study.command()
@click.argument("path")
def check(path: str) -> None:
    """Validate the study file at PATH (a study directory, its study.yaml, or a study id)."""
    click.echo(summary(_load_or_exit(path)))


@study.command()
@click.argument("id_or_path")
@click.option(
    "--lang",
    type=click.Choice(["en", "fr"]),
    default="en",
    show_default=True,
    help="Language of the assessment names.",
)
@click.option("--width", type=int, default=None, help="Table width in characters.")
def show(id_or_path: str, lang: str, width: int | None) -> None:
    """Print the schedule of activities of a study (an id such as ns-dupi, or a path)."""
    definition = _load_or_exit(id_or_path)
    console = Console(width=width, highlight=False)
    if width is None:
        needed = 36 + 7 * (len(definition.visits) + 1)
        console = Console(width=max(console.width, needed), highlight=False)
    console.print(schedule_table(definition, lang))
