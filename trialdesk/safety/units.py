"""Laboratory units: conversion of a reported value to the standard unit of its test.

Laboratories report in the unit they use; trialdesk keeps that value and unit as reported and
stores beside them the value in the *standard unit* of the test, which is the unit the CTCAE
grade (:mod:`trialdesk.safety.ctcae`) and the listings use. The limits of normal are converted
with the same factor, so a ratio to the ULN is the same in both units.

Standard units and factors (``standard = reported × factor``)
-------------------------------------------------------------
==================  ==============  ================================  ============
test                standard unit   reported unit                     factor
==================  ==============  ================================  ============
ALT AST ALP GGT     U/L             U/L (= IU/L)                      1
                                    µkat/L                            60
BILI                µmol/L          µmol/L                            1
                                    mg/dL                             17.1
CREAT               µmol/L          µmol/L                            1
                                    mg/dL                             88.42
HGB                 g/dL            g/dL                              1
                                    g/L                               0.1
                                    mmol/L (haemoglobin monomer)      1.611
WBC NEUT LYMPH      10^9/L          10^9/L (= G/L = 10^3/µL)          1
EOS PLAT                            /mm³ (= /µL)                      0.001
SODIUM              mmol/L          mmol/L (= mEq/L)                  1
==================  ==============  ================================  ============

Arithmetic is decimal (:class:`~decimal.Decimal`), so ``1.2 mg/dL`` of creatinine is exactly
``106.104 µmol/L`` and a value lying on a CTCAE boundary stays on it after conversion.

Unit spellings: the codes of the study file's unit code lists (``U/L``, ``ukat/L``, ``umol/L``,
``mg/dL``, ``g/dL``, ``g/L``, ``mmol/L``, ``10^9/L``, ``/mm3``) and the usual variants listed in
:data:`ALIASES` (``IU/L``, ``µmol/L``, ``G/L``, ``/µL``, ``mEq/L``...), case-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "ALIASES",
    "STANDARD_UNITS",
    "Converted",
    "UnitError",
    "canonical_unit",
    "convert",
    "factor",
]


class UnitError(ValueError):
    """A unit that is unknown, or not a unit of the test it was reported for."""

    def __init__(self, test: str, unit: object, problem: str) -> None:
        super().__init__(f"{test}: unit={unit!r} {problem}")
        self.test = test
        self.unit = unit


_ENZYMES = ("ALT", "AST", "ALP", "GGT")
_COUNTS = ("WBC", "NEUT", "LYMPH", "EOS", "PLAT")

#: The standard unit of every test code graded by :mod:`trialdesk.safety.ctcae`.
STANDARD_UNITS: dict[str, str] = {
    **dict.fromkeys(_ENZYMES, "U/L"),
    "BILI": "umol/L",
    "CREAT": "umol/L",
    "HGB": "g/dL",
    **dict.fromkeys(_COUNTS, "10^9/L"),
    "SODIUM": "mmol/L",
}

_D = Decimal
_ENZYME_FACTORS = {"U/L": _D(1), "ukat/L": _D(60)}
_COUNT_FACTORS = {"10^9/L": _D(1), "/mm3": _D("0.001")}

#: ``standard = reported × factor``, by test and canonical reported unit.
_FACTORS: dict[str, dict[str, Decimal]] = {
    **{test: _ENZYME_FACTORS for test in _ENZYMES},
    "BILI": {"umol/L": _D(1), "mg/dL": _D("17.1")},
    "CREAT": {"umol/L": _D(1), "mg/dL": _D("88.42")},
    "HGB": {"g/dL": _D(1), "g/L": _D("0.1"), "mmol/L": _D("1.611")},
    **{test: _COUNT_FACTORS for test in _COUNTS},
    "SODIUM": {"mmol/L": _D(1)},
}

#: Other spellings of the canonical units, keyed in lower case.
ALIASES: dict[str, str] = {
    "u/l": "U/L",
    "iu/l": "U/L",
    "ui/l": "U/L",
    "ukat/l": "ukat/L",
    "µkat/l": "ukat/L",
    "μkat/l": "ukat/L",
    "umol/l": "umol/L",
    "µmol/l": "umol/L",
    "μmol/l": "umol/L",
    "mg/dl": "mg/dL",
    "g/dl": "g/dL",
    "g/l": "g/L",
    "mmol/l": "mmol/L",
    "meq/l": "mmol/L",
    "10^9/l": "10^9/L",
    "x10^9/l": "10^9/L",
    "×10^9/l": "10^9/L",
    "10⁹/l": "10^9/L",
    "×10⁹/l": "10^9/L",
    "giga/l": "10^9/L",
    "10^3/ul": "10^9/L",
    "10^3/µl": "10^9/L",
    "/mm3": "/mm3",
    "/mm³": "/mm3",
    "/ul": "/mm3",
    "/µl": "/mm3",
    "/μl": "/mm3",
    "cells/mm3": "/mm3",
    "cells/ul": "/mm3",
}


def canonical_unit(unit: str) -> str | None:
    """The canonical spelling of ``unit`` (``"IU/L"`` → ``"U/L"``), or ``None`` if unknown.

    ``G/L`` (French for 10⁹/L) is told from ``g/L`` (grams, haemoglobin) by its capital G.
    """
    text = unit.strip().replace(" ", "")
    if text == "G/L":
        return "10^9/L"
    return ALIASES.get(text.lower())


def factor(test: str, unit: str) -> Decimal:
    """The factor from ``unit`` to the standard unit of ``test`` (``standard = reported × f``).

    Raises
    ------
    UnitError
        The test has no standard unit, or ``unit`` is unknown or not a unit of ``test``.
    """
    if test not in _FACTORS:
        raise UnitError(test, unit, "cannot be converted: unknown test code")
    canonical = canonical_unit(unit) if isinstance(unit, str) else None
    if canonical is None:
        raise UnitError(test, unit, "is not a known unit")
    factors = _FACTORS[test]
    if canonical not in factors:
        raise UnitError(test, unit, f"is not a unit of this test (use one of {sorted(factors)})")
    return factors[canonical]


@dataclass(frozen=True)
class Converted:
    """A value (and optional limits) in the standard unit of its test."""

    test: str
    unit: str
    value: Decimal
    lln: Decimal | None = None
    uln: Decimal | None = None


def convert(
    test: str,
    value: Decimal | int | float | str,
    unit: str,
    *,
    lln: Decimal | int | float | str | None = None,
    uln: Decimal | int | float | str | None = None,
) -> Converted:
    """Convert a reported value, and the limits reported with it, to the standard unit.

    Parameters
    ----------
    test : str
        Test code (``"CREAT"``).
    value, lln, uln : Decimal, int, float or str
        As reported, in ``unit``; floats are read through their shortest ``repr``.
    unit : str
        The reported unit, in any spelling :func:`canonical_unit` knows.

    Raises
    ------
    UnitError
        See :func:`factor`.
    """
    f = factor(test, unit)

    def scaled(number: Decimal | int | float | str | None) -> Decimal | None:
        if number is None:
            return None
        exact = Decimal(repr(number)) if isinstance(number, float) else Decimal(number)
        return exact * f

    converted = scaled(value)
    assert converted is not None
    return Converted(test, STANDARD_UNITS[test], converted, scaled(lln), scaled(uln))
