"""Boundary tables for CTCAE v5.0 lab grading (``trialdesk.safety.ctcae``).

Every row is written out by hand from the CTCAE v5.0 text and the NS-DUPI rules, not derived
from the code under test: just below, at and just above every boundary of every term.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from trialdesk.safety.ctcae import (
    TESTS,
    GradingError,
    InvalidLabValueError,
    UnknownTestError,
    grade,
)


def _rows(test, limits, table):
    return [
        pytest.param(test, value, limits, expected, id=f"{test}-{limits}-{value}")
        for value, expected in table
    ]


# ALT / AST, ULN 40, normal (or absent) baseline: G1 >40-120, G2 >120-200, G3 >200-800, G4 >800.
_ALT_NORMAL = [
    (0, 0), (39.99, 0), (40, 0), (40.01, 1),
    (119.99, 1), (120, 1), (120.01, 2),
    (199.99, 2), (200, 2), (200.01, 3),
    (799.99, 3), (800, 3), (800.01, 4),
]  # fmt: skip
# Abnormal baseline 50 (> ULN 40): G1 75-150 (75 inclusive), G2 >150-250, G3 >250-1000, G4 >1000.
_ALT_ABNORMAL = [
    (40.01, 0), (60, 0), (74.99, 0), (75, 1), (75.01, 1),
    (149.99, 1), (150, 1), (150.01, 2),
    (249.99, 2), (250, 2), (250.01, 3),
    (999.99, 3), (1000, 3), (1000.01, 4),
]  # fmt: skip

# Bilirubin, ULN 20: G1 >20-30, G2 >30-60, G3 >60-200, G4 >200.
_BILI_NORMAL = [
    (19.99, 0), (20, 0), (20.01, 1),
    (29.99, 1), (30, 1), (30.01, 2),
    (59.99, 2), (60, 2), (60.01, 3),
    (199.99, 3), (200, 3), (200.01, 4),
]  # fmt: skip
# Abnormal baseline 30: G1 >30-45 (30 itself excluded), G2 >45-90, G3 >90-300, G4 >300.
_BILI_ABNORMAL = [
    (25, 0), (29.99, 0), (30, 0), (30.01, 1),
    (44.99, 1), (45, 1), (45.01, 2),
    (89.99, 2), (90, 2), (90.01, 3),
    (299.99, 3), (300, 3), (300.01, 4),
]  # fmt: skip

# ALP, ULN 120: G1 >120-300, G2 >300-600, G3 >600-2400, G4 >2400.
_ALP_NORMAL = [
    (119.99, 0), (120, 0), (120.01, 1),
    (299.99, 1), (300, 1), (300.01, 2),
    (599.99, 2), (600, 2), (600.01, 3),
    (2399.99, 3), (2400, 3), (2400.01, 4),
]  # fmt: skip
# Abnormal baseline 150: G1 300-375 (300 inclusive), G2 >375-750, G3 >750-3000, G4 >3000.
_ALP_ABNORMAL = [
    (200, 0), (299.99, 0), (300, 1), (300.01, 1),
    (374.99, 1), (375, 1), (375.01, 2),
    (749.99, 2), (750, 2), (750.01, 3),
    (2999.99, 3), (3000, 3), (3000.01, 4),
]  # fmt: skip
# GGT, ULN 60: G1 >60-150, G2 >150-300, G3 >300-1200, G4 >1200.
_GGT_NORMAL = [
    (59.99, 0), (60, 0), (60.01, 1),
    (149.99, 1), (150, 1), (150.01, 2),
    (299.99, 2), (300, 2), (300.01, 3),
    (1199.99, 3), (1200, 3), (1200.01, 4),
]  # fmt: skip
# Abnormal baseline 80: G1 160-200 (160 inclusive), G2 >200-400, G3 >400-1600, G4 >1600.
_GGT_ABNORMAL = [
    (100, 0), (159.99, 0), (160, 1), (160.01, 1),
    (199.99, 1), (200, 1), (200.01, 2),
    (399.99, 2), (400, 2), (400.01, 3),
    (1599.99, 3), (1600, 3), (1600.01, 4),
]  # fmt: skip

# Creatinine, ULN 1.2 and no baseline: G1 >1.2-1.8, G2 >1.8-3.6, G3 >3.6-7.2, G4 >7.2.
_CREAT_ULN = [
    (1.19, 0), (1.2, 0), (1.21, 1),
    (1.79, 1), (1.8, 1), (1.81, 2),
    (3.59, 2), (3.6, 2), (3.61, 3),
    (7.19, 3), (7.2, 3), (7.21, 4),
]  # fmt: skip
# ULN 1.2, baseline 0.6: baseline-based G2 >0.9, G3 >1.8; worst of the two criteria.
_CREAT_LOW_BASELINE = [
    (0.6, 0), (0.89, 0), (0.9, 0), (0.91, 2),
    (1.21, 2), (1.79, 2), (1.8, 2), (1.81, 3),
    (3.61, 3), (7.2, 3), (7.21, 4),
]  # fmt: skip
# ULN 1.2, baseline 1.0: baseline-based G2 >1.5, G3 >3.0.
_CREAT_HIGH_BASELINE = [
    (1.2, 0), (1.21, 1), (1.49, 1), (1.5, 1), (1.51, 2),
    (2.99, 2), (3.0, 2), (3.01, 3), (3.6, 3), (3.61, 3), (7.21, 4),
]  # fmt: skip

# Haemoglobin g/dL, LLN 12: G1 <12-10, G2 <10-8, G3 <8; G4 clinical.
_HGB = [
    (12.01, 0), (12, 0), (11.99, 1),
    (10.01, 1), (10, 1), (9.99, 2),
    (8.01, 2), (8, 2), (7.99, 3), (0.5, 3), (0, 3),
]  # fmt: skip
# Neutrophils, LLN 1.8: G1 <1.8-1.5, G2 <1.5-1.0, G3 <1.0-0.5, G4 <0.5.
_NEUT = [
    (1.81, 0), (1.8, 0), (1.79, 1),
    (1.51, 1), (1.5, 1), (1.49, 2),
    (1.01, 2), (1.0, 2), (0.99, 3),
    (0.51, 3), (0.5, 3), (0.49, 4), (0, 4),
]  # fmt: skip
# Platelets, LLN 150: G1 <150-75, G2 <75-50, G3 <50-25, G4 <25.
_PLAT = [
    (150.1, 0), (150, 0), (149.9, 1),
    (75.1, 1), (75, 1), (74.9, 2),
    (50.1, 2), (50, 2), (49.9, 3),
    (25.1, 3), (25, 3), (24.9, 4),
]  # fmt: skip
# WBC, LLN 4.0: G1 <4.0-3.0, G2 <3.0-2.0, G3 <2.0-1.0, G4 <1.0.
_WBC = [
    (4.01, 0), (4.0, 0), (3.99, 1),
    (3.01, 1), (3.0, 1), (2.99, 2),
    (2.01, 2), (2.0, 2), (1.99, 3),
    (1.01, 3), (1.0, 3), (0.99, 4),
]  # fmt: skip
# Lymphocytes, LLN 1.0: G1 <1.0-0.8, G2 <0.8-0.5, G3 <0.5-0.2, G4 <0.2.
_LYMPH = [
    (1.01, 0), (1.0, 0), (0.99, 1),
    (0.81, 1), (0.8, 1), (0.79, 2),
    (0.51, 2), (0.5, 2), (0.49, 3),
    (0.21, 3), (0.2, 3), (0.19, 4),
]  # fmt: skip

# Eosinophils, ULN 0.5: G1 = >ULN and >baseline; never more than 1 from numbers.
_EOS_LOW_BASELINE = [(0.49, 0), (0.5, 0), (0.51, 1), (50, 1)]
_EOS_HIGH_BASELINE = [(0.51, 0), (0.99, 0), (1.0, 0), (1.01, 1), (30, 1)]

# Sodium mmol/L, LLN 135, ULN 145.
_SODIUM = [
    (140, 0),
    (135.1, 0), (135, 0), (134.9, 1),
    (130.1, 1), (130, 1), (129.9, 2),
    (125.1, 2), (125, 2), (124.9, 3),
    (120.1, 3), (120, 3), (119.9, 4), (100, 4),
    (144.9, 0), (145, 0), (145.1, 1),
    (149.9, 1), (150, 1), (150.1, 2),
    (154.9, 2), (155, 2), (155.1, 3),
    (159.9, 3), (160, 3), (160.1, 4), (180, 4),
]  # fmt: skip

BOUNDARIES = [
    *_rows("ALT", {"uln": 40}, _ALT_NORMAL),
    *_rows("AST", {"uln": 40}, _ALT_NORMAL),
    *_rows("ALT", {"uln": 40, "baseline": 30}, _ALT_NORMAL),
    *_rows("AST", {"uln": 40, "baseline": 40}, _ALT_NORMAL),
    *_rows("ALT", {"uln": 40, "baseline": 50}, _ALT_ABNORMAL),
    *_rows("AST", {"uln": 40, "baseline": 50}, _ALT_ABNORMAL),
    *_rows("BILI", {"uln": 20}, _BILI_NORMAL),
    *_rows("BILI", {"uln": 20, "baseline": 20}, _BILI_NORMAL),
    *_rows("BILI", {"uln": 20, "baseline": 30}, _BILI_ABNORMAL),
    *_rows("ALP", {"uln": 120}, _ALP_NORMAL),
    *_rows("ALP", {"uln": 120, "baseline": 100}, _ALP_NORMAL),
    *_rows("ALP", {"uln": 120, "baseline": 150}, _ALP_ABNORMAL),
    *_rows("GGT", {"uln": 60}, _GGT_NORMAL),
    *_rows("GGT", {"uln": 60, "baseline": 80}, _GGT_ABNORMAL),
    *_rows("CREAT", {"uln": 1.2}, _CREAT_ULN),
    *_rows("CREAT", {"uln": 1.2, "baseline": 0.6}, _CREAT_LOW_BASELINE),
    *_rows("CREAT", {"uln": 1.2, "baseline": 1.0}, _CREAT_HIGH_BASELINE),
    *_rows("HGB", {"lln": 12}, _HGB),
    *_rows("HGB", {"lln": 12, "uln": 16}, _HGB),
    *_rows("NEUT", {"lln": 1.8}, _NEUT),
    *_rows("PLAT", {"lln": 150}, _PLAT),
    *_rows("PLAT", {"lln": 150, "uln": 400}, _PLAT),
    *_rows("WBC", {"lln": 4.0}, _WBC),
    *_rows("LYMPH", {"lln": 1.0}, _LYMPH),
    *_rows("EOS", {"uln": 0.5, "baseline": 0.2}, _EOS_LOW_BASELINE),
    *_rows("EOS", {"uln": 0.5, "baseline": 1.0}, _EOS_HIGH_BASELINE),
    *_rows("SODIUM", {"lln": 135, "uln": 145}, _SODIUM),
]


@pytest.mark.parametrize(("test", "value", "limits", "expected"), BOUNDARIES)
def test_it_grades_every_boundary(test, value, limits, expected):
    assert grade(test, value, **limits) == expected


@pytest.mark.parametrize(("test", "value", "limits", "expected"), BOUNDARIES)
def test_decimal_input_grades_like_float_input(test, value, limits, expected):
    as_decimal = {key: Decimal(str(number)) for key, number in limits.items()}
    assert grade(test, Decimal(str(value)), **as_decimal) == expected


def test_every_known_code_has_a_boundary_table():
    assert {row.values[0] for row in BOUNDARIES} == set(TESTS)


def test_a_boundary_is_exact_where_binary_floats_are_not():
    assert 0.9 > 3 * 0.3  # the trap: in binary floats 3 * 0.3 == 0.8999999999999999
    assert grade("ALT", 0.9, uln=0.3) == 1
    assert grade("CREAT", 1.8, uln=1.2) == 1  # 1.5 * 1.2 == 1.7999999999999998 in floats


def test_numpy_scalars_are_accepted():
    assert grade("ALT", np.float64(120.01), uln=np.int64(40)) == 2
    assert grade("PLAT", np.float32(49.5), lln=np.int32(150)) == 3


def test_low_direction_limits_apply_whatever_the_lln():
    # grades 2-4 are fixed thresholds; an unusually low LLN does not hide them
    assert grade("NEUT", 1.45, lln=1.4) == 2
    assert grade("SODIUM", 129, lln=128, uln=145) == 2
    assert grade("SODIUM", 151, lln=135, uln=152) == 2


@pytest.mark.parametrize(
    ("test", "value", "limits"),
    [
        pytest.param(test, 1.0, {"uln": 1.0}, id=f"{test}-no-lln")
        for test in ("HGB", "NEUT", "PLAT", "WBC", "LYMPH")
    ]
    + [
        pytest.param(test, 1000.0, {"lln": 1.0}, id=f"{test}-no-uln")
        for test in ("ALT", "AST", "BILI", "ALP", "GGT")
    ]
    + [
        pytest.param("HGB", 5.0, {}, id="HGB-no-limits-even-far-below"),
        pytest.param("ALT", 500.0, {"baseline": 50}, id="ALT-baseline-without-uln"),
        pytest.param("CREAT", 10.0, {"baseline": 1.0}, id="CREAT-baseline-without-uln"),
        pytest.param("CREAT", 0.5, {}, id="CREAT-no-limits"),
        pytest.param("EOS", 0.3, {"lln": 0.0}, id="EOS-no-uln"),
        pytest.param("EOS", 0.8, {"uln": 0.5}, id="EOS-above-uln-without-baseline"),
        pytest.param("SODIUM", 140, {"uln": 145}, id="SODIUM-no-lln"),
        pytest.param("SODIUM", 110, {"uln": 145}, id="SODIUM-no-lln-far-below"),
        pytest.param("SODIUM", 140, {"lln": 135}, id="SODIUM-no-uln"),
    ],
)
def test_it_returns_none_when_the_limits_needed_are_missing(test, value, limits):
    assert grade(test, value, **limits) is None


def test_eosinophils_within_normal_need_no_baseline():
    assert grade("EOS", 0.5, uln=0.5) == 0


def test_the_baseline_sample_graded_against_itself_is_grade_0():
    assert grade("EOS", 1.2, uln=0.5, baseline=1.2) == 0
    assert grade("ALT", 90, uln=40, baseline=90) == 0


@pytest.mark.parametrize("code", ["FOO", "alt", "", "Hgb", None, 3])
def test_an_unknown_test_code_is_refused_by_name(code):
    with pytest.raises(UnknownTestError) as caught:
        grade(code, 1.0, uln=2.0)
    assert repr(code) in str(caught.value)
    assert "ALT" in str(caught.value)  # lists the known codes
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        (field, bad)
        for field in ("value", "lln", "uln", "baseline")
        for bad in (math.nan, math.inf, -math.inf, Decimal("NaN"), Decimal("Infinity"))
    ],
)
def test_a_non_finite_number_is_refused_naming_field_and_value(field, bad):
    kwargs = {"value": 50.0, "lln": 10.0, "uln": 40.0, "baseline": 30.0} | {field: bad}
    value = kwargs.pop("value")
    with pytest.raises(InvalidLabValueError) as caught:
        grade("ALT", value, **kwargs)
    message = str(caught.value)
    assert message.startswith(f"ALT: {field}=")
    assert repr(bad) in message
    assert isinstance(caught.value, GradingError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("bad", ["12", True, None, 1 + 2j, [1.0]])
def test_a_value_that_is_not_a_real_number_is_refused(bad):
    with pytest.raises(InvalidLabValueError, match=r"^HGB: value="):
        grade("HGB", bad, lln=12)


def test_a_negative_number_is_refused():
    with pytest.raises(InvalidLabValueError, match=r"PLAT: value=-1 is negative"):
        grade("PLAT", -1, lln=150)
    with pytest.raises(InvalidLabValueError, match=r"PLAT: lln=-150 is negative"):
        grade("PLAT", 100, lln=-150)


def test_lln_above_uln_is_refused():
    with pytest.raises(InvalidLabValueError, match=r"SODIUM: lln=146 is above uln=145"):
        grade("SODIUM", 140, lln=146, uln=145)


def test_a_zero_creatinine_baseline_is_refused():
    with pytest.raises(InvalidLabValueError, match=r"CREAT: baseline="):
        grade("CREAT", 1.0, uln=1.2, baseline=0)
