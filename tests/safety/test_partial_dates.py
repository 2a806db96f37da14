"""Partial dates: accepted shapes, canonical form, refusals naming field and value."""

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.safety.partial_dates import PartialDate, PartialDateError, parse_partial_date


@pytest.mark.parametrize(
    ("text", "canonical", "earliest", "latest"),
    [
        ("2025-03-14", "2025-03-14", dt.date(2025, 3, 14), dt.date(2025, 3, 14)),
        ("2025-03", "2025-03", dt.date(2025, 3, 1), dt.date(2025, 3, 31)),
        ("2025-03-UN", "2025-03", dt.date(2025, 3, 1), dt.date(2025, 3, 31)),
        ("2025-02-un", "2025-02", dt.date(2025, 2, 1), dt.date(2025, 2, 28)),
        ("2024-02-UN", "2024-02", dt.date(2024, 2, 1), dt.date(2024, 2, 29)),
        ("2025", "2025", dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
        ("2025-UN-UN", "2025", dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
        ("2025-UN", "2025", dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
    ],
)
def test_valid_partial_dates(text, canonical, earliest, latest):
    parsed = parse_partial_date(text, "ae_start_date")
    assert str(parsed) == canonical
    assert (parsed.earliest(), parsed.latest()) == (earliest, latest)
    assert parse_partial_date(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2025-UN-14", "has a day but no month"),
        ("2025-13", "has a month outside 01–12"),
        ("2025-00-UN", "has a month outside 01–12"),
        ("2025-02-29", "has a day that does not exist in its month"),
        ("2025-04-31", "has a day that does not exist in its month"),
        ("1899-12-31", "has a year outside 1900–2100"),
        ("UNKN-03-01", "is not a date"),
        ("25-03-01", "is not a date"),
        ("2025/03/01", "is not a date"),
        ("", "is not a date"),
        (20250301, "is not a date"),
        (dt.datetime(2025, 3, 1, 10, 0), "is a date and time, not a date"),
    ],
)
def test_invalid_partial_dates_name_field_and_value(value, problem):
    with pytest.raises(PartialDateError) as caught:
        parse_partial_date(value, "ae_start_date")
    assert str(caught.value).startswith(f"ae_start_date: {value!r} {problem}")


def test_a_date_object_is_a_complete_date():
    assert parse_partial_date(dt.date(2025, 3, 14)) == PartialDate(2025, 3, 14)
    assert PartialDate(2025, 3, 14).complete and not PartialDate(2025, 3).complete


def test_overlap_is_may_be_the_same_day():
    march = parse_partial_date("2025-03")
    assert march.overlaps(parse_partial_date("2025-03-14"))
    assert march.overlaps(parse_partial_date("2025"))
    assert not march.overlaps(parse_partial_date("2025-04-01"))
