"""``trialdesk audit ...``"""

from __future__ import annotations

import click


@click.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
def verify_command() -> None:
    """Recompute the hash chain; exit 1 and name the first broken event if there is one."""
    from .services import verify

    verdict = verify()
    click.echo(str(verdict))
    if not verdict.intact:
        raise SystemExit(1)
