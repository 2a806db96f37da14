"""The sealed tables: importing a randomization list and kit list, and reading arms back.

Importing seals a list: the SHA-256 of each file is recorded, the rows go to the sealed tables
(:class:`~trialdesk.randomization.models.SealedRow`, :class:`~.models.SealedKit`) and the import
is audited. Once anybody is allocated the list can no longer be replaced; importing the same
files again changes nothing.

Arms leave the sealed tables only through the ``*_for`` functions below, each of which asks
:mod:`trialdesk.accounts.policy` first and raises :class:`BlindingError` when the answer is no.
The services that must *use* an arm without showing it (dispensing a kit of the subject's arm)
do it inside the database with :func:`kits_of_subject_arm`, whose result holds kit numbers only.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet, Subquery
from django.utils import timezone

from trialdesk.accounts import policy
from trialdesk.audit.services import record
from trialdesk.protocol.definitions import study_definition
from trialdesk.protocol.models import Site, Study
from trialdesk.screening.models import Subject

from .errors import BlindingError, ListImportError, SealError
from .lists import KIT_COLUMNS, LIST_COLUMNS
from .models import Allocation, Kit, KitStatus, SealedKit, SealedList, SealedRow

LIST_FILE = "randomization.csv"
KIT_FILE = "kits.csv"
META_FILE = "randomization.meta.json"


@dataclass(frozen=True)
class ListFiles:
    """The raw files of a list directory and their SHA-256 (of the bytes as stored)."""

    list_text: str
    kits_text: str
    meta_text: str | None
    list_sha256: str
    kits_sha256: str
    meta_sha256: str


@dataclass(frozen=True)
class ParsedRow:
    stratum: str
    seq: int
    block: int
    block_size: int
    arm: str


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_list` did: ``created`` is False when the same list was already sealed."""

    sealed_list: SealedList
    created: bool
    replaced: SealedList | None = None


@dataclass(frozen=True)
class ArmView:
    """An arm as shown to a user who may see it."""

    code: str
    name_en: str
    name_fr: str

    def name(self, language: str) -> str:
        return self.name_fr if language.lower().startswith("fr") else self.name_en


# --------------------------------------------------------------------------------------------
# Import


def read_list_files(directory: Path) -> ListFiles:
    """Read ``randomization.csv``, ``kits.csv`` and (if present) the sidecar from ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ListImportError("directory", f"{str(directory)!r} is not a directory")
    raw: dict[str, bytes | None] = {}
    for name in (LIST_FILE, KIT_FILE, META_FILE):
        path = directory / name
        if not path.is_file():
            if name == META_FILE:
                raw[name] = None
                continue
            raise ListImportError(name, f"missing from {str(directory)!r}")
        raw[name] = path.read_bytes()
    texts = {name: _decode(name, data) for name, data in raw.items() if data is not None}
    return ListFiles(
        list_text=texts[LIST_FILE],
        kits_text=texts[KIT_FILE],
        meta_text=texts.get(META_FILE),
        list_sha256=_sha256(raw[LIST_FILE]),
        kits_sha256=_sha256(raw[KIT_FILE]),
        meta_sha256=_sha256(raw[META_FILE]) if raw[META_FILE] is not None else "",
    )


def import_list(study: Study, directory: Path, *, by: Any) -> ImportResult:
    """Import and seal the randomization list and kit list found in ``directory``.

    Parameters
    ----------
    study : Study
        The study the list belongs to; arms and block sizes come from its study file, strata
        are its site codes.
    directory : Path
        Holds ``randomization.csv`` and ``kits.csv`` as written by ``trialdesk randomization
        generate`` and, optionally, ``randomization.meta.json`` (whose recorded hashes must then
        match the files).
    by : User or None
        Who imports (``None``: a system operation). Recorded and audited.

    Returns
    -------
    ImportResult
        ``created`` is False when exactly these files are already the study's sealed list.

    Raises
    ------
    ListImportError
        A file is missing or malformed (the message names file, line, column and value).
    SealError
        Another list is sealed and somebody has been allocated from it or a kit received.
    """
    files = read_list_files(directory)
    arms, block_sizes = _design(study)
    strata = list(study.sites.values_list("code", flat=True))
    rows = parse_list(files.list_text, arms=arms, strata=strata, block_sizes=block_sizes)
    kits = parse_kits(files.kits_text, arms=arms)
    meta = _check_meta(files, study)
    with transaction.atomic():
        current = SealedList.objects.select_for_update().filter(study=study, active=True).first()
        if current is not None:
            if (current.list_sha256, current.kits_sha256) == (files.list_sha256, files.kits_sha256):
                return ImportResult(current, created=False)
            _check_replaceable(study, current, files)
            SealedList.objects.filter(pk=current.pk).update(active=False)
        sealed = SealedList.objects.create(
            study=study,
            list_sha256=files.list_sha256,
            kits_sha256=files.kits_sha256,
            meta_sha256=files.meta_sha256,
            algorithm=str(meta.get("algorithm", "")) if meta else "",
            rows_per_stratum=dict(Counter(row.stratum for row in rows)),
            kit_count=len(kits),
            imported_by=by if getattr(by, "pk", None) else None,
        )
        SealedRow.objects.bulk_create(
            SealedRow(
                sealed_list=sealed,
                stratum=row.stratum,
                seq=row.seq,
                block=row.block,
                block_size=row.block_size,
                arm=row.arm,
            )
            for row in rows
        )
        SealedKit.objects.bulk_create(
            SealedKit(sealed_list=sealed, kit_number=number, arm=arm) for number, arm in kits
        )
        record(
            "randomization.list.import",
            user=by,
            entity=sealed,
            study=study.code,
            changes={
                "list_sha256": [current.list_sha256 if current else None, files.list_sha256],
                "kits_sha256": [current.kits_sha256 if current else None, files.kits_sha256],
                "meta_sha256": files.meta_sha256 or None,
                "rows_per_stratum": sealed.rows_per_stratum,
                "kits": len(kits),
            },
        )
    return ImportResult(sealed, created=True, replaced=current)


def parse_list(
    text: str, *, arms: Sequence[tuple[str, int]], strata: Sequence[str], block_sizes: Sequence[int]
) -> list[ParsedRow]:
    """Parse and check ``randomization.csv``: header, types, strata, arms, seq, whole blocks.

    Every stratum in ``strata`` must have rows, numbered 1, 2, … in file order; every block must
    have ``block_size`` rows laid out in the arms' ratio.
    """
    records = _records(LIST_FILE, text, LIST_COLUMNS)
    arm_codes = {code for code, _ratio in arms}
    rows: list[ParsedRow] = []
    for line, record_ in records:
        stratum = record_["stratum"]
        if stratum not in strata:
            raise ListImportError(
                LIST_FILE, f"line {line}: stratum={stratum!r} is not a site of the study"
            )
        arm = record_["arm"]
        if arm not in arm_codes:
            raise ListImportError(LIST_FILE, f"line {line}: arm={arm!r} is not an arm of the study")
        rows.append(
            ParsedRow(
                stratum=stratum,
                seq=_positive(LIST_FILE, line, "seq", record_["seq"]),
                block=_positive(LIST_FILE, line, "block", record_["block"]),
                block_size=_positive(LIST_FILE, line, "block_size", record_["block_size"]),
                arm=arm,
            )
        )
    _check_sequences(rows, records, strata)
    _check_blocks(rows, arms, block_sizes)
    return rows


def parse_kits(text: str, *, arms: Sequence[tuple[str, int]]) -> list[tuple[int, str]]:
    """Parse and check ``kits.csv``: unique positive kit numbers, known arms."""
    arm_codes = {code for code, _ratio in arms}
    kits: list[tuple[int, str]] = []
    seen: set[int] = set()
    for line, record_ in _records(KIT_FILE, text, KIT_COLUMNS):
        number = _positive(KIT_FILE, line, "kit_number", record_["kit_number"])
        if number in seen:
            raise ListImportError(KIT_FILE, f"line {line}: kit_number={number} appears twice")
        seen.add(number)
        arm = record_["arm"]
        if arm not in arm_codes:
            raise ListImportError(KIT_FILE, f"line {line}: arm={arm!r} is not an arm of the study")
        kits.append((number, arm))
    return kits


def active_list(study: Study) -> SealedList | None:
    """The study's sealed list (no arm in it), or ``None`` before any import."""
    return SealedList.objects.filter(study=study, active=True).first()


def _design(study: Study) -> tuple[list[tuple[str, int]], list[int]]:
    definition = study_definition(study)
    if not definition.arms or definition.randomization is None:
        raise ListImportError("study", f"{study.code!r} declares no arms or no randomization")
    arms = [(arm.code, arm.ratio) for arm in definition.arms]
    return arms, list(definition.randomization.block_sizes)


def _check_replaceable(study: Study, current: SealedList, files: ListFiles) -> None:
    allocated = Allocation.objects.filter(study=study).count()
    received = Kit.objects.filter(sealed_list=current).count()
    if allocated or received:
        raise SealError(
            LIST_FILE,
            f"study {study.code!r} is sealed with list sha256 {current.list_sha256[:12]}… "
            f"({allocated} subject(s) allocated, {received} kit(s) received); a different list "
            f"(sha256 {files.list_sha256[:12]}…) cannot be imported",
        )


def _check_meta(files: ListFiles, study: Study) -> dict[str, Any] | None:
    if files.meta_text is None:
        return None
    try:
        meta = json.loads(files.meta_text)
    except json.JSONDecodeError as error:
        raise ListImportError(
            META_FILE, f"is not JSON ({error.msg}, line {error.lineno})"
        ) from None
    if not isinstance(meta, dict):
        raise ListImportError(META_FILE, "is not a JSON object")
    if meta.get("study") not in (None, study.code):
        raise ListImportError(
            META_FILE, f"study={meta.get('study')!r} is not the study {study.code!r}"
        )
    recorded = meta.get("files", {})
    for name, actual in ((LIST_FILE, files.list_sha256), (KIT_FILE, files.kits_sha256)):
        expected = (recorded.get(name) or {}).get("sha256") if isinstance(recorded, dict) else None
        if expected is not None and expected != actual:
            raise ListImportError(
                name,
                f"sha256 {actual[:12]}… differs from the sidecar's {str(expected)[:12]}…: "
                "the file was changed after it was generated",
            )
    return meta


def _records(name: str, text: str, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != tuple(columns):
        raise ListImportError(name, f"line 1: header={header!r}, expected {','.join(columns)}")
    records = []
    for line, values in enumerate(reader, start=2):
        if not values:
            continue
        if len(values) != len(columns):
            raise ListImportError(
                name, f"line {line}: {len(values)} value(s), expected {len(columns)}"
            )
        records.append((line, dict(zip(columns, (v.strip() for v in values), strict=True))))
    if not records:
        raise ListImportError(name, "holds no rows")
    return records


def _check_sequences(
    rows: Sequence[ParsedRow], records: Sequence[tuple[int, dict[str, str]]], strata: Sequence[str]
) -> None:
    expected: dict[str, int] = defaultdict(lambda: 1)
    for row, (line, _record) in zip(rows, records, strict=True):
        if row.seq != expected[row.stratum]:
            raise ListImportError(
                LIST_FILE,
                f"line {line}: seq={row.seq} in stratum {row.stratum!r}, "
                f"expected {expected[row.stratum]}",
            )
        expected[row.stratum] += 1
    missing = [stratum for stratum in strata if stratum not in expected]
    if missing:
        raise ListImportError(
            LIST_FILE, f"stratum={missing[0]!r} (a site of the study) has no rows"
        )


def _check_blocks(
    rows: Sequence[ParsedRow], arms: Sequence[tuple[str, int]], block_sizes: Sequence[int]
) -> None:
    blocks: dict[tuple[str, int], list[ParsedRow]] = defaultdict(list)
    for row in rows:
        blocks[(row.stratum, row.block)].append(row)
    total = sum(ratio for _code, ratio in arms)
    for (stratum, block), members in blocks.items():
        size = members[0].block_size
        where = f"stratum {stratum!r} block {block}"
        if size not in block_sizes:
            raise ListImportError(
                LIST_FILE,
                f"{where}: block_size={size} is not one of the study's {list(block_sizes)}",
            )
        if len(members) != size or any(m.block_size != size for m in members):
            raise ListImportError(
                LIST_FILE, f"{where}: holds {len(members)} row(s), block_size says {size}"
            )
        counts = Counter(m.arm for m in members)
        expected = {code: ratio * size // total for code, ratio in arms}
        if any(counts.get(code, 0) != n for code, n in expected.items()):
            raise ListImportError(
                LIST_FILE, f"{where}: arms {dict(counts)} are not in the ratio {expected}"
            )


def _positive(name: str, line: int, column: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1 or str(number) != value:
        raise ListImportError(name, f"line {line}: {column}={value!r} is not a positive integer")
    return number


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ListImportError(name, f"is not UTF-8 (byte {error.start})") from None


def _sha256(data: bytes | None) -> str:
    return hashlib.sha256(data or b"").hexdigest()


# --------------------------------------------------------------------------------------------
# Reads that reveal arms: each asks the policy first


def arm_for(user: Any, subject: Subject) -> ArmView:
    """The arm of one subject, for a user the policy allows to see it.

    Raises
    ------
    BlindingError
        The user may not see this subject's allocation, or the subject is not randomized.
    """
    if not policy.may_see_subject_allocation(user, subject):
        raise BlindingError("subject", f"{subject.subject_id}: the allocation is blinded to you")
    code = (
        SealedRow.objects.filter(subject=subject, sealed_list__active=True)
        .values_list("arm", flat=True)
        .first()
    )
    if code is None:
        raise BlindingError("subject", f"{subject.subject_id} is not randomized")
    return _arm_view(subject.study, code)


def allocations_for(user: Any, study: Study, site: Site | None = None) -> list[dict[str, Any]]:
    """The allocated rows of the study (one site with ``site``) with their arms.

    Only sites where :func:`~trialdesk.accounts.policy.may_see_allocation` says yes are
    included; asking for a site the user may not see unblinded raises :class:`BlindingError`.
    """
    sites = _unblinded_sites(user, study, site)
    rows = (
        SealedRow.objects.filter(
            sealed_list__study=study,
            sealed_list__active=True,
            subject__isnull=False,
            stratum__in=[s.code for s in sites],
        )
        .select_related("subject")
        .order_by("stratum", "seq")
    )
    return [
        {
            "subject_id": row.subject.subject_id,
            "stratum": row.stratum,
            "seq": row.seq,
            "arm": row.arm,
            "allocated_at": row.allocated_at,
        }
        for row in rows
    ]


def kit_arms_for(user: Any, site: Site) -> dict[int, str]:
    """Kit number → arm of the kits received at ``site``, for the unblinded roles."""
    _unblinded_sites(user, site.study, site)
    numbers = Kit.objects.filter(site=site).values("number")
    return dict(
        SealedKit.objects.filter(
            sealed_list__study=site.study, sealed_list__active=True, kit_number__in=numbers
        ).values_list("kit_number", "arm")
    )


def stock_by_arm_for(user: Any, site: Site, today: dt.date | None = None) -> dict[str, int]:
    """Usable (available, unexpired) kits of each arm at ``site``, for the unblinded roles."""
    _unblinded_sites(user, site.study, site)
    today = today or timezone.localdate()
    usable = Kit.objects.filter(site=site, status=KitStatus.AVAILABLE, expiry__gte=today).values(
        "number"
    )
    counts = dict(
        SealedKit.objects.filter(
            sealed_list__study=site.study, sealed_list__active=True, kit_number__in=usable
        )
        .values_list("arm")
        .annotate(n=Count("id"))
        .values_list("arm", "n")
    )
    return {arm.code: counts.get(arm.code, 0) for arm in arms_of(site.study)}


def arms_of(study: Study) -> list[ArmView]:
    """The study's arms (names only: no subject's allocation)."""
    definition = study_definition(study)
    return [ArmView(arm.code, arm.name.en, arm.name.fr) for arm in definition.arms]


def _arm_view(study: Study, code: str) -> ArmView:
    for arm in arms_of(study):
        if arm.code == code:
            return arm
    return ArmView(code, code, code)


def _unblinded_sites(user: Any, study: Study, site: Site | None) -> list[Site]:
    candidates = [site] if site is not None else list(policy.visible_sites(user, study))
    allowed = [
        s
        for s in candidates
        if policy.may_see_site(user, s) and policy.may_see_allocation(user, study, s)
    ]
    if site is not None and not allowed:
        raise BlindingError("site", f"{site.code}: allocations are blinded to you")
    return allowed


# --------------------------------------------------------------------------------------------
# In-database use of arms (no arm leaves the database)


def kits_of_subject_arm(subject: Subject) -> QuerySet[SealedKit]:
    """Kit numbers of the sealed kit list whose arm is the subject's (a ``values`` query).

    Meant to be used as a sub-query (``Kit.objects.filter(number__in=...)``): the arm is compared
    inside the database and never loaded.
    """
    arm = SealedRow.objects.filter(subject=subject, sealed_list__active=True).values("arm")[:1]
    return SealedKit.objects.filter(
        sealed_list__study_id=subject.study_id, sealed_list__active=True, arm=Subquery(arm)
    ).values("kit_number")
