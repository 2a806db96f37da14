"""``trialdesk demo``: build the synthetic NS-DUPI trial in progress (see :mod:`.builder`)."""

from __future__ import annotations

import datetime as dt
import time

import click


@click.command("demo")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=2026,
    show_default=True,
    help="Seed of every random draw: the same seed gives the same trial.",
)
@click.option(
    "--today",
    "today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Reference date the trial is in progress at [default: today].",
)
@click.option(
    "--if-empty", is_flag=True, help="Exit quietly (status 0) when the study already has subjects."
)
def demo(seed: int, today: dt.datetime | None, if_empty: bool) -> None:
    """Build a synthetic NS-DUPI trial (and 3 cohort patients) through the services.

    Refuses when the study already has subjects. Every page then says SYNTHETIC DATA.
    """
    from django.test.utils import override_settings
    from django.utils import timezone

    from .builder import DemoRefused, build, trial_has_subjects

    if if_empty and trial_has_subjects():
        return
    started = time.perf_counter()
    reference = today.date() if today else timezone.localdate()
    # The synthetic SAE and lab alerts notify nobody.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        try:
            summary = build(seed, reference)
        except DemoRefused as error:
            raise click.ClickException(str(error)) from error
    arms = ", ".join(f"{n} {arm}" for arm, n in sorted(summary.arms.items()))
    click.echo(
        f"SYNTHETIC DATA: demo trial built for {reference.isoformat()} (seed {seed}): "
        f"{summary.screened} screened, {summary.randomized} randomized ({arms}), "
        f"{summary.cohort} cohort patients, in {time.perf_counter() - started:.1f} s"
    )
