"""ADAE derivations as pure functions: date imputation, treatment emergence, study day, coding."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from trialdesk.analysis.datasets import (
    NOT_CODED,
    TEAE_WINDOW_DAYS,
    code_term,
    impute_end,
    impute_start,
    study_day,
    treatment_emergent,
)
from trialdesk.lib.partial_dates import PartialDateError

FIRST = dt.date(2025, 3, 14)
LAST = dt.date(2025, 6, 20)


def test_a_complete_start_is_kept_without_a_flag():
    assert impute_start("2025-03-02", first_dose=FIRST) == (dt.date(2025, 3, 2), None)
    assert impute_start("2025-04-30", first_dose=None) == (dt.date(2025, 4, 30), None)


def test_a_start_month_holding_the_first_dose_is_imputed_to_the_first_dose():
    assert impute_start("2025-03", first_dose=FIRST) == (FIRST, "D")
    assert impute_start("2025-03-UN", first_dose=FIRST) == (FIRST, "D")


def test_a_start_month_without_the_first_dose_is_its_first_day():
    assert impute_start("2025-04", first_dose=FIRST) == (dt.date(2025, 4, 1), "D")
    assert impute_start("2025-02", first_dose=FIRST) == (dt.date(2025, 2, 1), "D")
    assert impute_start("2025-03", first_dose=None) == (dt.date(2025, 3, 1), "D")


def test_a_start_year_holding_the_first_dose_is_imputed_to_the_first_dose():
    assert impute_start("2025", first_dose=FIRST) == (FIRST, "M")
    assert impute_start("2025-UN-UN", first_dose=FIRST) == (FIRST, "M")
    assert impute_start("2026", first_dose=FIRST) == (dt.date(2026, 1, 1), "M")


def test_an_event_over_before_the_first_dose_keeps_the_first_possible_day():
    # Started "in March 2025" and ended on 10 March, before the first dose on the 14th.
    assert impute_start("2025-03", first_dose=FIRST, end="2025-03-10") == (
        dt.date(2025, 3, 1),
        "D",
    )
    # Ended "in March": it may have lasted until the first dose, so it may be emergent.
    assert impute_start("2025-03", first_dose=FIRST, end="2025-03") == (FIRST, "D")
    assert impute_start("2025-03", first_dose=FIRST, end="2025-03-14") == (FIRST, "D")


def test_a_missing_start_is_the_first_dose_flagged_y():
    assert impute_start("", first_dose=FIRST) == (FIRST, "Y")
    assert impute_start(None, first_dose=None) == (None, None)


def test_a_malformed_start_names_the_field_and_value():
    with pytest.raises(PartialDateError, match="ae_start_date: '2025-13'"):
        impute_start("2025-13", first_dose=FIRST)
    with pytest.raises(PartialDateError, match="ae_end_date"):
        impute_start("2025-03", first_dose=FIRST, end="March")


def test_a_partial_end_is_its_last_day_or_the_end_of_study_inside_it():
    assert impute_end("2025-04-02", end_of_study=None) == (dt.date(2025, 4, 2), None)
    assert impute_end("2025-02", end_of_study=None) == (dt.date(2025, 2, 28), "D")
    assert impute_end("2024-02", end_of_study=None) == (dt.date(2024, 2, 29), "D")
    assert impute_end("2025", end_of_study=None) == (dt.date(2025, 12, 31), "M")
    eos = dt.date(2025, 2, 10)
    assert impute_end("2025-02", end_of_study=eos) == (eos, "D")
    assert impute_end("2025", end_of_study=eos) == (eos, "M")
    assert impute_end("2025-03", end_of_study=eos) == (dt.date(2025, 3, 31), "D")
    assert impute_end(None, end_of_study=eos) == (None, None)


def test_treatment_emergence_boundaries():
    window_end = LAST + dt.timedelta(days=TEAE_WINDOW_DAYS)
    assert TEAE_WINDOW_DAYS == 98
    assert not treatment_emergent(FIRST - dt.timedelta(days=1), FIRST, LAST)
    assert treatment_emergent(FIRST, FIRST, LAST)
    assert treatment_emergent(LAST, FIRST, LAST)
    assert treatment_emergent(window_end, FIRST, LAST)
    assert not treatment_emergent(window_end + dt.timedelta(days=1), FIRST, LAST)
    assert not treatment_emergent(FIRST, None, None)
    assert not treatment_emergent(None, FIRST, LAST)


def test_the_plan_sets_the_treatment_emergent_window(plan):
    day_30 = LAST + dt.timedelta(days=30)
    assert treatment_emergent(day_30, FIRST, LAST, window_days=30)
    assert not treatment_emergent(day_30 + dt.timedelta(days=1), FIRST, LAST, window_days=30)
    assert plan.treatment_emergent_days == 98
    with pytest.raises(ValidationError, match="treatment_emergent_days"):
        type(plan).model_validate({**plan.model_dump(), "treatment_emergent_days": -1})


def test_study_day_has_no_day_zero():
    assert study_day(FIRST, FIRST) == 1
    assert study_day(FIRST + dt.timedelta(days=9), FIRST) == 10
    assert study_day(FIRST - dt.timedelta(days=1), FIRST) == -1
    assert study_day(FIRST - dt.timedelta(days=3), FIRST) == -3
    assert study_day(None, FIRST) is None and study_day(FIRST, None) is None


@pytest.mark.parametrize(
    ("term", "decod", "soc"),
    [
        ("Conjunctivitis", "Conjunctivitis", "Eye disorders"),
        ("Conjonctivite allergique", "Conjunctivitis", "Eye disorders"),
        ("Kératite", "Keratitis", "Eye disorders"),
        ("Eczema herpeticum", "Eczema herpeticum", "Infections and infestations"),
        ("Poussée d'eczéma", "Eczema", "Skin and subcutaneous tissue disorders"),
        ("Herpes zoster", "Herpes zoster", "Infections and infestations"),
        ("Herpès labial", "Oral herpes", "Infections and infestations"),
        (
            "Injection site reaction",
            "Injection site reaction",
            "General disorders and administration site conditions",
        ),
        ("Skin infection (bacterial)", "Skin infection", "Infections and infestations"),
        ("Nasopharyngitis", "Nasopharyngitis", "Infections and infestations"),
        ("HEADACHE", "Headache", "Nervous system disorders"),
        ("Céphalées", "Headache", "Nervous system disorders"),
    ],
)
def test_terms_are_coded_by_the_first_keyword(term, decod, soc):
    assert code_term(term) == (decod, soc)


def test_an_unknown_term_is_kept_and_not_coded():
    assert code_term("  sprained   ankle ") == ("Sprained ankle", NOT_CODED)
