"""Unit conversion to the standard unit of each test, at known values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trialdesk.safety import ctcae
from trialdesk.safety.units import STANDARD_UNITS, UnitError, canonical_unit, convert, factor


@pytest.mark.parametrize(
    ("test", "value", "unit", "expected"),
    [
        ("CREAT", "1", "mg/dL", "88.42"),
        ("CREAT", "1.2", "mg/dL", "106.104"),
        ("CREAT", "80", "µmol/L", "80"),
        ("BILI", "1", "mg/dL", "17.1"),
        ("BILI", "0.3", "mg/dL", "5.13"),
        ("HGB", "120", "g/L", "12.0"),
        ("HGB", "13.5", "g/dL", "13.5"),
        ("HGB", "10", "mmol/L", "16.11"),
        ("PLAT", "150000", "/mm3", "150"),
        ("NEUT", "1500", "/µL", "1.5"),
        ("EOS", "0.5", "G/L", "0.5"),
        ("WBC", "4.2", "10^9/L", "4.2"),
        ("ALT", "1", "ukat/L", "60"),
        ("ALT", "42", "IU/L", "42"),
        ("GGT", "42", "U/L", "42"),
        ("SODIUM", "140", "mEq/L", "140"),
    ],
)
def test_known_values_convert_exactly(test, value, unit, expected):
    assert convert(test, Decimal(value), unit).value == Decimal(expected)


def test_limits_convert_with_the_value_so_ratios_are_kept():
    converted = convert("CREAT", 1.2, "mg/dL", lln=0.6, uln=1.1)
    assert converted.unit == "umol/L"
    assert (converted.lln, converted.uln) == (Decimal("53.052"), Decimal("97.262"))
    assert converted.value / converted.uln == Decimal("1.2") / Decimal("1.1")


def test_every_graded_test_has_a_standard_unit_with_factor_one():
    assert set(STANDARD_UNITS) == set(ctcae.TESTS)
    for test, unit in STANDARD_UNITS.items():
        assert factor(test, unit) == 1


def test_grams_and_giga_per_litre_are_told_apart():
    assert canonical_unit("g/L") == "g/L"
    assert canonical_unit("G/L") == "10^9/L"


@pytest.mark.parametrize(
    ("test", "unit", "message"),
    [
        ("HGB", "mg/dL", "HGB: unit='mg/dL' is not a unit of this test"),
        ("ALT", "furlongs", "ALT: unit='furlongs' is not a known unit"),
        ("IGE", "kU/L", "IGE: unit='kU/L' cannot be converted"),
    ],
)
def test_wrong_units_are_refused_naming_test_and_unit(test, unit, message):
    with pytest.raises(UnitError, match=message.replace("(", r"\(")):
        convert(test, 1, unit)
