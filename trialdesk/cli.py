"""The ``trialdesk`` command.

One click group; each bounded context contributes its sub-commands from its own
``commands.py``, listed explicitly in :data:`COMMANDS` (no autodiscovery).
"""

from __future__ import annotations

import importlib
import os

import click

#: (module, attribute) of every sub-command, in the order ``trialdesk --help`` shows them.
COMMANDS: list[tuple[str, str]] = [
    ("trialdesk.web.commands", "setup"),
    ("trialdesk.web.commands", "serve"),
    ("trialdesk.web.commands", "manage"),
    ("trialdesk.protocol.commands", "study"),
    ("trialdesk.accounts.commands", "user"),
    ("trialdesk.screening.commands", "screen"),
    ("trialdesk.audit.commands", "audit"),
    ("trialdesk.randomization.commands", "randomization"),
    ("trialdesk.analysis.commands", "simulate"),
    ("trialdesk.analysis.commands", "analyze"),
    ("trialdesk.demo.commands", "demo"),
    ("trialdesk.reports.commands", "report"),
]


def _django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialdesk.settings")
    import django

    django.setup()


class _LazyGroup(click.Group):
    """Imports a sub-command only when it is listed or called, so that ``--help`` is quick."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [self._load(module, attr).name for module, attr in COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module, attr in COMMANDS:
            command = self._load(module, attr)
            if command.name == cmd_name:
                return command
        return None

    @staticmethod
    def _load(module: str, attr: str) -> click.Command:
        _django_setup()
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trialdesk")
def main() -> None:
    """trialdesk: run a clinical trial from protocol to report."""


if __name__ == "__main__":  # pragma: no cover
    main()
