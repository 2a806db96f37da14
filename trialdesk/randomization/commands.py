"""``trialdesk randomization``: generate the randomization list and the kit list of a study.

The design (arms and ratio, block sizes, strata = site codes, units of drug per dosing visit and
per kit, kit reserve) comes from the study file; the algorithm is
:mod:`trialdesk.randomization.lists`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from trialdesk.protocol import ProtocolError, load_study, resolve_study_path
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


@dataclass(frozen=True)
class ListInputs:
    """What a study file says about its lists.

    Attributes
    ----------
    design : ListDesign
        Arms with ratios, block sizes, strata (the site codes).
    kits_per_subject : int
        Kits one subject uses over all dosing visits: the sum over dosing visits of
        ``ceil(units at the visit / units per kit)`` (NS-DUPI reading A: 2 + 7 × 1 = 9).
    reserve_per_arm : int
        Default reserve: ``kit_reserve_per_site`` × number of sites, kits of each arm.
    study : str
        The study id.
    provenance : dict
        Version and SHA-256 of the study file, and the dosing figures, for the sidecar.
    """

    design: ListDesign
    kits_per_subject: int
    reserve_per_arm: int
    study: str
    provenance: dict[str, object]


def list_inputs(study: Any) -> ListInputs:
    """Read the list design of a study loaded by :func:`trialdesk.protocol.load_study`.

    Raises
    ------
    DesignError
        The study declares no randomization or no dosing, or a randomization this algorithm
        does not implement (block sizes not drawn at random, strata other than the site).
    """
    randomization, dosing = study.randomization, study.dosing
    problems = []
    if randomization is None:
        problems.append(f"randomization: study {study.id!r} declares none")
    elif randomization.block_choice != "random":
        problems.append(
            f"randomization.block_choice={randomization.block_choice!r}: "
            "list algorithm v1 draws block sizes at random only"
        )
    elif list(randomization.stratify_by) != ["site"]:
        problems.append(
            f"randomization.stratify_by={list(randomization.stratify_by)!r}: "
            "list algorithm v1 stratifies by site only"
        )
    if dosing is None:
        problems.append(f"dosing: study {study.id!r} declares none, so kits cannot be counted")
    if problems:
        raise DesignError(problems)
    units_per_kit = randomization.units_per_kit
    design = ListDesign.of(
        arms=[(arm.code, arm.ratio) for arm in study.arms],
        block_sizes=list(randomization.block_sizes),
        strata=[site.code for site in study.sites],
    )
    return ListInputs(
        design=design,
        kits_per_subject=sum(
            math.ceil(units / units_per_kit) for units in dosing.units_per_visit.values()
        ),
        reserve_per_arm=randomization.kit_reserve_per_site * len(study.sites),
        study=study.id,
        provenance={
            "version": study.version,
            "sha256": study.sha256,
            "units_per_visit": dict(dosing.units_per_visit),
            "units_per_kit": units_per_kit,
            "kit_reserve_per_site": randomization.kit_reserve_per_site,
        },
    )


def _study_path(name_or_path: str) -> Path:
    path = resolve_study_path(name_or_path)
    if not path.exists():
        raise click.BadParameter(f"no study {name_or_path!r} (looked for {path})")
    return path


@click.group("randomization")
def randomization() -> None:
    """Randomization lists and kit lists (unblinded material: keep the output sealed)."""


@randomization.command("generate")
@click.option(
    "--study",
    "study_name",
    required=True,
    help="Study id (a directory under studies/) or study directory.",
)
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
    default=None,
    help="Extra kits per arm [default: the study's kit_reserve_per_site × sites].",
)
def generate_command(
    study_name: str, seed: int, per_stratum: int, out: Path, reserve: int | None
) -> None:
    """Write randomization.csv, kits.csv and randomization.meta.json; print their SHA-256."""
    path = _study_path(study_name)
    try:
        inputs = list_inputs(load_study(path))
        generated = generate(
            inputs.design,
            seed=seed,
            per_stratum=per_stratum,
            kits_per_subject=inputs.kits_per_subject,
            reserve=inputs.reserve_per_arm if reserve is None else reserve,
        )
    except (DesignError, ProtocolError) as error:
        raise click.ClickException(f"study {study_name}: {error}") from error
    contents = {LIST_FILE: list_csv(generated), KIT_FILE: kits_csv(generated)}
    hashes = {name: _sha256(text) for name, text in contents.items()}
    contents[META_FILE] = meta_json(
        generated, study=inputs.study, study_file=inputs.provenance, file_hashes=hashes
    )
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


# --------------------------------------------------------------------------------------------
# Sealing the list into the database, receiving kits


def _loaded_study(code: str) -> Any:
    from trialdesk.protocol.models import Study

    study = Study.objects.filter(code=code).first()
    if study is None:
        raise click.BadParameter(
            f"study {code!r} is not loaded in this database (run `trialdesk setup`)",
            param_hint="--study",
        )
    return study


def _acting_user(username: str | None) -> Any:
    if username is None:
        return None
    from trialdesk.accounts.models import User

    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise click.BadParameter(f"no active user {username!r}", param_hint="--by")
    return user


@randomization.command("import")
@click.option("--study", "study_code", required=True, help="Study id, as loaded by setup.")
@click.option("--by", "username", default=None, help="The trialdesk user importing (audited).")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def import_command(study_code: str, username: str | None, directory: Path) -> None:
    """Import and seal DIRECTORY/randomization.csv and kits.csv (and the sidecar, if any).

    Their SHA-256 are recorded and the import audited. The same files again change nothing; a
    different list is refused once anybody has been allocated.
    """
    from trialdesk.randomization.errors import RandomizationError
    from trialdesk.randomization.sealing import import_list

    study = _loaded_study(study_code)
    try:
        result = import_list(study, directory, by=_acting_user(username))
    except RandomizationError as error:
        raise click.ClickException(str(error)) from error
    sealed = result.sealed_list
    rows = ", ".join(f"{code} {n}" for code, n in sealed.rows_per_stratum.items())
    state = "sealed" if result.created else "already sealed, nothing changed"
    click.echo(f"{study.code}: {state}: rows {rows}; {sealed.kit_count} kits")
    click.echo(f"{sealed.list_sha256}  {LIST_FILE}")
    click.echo(f"{sealed.kits_sha256}  {KIT_FILE}")
    if result.replaced is not None:
        click.echo(f"replaced the unused list {result.replaced.list_sha256}")


@randomization.command("receive")
@click.option("--study", "study_code", required=True, help="Study id, as loaded by setup.")
@click.option("--site", "site_code", required=True, help="Site code, e.g. TLS.")
@click.option(
    "--expiry", type=click.DateTime(formats=["%Y-%m-%d"]), required=True, help="YYYY-MM-DD."
)
@click.option("--lot", default="", help="Lot number printed on the kits.")
@click.option("--kits", "kit_numbers", default=None, help="Kit numbers, comma-separated.")
@click.option(
    "--per-arm",
    type=click.IntRange(min=1),
    default=None,
    help="Instead of --kits: that many not-yet-shipped kits of each arm (central supply).",
)
@click.option("--by", "username", default=None, help="The pharmacist receiving (audited).")
def receive_command(
    *,
    study_code: str,
    site_code: str,
    expiry: Any,
    lot: str,
    kit_numbers: str | None,
    per_arm: int | None,
    username: str | None,
) -> None:
    """Record kits of the sealed kit list as received at a site's pharmacy."""
    from trialdesk.randomization.errors import RandomizationError
    from trialdesk.randomization.supply import kits_for_shipment, receive_kits

    study = _loaded_study(study_code)
    site = study.sites.filter(code=site_code).first()
    if site is None:
        raise click.BadParameter(
            f"{site_code!r} is not a site of {study.code}", param_hint="--site"
        )
    if (kit_numbers is None) == (per_arm is None):
        raise click.UsageError("give either --kits or --per-arm")
    try:
        numbers = (
            kits_for_shipment(study, per_arm)
            if per_arm is not None
            else [_kit_number(text) for text in kit_numbers.split(",") if text.strip()]
        )
        kits = receive_kits(site, numbers, expiry=expiry.date(), lot=lot, by=_acting_user(username))
    except RandomizationError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{site.code}: {len(kits)} kits received, expiry {expiry.date().isoformat()}")
    click.echo(" ".join(str(kit.number) for kit in kits))


def _kit_number(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text.strip()!r} is not a kit number", param_hint="--kits"
        ) from None
