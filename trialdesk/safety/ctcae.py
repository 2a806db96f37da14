"""CTCAE v5.0 grades of laboratory results, from numbers alone.

:func:`grade` returns the Common Terminology Criteria for Adverse Events (CTCAE) v5.0 grade
(0 = normal or below grade 1, 1–4) of one laboratory value, or ``None`` when the numbers given
are not enough to grade it. It is a pure function: no Django, no unit conversion (the caller
converts to the units below first), no clinical judgement.

Test codes, CTCAE terms and units
---------------------------------
=========  ===============================================  =============================
code       CTCAE v5.0 term                                  unit expected
=========  ===============================================  =============================
ALT        Alanine aminotransferase increased               any (same as ULN, baseline)
AST        Aspartate aminotransferase increased             any (same as ULN, baseline)
BILI       Blood bilirubin increased                        any (same as ULN, baseline)
ALP        Alkaline phosphatase increased                   any (same as ULN, baseline)
GGT        GGT increased                                    any (same as ULN, baseline)
CREAT      Creatinine increased                             any (same as ULN, baseline)
HGB        Anemia                                           g/dL
NEUT       Neutrophil count decreased                       10^9/L
PLAT       Platelet count decreased                         10^9/L
WBC        White blood cell decreased                       10^9/L
LYMPH      Lymphocyte count decreased                       10^9/L
EOS        Eosinophilia                                     10^9/L
SODIUM     Hyponatremia / Hypernatremia                     mmol/L
=========  ===============================================  =============================

Rules
-----
Every boundary is read as the CTCAE text writes it: ``>x`` and ``<x`` are strict, a bound
written without ``>`` or ``<`` is inclusive. "ULN" and "LLN" are the upper and lower limits of
normal of the reporting laboratory; "BL" is the subject's baseline value.

*Liver terms (ALT, AST, BILI, ALP, GGT).* The baseline is *abnormal* when ``baseline > ULN``;
a missing baseline, or one ``<= ULN``, is normal. With a normal baseline the multiples apply to
the ULN, with an abnormal baseline to the baseline:

====  ==================  =========================  =========  ==========  =========
term  G1, normal BL       G1, abnormal BL            G2         G3          G4
====  ==================  =========================  =========  ==========  =========
ALT   >ULN and <=3×ULN    >=1.5×BL and <=3×BL        >3×ref     >5×ref      >20×ref
AST   >ULN and <=3×ULN    >=1.5×BL and <=3×BL        >3×ref     >5×ref      >20×ref
BILI  >ULN and <=1.5×ULN  >1×BL and <=1.5×BL         >1.5×ref   >3×ref      >10×ref
ALP   >ULN and <=2.5×ULN  >=2×BL and <=2.5×BL        >2.5×ref   >5×ref      >20×ref
GGT   >ULN and <=2.5×ULN  >=2×BL and <=2.5×BL        >2.5×ref   >5×ref      >20×ref
====  ==================  =========================  =========  ==========  =========

(``ref`` is the ULN or the abnormal baseline.) The abnormal-baseline grade 1 of ALT, AST, ALP and
GGT is written "1.5 - 3.0 x baseline" (resp. "2.0 - 2.5 x baseline") in CTCAE v5.0, without ``>``,
so its lower bound is inclusive; that of bilirubin is written ">1.0 - 1.5 x baseline" and is
strict. With an abnormal baseline a value below that lower bound is grade 0, even above the ULN.

*Creatinine (CREAT).* The worst of two criteria. ULN-based: G1 >ULN, G2 >1.5×ULN, G3 >3×ULN,
G4 >6×ULN. Baseline-based (only when a baseline is given): G2 >1.5×BL, G3 >3×BL; there is no
baseline-based grade 1 or 4. The baseline criterion applies whatever the baseline, so a value
that has more than doubled from a low baseline is grade 2 even when it is still below the ULN:
that is the literal CTCAE reading, which this module keeps. The ULN is required (without it a
higher ULN-based grade cannot be excluded); a baseline must be > 0.

*Low-direction terms (HGB, NEUT, PLAT, WBC, LYMPH)* need the LLN; without it the result is
``None``. Grade 1 is ``<LLN``; grades 2–4 are the fixed CTCAE thresholds, whatever the LLN:

=====  ======  ======  ======  ================================
code   G2      G3      G4      note
=====  ======  ======  ======  ================================
HGB    <10.0   <8.0    –       G4 is "life-threatening": clinical
NEUT   <1.5    <1.0    <0.5
PLAT   <75     <50     <25
WBC    <3.0    <2.0    <1.0
LYMPH  <0.8    <0.5    <0.2
=====  ======  ======  ======  ================================

So the highest numeric grade of anaemia is 3.

*Eosinophilia (EOS).* Grade 1 is ``>ULN and >BL`` (Netherton patients often start high, so a
value above the ULN but not above the baseline is grade 0). Grade 3 ("steroids initiated") is
clinical and never returned. The ULN is required; a value ``>ULN`` without a baseline is
``None`` (to grade the baseline sample itself, pass it as its own baseline: grade 0).

*Sodium (SODIUM)* grades hyponatremia below the LLN and hypernatremia above the ULN; both limits
are required (without either the result is ``None``). As for the low-direction terms, grade 1
depends on the limits and grades 2–4 are fixed thresholds. Numeric-only reading of CTCAE v5.0:

- hyponatremia: G1 ``<LLN`` and ``>=130``; G2 ``<130`` and ``>=125``; G3 ``<125`` and ``>=120``;
  G4 ``<120``. CTCAE grades 125–129 mmol/L as G2 when asymptomatic and G3 when symptomatic;
  symptoms are clinical, so a value in 125–129 is graded 2 here (the upgrade to 3 is the
  investigator's). The CTCAE integer ranges "125-129" and "120-124" are read as the half-open
  intervals ``[125, 130)`` and ``[120, 125)`` so that non-integer values are graded too.
- hypernatremia: G1 ``>ULN`` and ``<=150``; G2 ``>150``; G3 ``>155``; G4 ``>160``.

Arithmetic and errors
---------------------
Each number is converted to :class:`~decimal.Decimal` through its shortest ``repr`` before any
multiplication, so that a value lying exactly on a boundary is graded as the CTCAE text says
(``0.9`` is exactly ``3 × 0.3``, which binary floating point would miss). ``int``, ``float``,
:class:`~decimal.Decimal` and NumPy scalars are accepted.

An unknown test code raises :class:`UnknownTestError`; a value, LLN, ULN or baseline that is not
a finite number, or is negative, or an LLN above the ULN, raises :class:`InvalidLabValueError`.
Both are :class:`GradingError`, a :class:`ValueError`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "TESTS",
    "GradingError",
    "InvalidLabValueError",
    "UnknownTestError",
    "grade",
]

Number = int | float | Decimal


class GradingError(ValueError):
    """A laboratory value could not be graded because the input is wrong."""


class UnknownTestError(GradingError):
    """The test code is not one of :data:`TESTS`."""

    def __init__(self, test: object) -> None:
        self.test = test
        super().__init__(f"unknown CTCAE test code {test!r}; known codes: {', '.join(TESTS)}")


class InvalidLabValueError(GradingError):
    """A value, LLN, ULN or baseline is not a finite non-negative number, or LLN > ULN."""

    def __init__(self, test: str, field: str, value: object, reason: str) -> None:
        self.test = test
        self.field = field
        self.value = value
        super().__init__(f"{test}: {field}={value!r} {reason}")


@dataclass(frozen=True)
class _Lab:
    """One result and its limits, already checked and converted to Decimal."""

    value: Decimal
    lln: Decimal | None
    uln: Decimal | None
    baseline: Decimal | None


@dataclass(frozen=True)
class _Increase:
    """A liver term: multiples of the ULN, or of an abnormal baseline."""

    g2: Decimal
    g3: Decimal
    g4: Decimal
    abnormal_g1: Decimal
    abnormal_g1_inclusive: bool


@dataclass(frozen=True)
class _Decrease:
    """A low-direction term: grade 1 below the LLN, then fixed thresholds (``None``: clinical)."""

    g2: Decimal
    g3: Decimal
    g4: Decimal | None


_D = Decimal

_INCREASES: dict[str, _Increase] = {
    "ALT": _Increase(_D(3), _D(5), _D(20), abnormal_g1=_D("1.5"), abnormal_g1_inclusive=True),
    "AST": _Increase(_D(3), _D(5), _D(20), abnormal_g1=_D("1.5"), abnormal_g1_inclusive=True),
    "BILI": _Increase(_D("1.5"), _D(3), _D(10), abnormal_g1=_D(1), abnormal_g1_inclusive=False),
    "ALP": _Increase(_D("2.5"), _D(5), _D(20), abnormal_g1=_D(2), abnormal_g1_inclusive=True),
    "GGT": _Increase(_D("2.5"), _D(5), _D(20), abnormal_g1=_D(2), abnormal_g1_inclusive=True),
}

_DECREASES: dict[str, _Decrease] = {
    "HGB": _Decrease(_D(10), _D(8), None),
    "NEUT": _Decrease(_D("1.5"), _D(1), _D("0.5")),
    "PLAT": _Decrease(_D(75), _D(50), _D(25)),
    "WBC": _Decrease(_D(3), _D(2), _D(1)),
    "LYMPH": _Decrease(_D("0.8"), _D("0.5"), _D("0.2")),
}


def grade(
    test: str,
    value: Number,
    *,
    lln: Number | None = None,
    uln: Number | None = None,
    baseline: Number | None = None,
) -> int | None:
    """Grade one laboratory value by CTCAE v5.0 (rules in the module docstring).

    Parameters
    ----------
    test : str
        Test code, one of :data:`TESTS` (``"ALT"``, ``"HGB"``, ...).
    value : int, float or Decimal
        The result, in the unit of the table above; the same unit as ``lln``, ``uln`` and
        ``baseline``.
    lln, uln : int, float or Decimal, optional
        Lower and upper limits of normal of the reporting laboratory.
    baseline : int, float or Decimal, optional
        The subject's baseline value of the same test.

    Returns
    -------
    int or None
        0 to 4, or ``None`` when the limits needed to grade this value are missing.

    Raises
    ------
    UnknownTestError
        ``test`` is not a known code.
    InvalidLabValueError
        A number is not finite or is negative, a creatinine baseline is 0, or ``lln > uln``.
    """
    if not isinstance(test, str) or test not in _GRADERS:
        raise UnknownTestError(test)
    return _GRADERS[test](test, _checked(test, value, lln, uln, baseline))


def _checked(
    test: str, value: Number, lln: Number | None, uln: Number | None, baseline: Number | None
) -> _Lab:
    lab = _Lab(
        value=_decimal(test, "value", value),
        lln=None if lln is None else _decimal(test, "lln", lln),
        uln=None if uln is None else _decimal(test, "uln", uln),
        baseline=None if baseline is None else _decimal(test, "baseline", baseline),
    )
    if lab.lln is not None and lab.uln is not None and lab.lln > lab.uln:
        raise InvalidLabValueError(test, "lln", lln, f"is above uln={uln!r}")
    return lab


def _decimal(test: str, field: str, number: object) -> Decimal:
    """Convert one input to an exact Decimal (through the shortest repr of a float)."""
    if isinstance(number, bool) or not isinstance(number, numbers.Number | Decimal):
        raise InvalidLabValueError(test, field, number, "is not a number")
    if isinstance(number, Decimal):
        converted = number
    elif isinstance(number, numbers.Integral):
        converted = Decimal(int(number))
    elif isinstance(number, numbers.Real):
        converted = Decimal(repr(float(number)))
    else:
        raise InvalidLabValueError(test, field, number, "is not a real number")
    if not converted.is_finite():
        raise InvalidLabValueError(test, field, number, "is not a finite number")
    if converted < 0:
        raise InvalidLabValueError(test, field, number, "is negative")
    return converted


def _grade_increase(test: str, lab: _Lab) -> int | None:
    if lab.uln is None:
        return None
    rule = _INCREASES[test]
    abnormal = lab.baseline is not None and lab.baseline > lab.uln
    ref = lab.baseline if lab.baseline is not None and abnormal else lab.uln
    v = lab.value
    if v > rule.g4 * ref:
        return 4
    if v > rule.g3 * ref:
        return 3
    if v > rule.g2 * ref:
        return 2
    if not abnormal:
        return 1 if v > lab.uln else 0
    floor = rule.abnormal_g1 * ref
    reached = v >= floor if rule.abnormal_g1_inclusive else v > floor
    return 1 if reached else 0


def _grade_decrease(test: str, lab: _Lab) -> int | None:
    if lab.lln is None:
        return None
    rule = _DECREASES[test]
    v = lab.value
    if rule.g4 is not None and v < rule.g4:
        return 4
    if v < rule.g3:
        return 3
    if v < rule.g2:
        return 2
    return 1 if v < lab.lln else 0


def _grade_creatinine(test: str, lab: _Lab) -> int | None:
    if lab.uln is None:
        return None
    if lab.baseline is not None and lab.baseline == 0:
        raise InvalidLabValueError(test, "baseline", lab.baseline, "must be above 0")
    v, uln = lab.value, lab.uln
    by_uln = 4 if v > 6 * uln else 3 if v > 3 * uln else 2 if v > _D("1.5") * uln else int(v > uln)
    by_baseline = 0
    if lab.baseline is not None:
        bl = lab.baseline
        by_baseline = 3 if v > 3 * bl else 2 if v > _D("1.5") * bl else 0
    return max(by_uln, by_baseline)


def _grade_eosinophilia(test: str, lab: _Lab) -> int | None:
    if lab.uln is None:
        return None
    if lab.value <= lab.uln:
        return 0
    if lab.baseline is None:
        return None
    return 1 if lab.value > lab.baseline else 0


def _grade_sodium(test: str, lab: _Lab) -> int | None:
    if lab.lln is None or lab.uln is None:
        return None
    v = lab.value
    if v < 130:
        return 4 if v < 120 else 3 if v < 125 else 2
    if v > 150:
        return 4 if v > 160 else 3 if v > 155 else 2
    return 1 if v < lab.lln or v > lab.uln else 0


_Grader = Callable[[str, _Lab], int | None]

_GRADERS: dict[str, _Grader] = {
    **dict.fromkeys(_INCREASES, _grade_increase),
    "CREAT": _grade_creatinine,
    **dict.fromkeys(_DECREASES, _grade_decrease),
    "EOS": _grade_eosinophilia,
    "SODIUM": _grade_sodium,
}

#: The test codes :func:`grade` knows, in the order of the module docstring.
TESTS: tuple[str, ...] = (
    "ALT",
    "AST",
    "BILI",
    "ALP",
    "GGT",
    "CREAT",
    "HGB",
    "NEUT",
    "PLAT",
    "WBC",
    "LYMPH",
    "EOS",
    "SODIUM",
)
