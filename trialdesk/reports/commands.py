"""``trialdesk report``: write a report of a study to an HTML or PDF file.

The blinded kinds (enrolment, DSMB open) need no user. The unblinded kinds (DSMB closed, final)
are made for a named user, ``--user USERNAME``, whom the blinding policy must let see the
allocation at every site (an unblinded statistician or a DSMB member); the command runs as an
operator on the server and has no switch that skips this. When the stored unblinded run of the
analysis plan was not made on the current data, the plan is run first for that user (audited,
``--seed`` fixes its seed).
"""

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
@click.option(
    "--user",
    "username",
    help="Unblinded kinds: the user the report is for (unblinded statistician or DSMB).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    help="Unblinded kinds: seed of the analysis run when one is needed (drawn when omitted).",
)
def report(
    *, study_code: str, kind: str, fmt: str, out: Path, username: str | None, seed: int | None
) -> None:
    """Write a report to --out: enrolment and DSMB open (blinded, arms pooled), DSMB closed and
    final (by arm, for --user with an unblinded role)."""
    from django.contrib.auth import get_user_model

    from trialdesk.analysis.datasets import DatasetError
    from trialdesk.analysis.plan import PlanError
    from trialdesk.protocol.models import Study

    from .render import html_to_pdf, report_html
    from .unblinded import ReportAccessError

    if kind in UNBLINDED_KINDS and not username:
        _refuse(
            f"--kind {kind} needs an unblinded role: give --user USERNAME, an unblinded "
            "statistician or a DSMB member of the study"
        )
    study = Study.objects.filter(code=study_code).first()
    if study is None:
        raise click.BadParameter(f"no study {study_code!r} in the database", param_hint="--study")
    user = None
    if kind in UNBLINDED_KINDS:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise click.BadParameter(f"no active user {username!r}", param_hint="--user")
    try:
        html = report_html(study, kind, user=user, seed=seed)
    except ReportAccessError as error:
        _refuse(f"--kind {kind} needs an unblinded role: {error}")
    except (PlanError, DatasetError) as error:
        raise click.ClickException(str(error)) from error
    if fmt == "pdf":
        out.write_bytes(html_to_pdf(html))
    else:
        out.write_text(html, encoding="utf-8")
    click.echo(f"{kind} report of {study_code} written to {out}")


def _refuse(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(2)
