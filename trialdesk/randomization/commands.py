"""``trialdesk randomization``: generate the randomization list and the kit list of a study.

The design (arms and ratio, block sizes, strata = site codes, units of drug per dosing visit)
comes from the study file; the algorithm is :mod:`trialdesk.randomization.lists`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import click

from trialdesk.protocol.errors import ProtocolError
from trialdesk.randomization.lists import (
    DesignError,
    ListDesign,
    generate,
    kits_csv,
    list_csv,
    meta_json,
)

LIST_FILE = "randomization.csv"
KIT_FILE = "kits.csv"
META_FILE = "randomization.meta.json"
DEFAULT_RESERVE = 10

#: ``--study NAME`` resolves to ``<repo>/studies/NAME``.
STUDIES_DIR = Path(__file__).resolve().parent.parent.parent / "studies"


def design_from_study(study: Any) -> tuple[ListDesign, int]:
    """The list design and the units of drug per subject that a loaded study file declares.

    Parameters
    ----------
    study
        A study loaded by ``trialdesk.protocol.load_study``: ``arms`` (``code``, ``ratio``),
        ``randomization.block_sizes``, ``sites`` (``code``, the strata) and
        ``dosing.units_per_visit`` (visit code to units).

    Returns
    -------
    tuple of (ListDesign, int)
        The design, and the units summed over all dosing visits (NS-DUPI reading A: 2 + 7 × 1).
    """
    design = ListDesign.of(
        arms=[(arm.code, arm.ratio) for arm in study.arms],
        block_sizes=list(study.randomization.block_sizes),
        strata=[site.code for site in study.sites],
    )
    return design, sum(study.dosing.units_per_visit.values())


def study_dir(name_or_path: str) -> Path:
    """``<repo>/studies/NAME`` for a study name; an existing directory is taken as it is."""
    given = Path(name_or_path)
    if given.is_dir():
        return given
    candidate = STUDIES_DIR / name_or_path
    if not candidate.is_dir():
        raise click.BadParameter(
            f"no study {name_or_path!r}: {candidate} is not a directory", param_hint="--study"
        )
    return candidate


def _load_study(path: Path) -> Any:
    from trialdesk.protocol import load_study

    return load_study(path)


@click.group("randomization")
def randomization() -> None:
    """Randomization lists and kit lists (unblinded material: keep the output sealed)."""


@randomization.command("generate")
@click.option("--study", "study_name", required=True, help="Study name or study directory.")
@click.option("--seed", type=click.IntRange(min=0), required=True, help="Seed, recorded.")
@click.option(
    "--per-stratum",
    type=click.IntRange(min=1),
    required=True,
    help="Minimum rows per stratum; whole blocks are added until it is reached.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output directory (created if missing; existing list files are never overwritten).",
)
@click.option(
    "--reserve",
    type=click.IntRange(min=0),
    default=DEFAULT_RESERVE,
    show_default=True,
    help="Extra kits per arm.",
)
def generate_command(study_name: str, seed: int, per_stratum: int, out: Path, reserve: int) -> None:
    """Write randomization.csv, kits.csv and randomization.meta.json; print their SHA-256."""
    directory = study_dir(study_name)
    try:
        design, units = design_from_study(_load_study(directory))
        generated = generate(
            design, seed=seed, per_stratum=per_stratum, units_per_subject=units, reserve=reserve
        )
    except (DesignError, ProtocolError) as error:
        raise click.ClickException(f"study {directory.name}: {error}") from error
    contents = {LIST_FILE: list_csv(generated), KIT_FILE: kits_csv(generated)}
    hashes = {name: _sha256(text) for name, text in contents.items()}
    contents[META_FILE] = meta_json(generated, study=directory.name, file_hashes=hashes)
    _write_new(out, contents)
    for name, text in contents.items():
        click.echo(f"{_sha256(text)}  {out / name}")


def _write_new(out: Path, contents: dict[str, str]) -> None:
    existing = [name for name in contents if (out / name).exists()]
    if existing:
        raise click.ClickException(
            f"--out {out} already holds {', '.join(existing)}; a list is never overwritten"
        )
    out.mkdir(parents=True, exist_ok=True)
    for name, text in contents.items():
        (out / name).write_bytes(text.encode("utf-8"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
