"""``trialdesk screen``: the eligibility verdict of one person's screening data, as JSON.

The same engine (:mod:`trialdesk.screening.eligibility`) serves the web screening form and the
API; this command needs no database. Exit status: 0 eligible, 1 not eligible or incomplete,
2 invalid input (the message on stderr names the key and the value).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from trialdesk.protocol import ProtocolError, load_study, resolve_study_path

from . import eligibility

EXIT_ELIGIBLE = 0
EXIT_NOT_ELIGIBLE = 1
EXIT_INVALID = 2


class _InvalidJson(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _InvalidJson(f"{key}: the key is given twice")
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> Any:
    raise _InvalidJson(f"{name} is not a JSON number")


def read_input(text: str) -> Any:
    """The JSON document of a screening input (duplicate keys and NaN/Infinity refused)."""
    try:
        return json.loads(
            text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
        )
    except json.JSONDecodeError as error:
        raise _InvalidJson(f"not valid JSON: {error}") from None


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_INVALID)


@click.command("screen")
@click.option("--study", "study_ref", required=True, help="Study id (ns-dupi) or study directory.")
@click.option(
    "--language",
    type=click.Choice(["en", "fr"]),
    default="en",
    show_default=True,
    help="Language of the criterion messages.",
)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
def screen(study_ref: str, language: str, file: str) -> None:
    """Evaluate the eligibility criteria over FILE (JSON object of screening items; - = stdin).

    Prints {"status", "criteria": [{"id", "kind", "result", "message"}…]}; exits 0 when
    eligible, 1 when not eligible or incomplete, 2 when the input is invalid.
    """
    try:
        definition = load_study(resolve_study_path(study_ref))
    except (ProtocolError, OSError) as error:
        _fail(f"--study {study_ref}: {error}")
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        _fail(f"{file}: cannot be read: {error}")
    try:
        values = eligibility.parse_screening_data(definition, read_input(text), strict=True)
    except _InvalidJson as error:
        _fail(f"{file}: {error}")
    except eligibility.InvalidScreeningData as error:
        _fail(str(error))
    evaluation = eligibility.evaluate(definition, values)
    click.echo(json.dumps(evaluation.to_json(language), ensure_ascii=False, indent=2))
    sys.exit(
        EXIT_ELIGIBLE if evaluation.status == eligibility.Status.ELIGIBLE else EXIT_NOT_ELIGIBLE
    )
