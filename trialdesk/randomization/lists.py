"""Randomization lists and kit lists, generated from a seed (pure: no Django, no files).

The algorithm, "trialdesk list algorithm v1", is fixed so that a recorded seed regenerates the
same list byte for byte (with the same NumPy version, which the sidecar records). All draws come
from one ``numpy.random.Generator(PCG64(seed))``, in this order:

1. **Randomization list**, for each stratum in the order of :attr:`ListDesign.strata`, block
   after block: draw the block size uniformly among :attr:`ListDesign.block_sizes`
   (``rng.integers(len(block_sizes))``), lay out the block's arms (each arm ``ratio × size /
   sum(ratios)`` times, in design order) and permute them (``rng.permutation``). Stop as soon
   as the stratum holds at least ``per_stratum`` rows. Only whole blocks are kept, so a stratum
   holds between ``per_stratum`` and ``per_stratum + max(block_sizes) − 1`` rows; the list never
   ends inside a block.
2. **Kit list**: ``kits_per_subject`` kits per list row of each arm, plus ``reserve`` kits per
   arm. Kit numbers are drawn without replacement, uniformly from the ``d``-digit numbers
   (``10**(d−1)`` to ``10**d − 1``), ``d`` being the smallest number of digits, at least 4, for
   which the kits fill at most a tenth of that range (``rng.choice(..., replace=False)``). The
   numbers are sorted and the arms, laid out in design order, are assigned to them in a random
   order (``rng.permutation``). Kit numbers therefore carry nothing about the arm: no parity,
   range or order pattern. How many kits a subject needs is the caller's arithmetic (NS-DUPI:
   one syringe per kit, 2 + 7 × 1 syringes over the dosing visits, so 9 kits).

Rows are numbered within their stratum: ``seq`` from 1 and ``block`` from 1. Each arm's share
of a block must be a whole number, so every block size must be a multiple of the sum of the
ratios (3 for NS-DUPI's 2:1).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.random import PCG64, Generator

__all__ = [
    "ALGORITHM",
    "GENERATOR",
    "LIST_COLUMNS",
    "KIT_COLUMNS",
    "ArmRatio",
    "DesignError",
    "Generated",
    "Kit",
    "ListDesign",
    "ListRow",
    "generate",
    "kit_number_range",
    "kits_csv",
    "list_csv",
    "meta_json",
]

ALGORITHM = "trialdesk list algorithm v1"
GENERATOR = "numpy PCG64"
LIST_COLUMNS = ("stratum", "seq", "block", "block_size", "arm")
KIT_COLUMNS = ("kit_number", "arm")

#: Kits fill at most this fraction of the kit-number range, which grows by digits to ensure it.
_KIT_DENSITY = 10
_MIN_KIT_DIGITS = 4


class DesignError(ValueError):
    """The design or a generation parameter is invalid; the message lists every problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class ArmRatio:
    """One arm and its integer weight in the allocation ratio (``DUPI`` 2, ``PBO`` 1)."""

    code: str
    ratio: int


@dataclass(frozen=True)
class ListDesign:
    """What a list is generated from: arms with ratios, block sizes and strata.

    Validates itself when built and reports every problem at once (:class:`DesignError`).
    """

    arms: tuple[ArmRatio, ...]
    block_sizes: tuple[int, ...]
    strata: tuple[str, ...]

    def __post_init__(self) -> None:
        problems = [*self._arm_problems(), *self._block_problems(), *self._stratum_problems()]
        if problems:
            raise DesignError(problems)

    def _arm_problems(self) -> list[str]:
        codes = [arm.code for arm in self.arms]
        problems = [] if len(self.arms) >= 2 else [f"arms={codes!r} needs at least two arms"]
        problems += [
            f"arm code={code!r} is not a non-empty string" for code in codes if not _text(code)
        ]
        problems += [f"arm code={code!r} appears twice" for code in _duplicates(codes)]
        problems += [
            f"arm {arm.code!r} ratio={arm.ratio!r} is not a positive integer"
            for arm in self.arms
            if not _positive_int(arm.ratio)
        ]
        return problems

    def _block_problems(self) -> list[str]:
        if not self.block_sizes:
            return ["block_sizes=() is empty"]
        problems = [f"block size={size!r} appears twice" for size in _duplicates(self.block_sizes)]
        if not all(_positive_int(arm.ratio) for arm in self.arms):
            return problems
        total = sum(arm.ratio for arm in self.arms)
        return problems + [
            f"block size={size!r} is not a positive multiple of the ratio sum {total}"
            for size in self.block_sizes
            if not _positive_int(size) or size % total
        ]

    def _stratum_problems(self) -> list[str]:
        problems = [] if self.strata else ["strata=() is empty"]
        problems += [
            f"stratum={s!r} is not a non-empty string" for s in self.strata if not _text(s)
        ]
        return problems + [f"stratum={s!r} appears twice" for s in _duplicates(self.strata)]

    @classmethod
    def of(
        cls,
        arms: Sequence[tuple[str, int]],
        block_sizes: Sequence[int],
        strata: Sequence[str],
    ) -> ListDesign:
        """Build a design from plain sequences: ``of([("DUPI", 2), ("PBO", 1)], [3, 6], ...)``."""
        return cls(
            arms=tuple(ArmRatio(code, ratio) for code, ratio in arms),
            block_sizes=tuple(block_sizes),
            strata=tuple(strata),
        )

    @property
    def ratio_sum(self) -> int:
        return sum(arm.ratio for arm in self.arms)


class ListRow(NamedTuple):
    """One row of the randomization list: the ``seq``-th allocation slot of a stratum."""

    stratum: str
    seq: int
    block: int
    block_size: int
    arm: str


class Kit(NamedTuple):
    """One treatment kit; its number, printed on the label, is all a blinded user sees."""

    kit_number: int
    arm: str


@dataclass(frozen=True)
class Generated:
    """A randomization list and its kit list, with everything needed to regenerate them."""

    design: ListDesign
    seed: int
    per_stratum: int
    kits_per_subject: int
    reserve: int
    rows: tuple[ListRow, ...]
    kits: tuple[Kit, ...]


def generate(
    design: ListDesign, *, seed: int, per_stratum: int, kits_per_subject: int, reserve: int
) -> Generated:
    """Generate the randomization list and the kit list of ``design`` from ``seed``.

    Parameters
    ----------
    design : ListDesign
        Arms with ratios, block sizes, strata.
    seed : int
        Non-negative seed of ``Generator(PCG64(seed))``.
    per_stratum : int
        Minimum number of rows per stratum (whole blocks are added until it is reached).
    kits_per_subject : int
        Kits one subject receives over all dosing visits (NS-DUPI reading A: 9 one-syringe kits).
    reserve : int
        Extra kits per arm beyond ``kits_per_subject`` times the arm's list rows.

    Returns
    -------
    Generated
        The rows (strata in design order, then ``seq``) and the kits (by kit number).
    """
    _check_parameters(seed, per_stratum, kits_per_subject, reserve)
    rng = Generator(PCG64(seed))
    rows = tuple(
        row for stratum in design.strata for row in _stratum_rows(rng, design, stratum, per_stratum)
    )
    kits = _kits(rng, design, rows, kits_per_subject, reserve)
    return Generated(design, seed, per_stratum, kits_per_subject, reserve, rows, kits)


def _check_parameters(seed: int, per_stratum: int, kits_per_subject: int, reserve: int) -> None:
    limits = (
        ("seed", seed, 0),
        ("per_stratum", per_stratum, 1),
        ("kits_per_subject", kits_per_subject, 1),
        ("reserve", reserve, 0),
    )
    problems = [
        f"{name}={value!r} is not an integer >= {minimum}"
        for name, value, minimum in limits
        if not _int_at_least(value, minimum)
    ]
    if problems:
        raise DesignError(problems)


def _stratum_rows(
    rng: Generator, design: ListDesign, stratum: str, per_stratum: int
) -> list[ListRow]:
    codes = [arm.code for arm in design.arms]
    layouts = [_layout(design, size) for size in design.block_sizes]
    rows: list[ListRow] = []
    block = 0
    while len(rows) < per_stratum:
        block += 1
        choice = int(rng.integers(len(design.block_sizes)))
        size = design.block_sizes[choice]
        for arm_index in rng.permutation(layouts[choice]).tolist():
            rows.append(ListRow(stratum, len(rows) + 1, block, size, codes[arm_index]))
    return rows


def _layout(design: ListDesign, size: int) -> np.ndarray:
    """Arm indices of one block of ``size`` before permutation: each arm in turn, its share."""
    shares = [arm.ratio * size // design.ratio_sum for arm in design.arms]
    return np.repeat(np.arange(len(design.arms)), shares)


def _kits(
    rng: Generator,
    design: ListDesign,
    rows: Sequence[ListRow],
    kits_per_subject: int,
    reserve: int,
) -> tuple[Kit, ...]:
    counts = {arm.code: reserve for arm in design.arms}
    for row in rows:
        counts[row.arm] += kits_per_subject
    total = sum(counts.values())
    low, high = kit_number_range(total)
    numbers = np.sort(rng.choice(high - low + 1, size=total, replace=False) + low)
    layout = np.repeat(np.arange(len(design.arms)), [counts[arm.code] for arm in design.arms])
    arms = rng.permutation(layout)
    codes = [arm.code for arm in design.arms]
    return tuple(
        Kit(number, codes[arm_index])
        for number, arm_index in zip(numbers.tolist(), arms.tolist(), strict=True)
    )


def kit_number_range(n_kits: int) -> tuple[int, int]:
    """The smallest range of d-digit numbers (d >= 4) that ``n_kits`` fill to at most a tenth."""
    digits = _MIN_KIT_DIGITS
    while n_kits * _KIT_DENSITY > 9 * 10 ** (digits - 1):
        digits += 1
    return 10 ** (digits - 1), 10**digits - 1


def list_csv(generated: Generated) -> str:
    """The randomization list as CSV text (header ``stratum,seq,block,block_size,arm``, ``\\n``)."""
    return _csv(
        LIST_COLUMNS,
        [(r.stratum, r.seq, r.block, r.block_size, r.arm) for r in generated.rows],
    )


def kits_csv(generated: Generated) -> str:
    """The kit list as CSV text (header ``kit_number,arm``, by kit number, ``\\n``)."""
    return _csv(KIT_COLUMNS, [(k.kit_number, k.arm) for k in generated.kits])


def meta_json(
    generated: Generated,
    *,
    study: str,
    file_hashes: Mapping[str, str],
    study_file: Mapping[str, object] | None = None,
) -> str:
    """The sidecar: algorithm, generator and its version, every input, and the files' SHA-256.

    Parameters
    ----------
    generated : Generated
        The lists.
    study : str
        The study id (``"ns-dupi"``); importing the lists checks it.
    file_hashes : mapping
        File name to SHA-256 of the files written; recorded as ``files.<name>.sha256``.
    study_file : mapping, optional
        Where the design came from (version and SHA-256 of the study file, dosing), as
        JSON-serialisable values; recorded under ``"study_file"``.

    Nothing in it depends on the time or the machine, so the same inputs give the same bytes.
    """
    design = generated.design
    meta = {
        "algorithm": ALGORITHM,
        "generator": GENERATOR,
        "numpy_version": np.__version__,
        "study": study,
        "study_file": dict(study_file or {}),
        "seed": generated.seed,
        "per_stratum": generated.per_stratum,
        "arms": [{"code": arm.code, "ratio": arm.ratio} for arm in design.arms],
        "block_sizes": list(design.block_sizes),
        "strata": list(design.strata),
        "rows_per_stratum": {
            s: sum(1 for r in generated.rows if r.stratum == s) for s in design.strata
        },
        "kits_per_subject": generated.kits_per_subject,
        "kit_reserve_per_arm": generated.reserve,
        "kits": len(generated.kits),
        "files": {name: {"sha256": digest} for name, digest in sorted(file_hashes.items())},
    }
    return json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _csv(header: Sequence[str], records: Sequence[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(records)
    return buffer.getvalue()


def _positive_int(value: object) -> bool:
    return _int_at_least(value, 1)


def _int_at_least(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _duplicates(values: Sequence[object]) -> list[object]:
    seen: set[object] = set()
    repeated: list[object] = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated
