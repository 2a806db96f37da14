"""``trialdesk report``: write a blinded report of a study to an HTML or PDF file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .render import BLINDED_KINDS, UNBLINDED_KINDS


@click.command("report")
@click.option("--study", "study_code", required=True, help="Study code, e.g. ns-dupi.")
@click.option("--kind", type=click.Choice([*BLINDED_KINDS, *UNBLINDED_KINDS]), required=True)
@click.option("--format", "fmt", type=click.Choice(["html", "pdf"]), default="html")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def report(study_code: str, kind: str, fmt: str, out: Path) -> None:
    """Write the enrolment or DSMB open report (blinded, arms pooled) to --out."""
    from trialdesk.protocol.models import Study

    from .render import report_html, report_pdf

    if kind in UNBLINDED_KINDS:
        click.echo(
            f"--kind {kind} needs an unblinded role and is not built yet; "
            f"the blinded kinds are {', '.join(BLINDED_KINDS)}",
            err=True,
        )
        sys.exit(2)
    study = Study.objects.filter(code=study_code).first()
    if study is None:
        raise click.BadParameter(f"no study {study_code!r} in the database", param_hint="--study")
    if fmt == "pdf":
        out.write_bytes(report_pdf(study, kind))
    else:
        out.write_text(report_html(study, kind), encoding="utf-8")
    click.echo(f"{kind} report of {study_code} written to {out}")
