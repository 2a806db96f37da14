"""The eligibility engine over the real NS-DUPI study file: every criterion on both sides of its
boundary, three-valued logic, applicability, messages, and input validation. No database."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.screening.screening_data import (
    CRITERIA,
    SCREENING_DATE,
    WASHOUTS,
    days_before_screening,
    eligible_data,
)
from trialdesk.screening import eligibility
from trialdesk.screening.eligibility import InvalidScreeningData, Result, Status


def _evaluate(definition, data, strict=True):
    values = eligibility.parse_screening_data(definition, data, strict=strict)
    return eligibility.evaluate(definition, values)


def _results(evaluation):
    return {c.id: c.result for c in evaluation.criteria}


def _assert_only(evaluation, criterion_id, result):
    """``criterion_id`` has ``result`` and every other criterion is met."""
    results = _results(evaluation)
    assert results[criterion_id] == result, evaluation.criteria
    others = {cid: r for cid, r in results.items() if cid != criterion_id}
    assert set(others.values()) == {Result.MET}, others


def test_the_reference_person_is_eligible_and_criteria_are_in_study_order(definition):
    evaluation = _evaluate(definition, eligible_data())
    assert evaluation.status == Status.ELIGIBLE
    assert [c.id for c in evaluation.criteria] == CRITERIA
    assert [c.kind for c in evaluation.criteria] == ["inclusion"] * 6 + ["exclusion"] * 13
    assert set(_results(evaluation).values()) == {Result.MET}


# Every criterion on both sides of its boundary: (criterion, changes that meet it, changes that
# fail it). Washouts are tested separately below for every input key.
BOUNDARIES = [
    ("INC01", {"birth_date": "2007-03-15"}, {"birth_date": "2007-03-16"}),
    ("INC02", {"social_insurance": True}, {"social_insurance": False}),
    ("INC03", {"lekti_staining": "reduced"}, {"lekti_staining": "normal"}),
    ("INC03", {"lekti_staining": "absent"}, {"ns_clinical_diagnosis": False}),
    ("INC04", {"nasa_total": 5}, {"nasa_total": 4}),
    ("INC04", {"nasa_total": 12}, {"nasa_total": 0}),
    (
        "INC05",
        {"able_to_complete_questionnaires": True},
        {"able_to_complete_questionnaires": False},
    ),
    ("INC06", {"informed_consent_signed": True}, {"informed_consent_signed": False}),
    ("EXC01", {"dupilumab_hypersensitivity": False}, {"dupilumab_hypersensitivity": True}),
    ("EXC09", {"condition_impairing_evaluation": False}, {"condition_impairing_evaluation": True}),
    ("EXC10", {"immunosuppression_history": False}, {"immunosuppression_history": True}),
    ("EXC11", {"current_infection": False}, {"current_infection": True}),
    ("EXC12", {"pregnant": False}, {"pregnant": True}),
    ("EXC12", {"breastfeeding": False}, {"breastfeeding": True}),
    ("EXC12", {"planning_pregnancy": False}, {"planning_pregnancy": True}),
    ("EXC12", {"adequate_contraception": True}, {"adequate_contraception": False}),
    (
        "EXC12",
        {"childbearing_potential": False, "adequate_contraception": False},
        {"childbearing_potential": True, "adequate_contraception": False},
    ),
    ("EXC13", {"questionnaire_incapacity": False}, {"questionnaire_incapacity": True}),
]


@pytest.mark.parametrize(
    ("criterion", "meets", "fails"),
    BOUNDARIES,
    ids=[f"{b[0]}-{sorted(b[2])[0]}" for b in BOUNDARIES],
)
def test_each_criterion_on_both_sides_of_its_boundary(definition, criterion, meets, fails):
    met = _evaluate(definition, eligible_data(**meets))
    _assert_only(met, criterion, Result.MET)
    assert met.status == Status.ELIGIBLE
    failed = _evaluate(definition, eligible_data(**fails))
    _assert_only(failed, criterion, Result.NOT_MET)
    assert failed.status == Status.NOT_ELIGIBLE


@pytest.mark.parametrize(
    ("criterion", "key", "weeks"), WASHOUTS, ids=[f"{w[0]}-{w[1]}" for w in WASHOUTS]
)
def test_a_washout_of_exactly_7n_days_is_allowed_and_one_day_less_excludes(
    definition, criterion, key, weeks
):
    exactly = _evaluate(definition, eligible_data(**{key: days_before_screening(7 * weeks)}))
    _assert_only(exactly, criterion, Result.MET)
    one_less = _evaluate(definition, eligible_data(**{key: days_before_screening(7 * weeks - 1)}))
    _assert_only(one_less, criterion, Result.NOT_MET)
    same_day = _evaluate(definition, eligible_data(**{key: days_before_screening(0)}))
    _assert_only(same_day, criterion, Result.NOT_MET)


@pytest.mark.parametrize(
    ("criterion", "key", "weeks"), WASHOUTS, ids=[f"{w[0]}-{w[1]}" for w in WASHOUTS]
)
def test_never_never_excludes(definition, criterion, key, weeks):
    _assert_only(_evaluate(definition, eligible_data(**{key: "never"})), criterion, Result.MET)


def test_the_washout_message_gives_the_delay(definition):
    evaluation = _evaluate(definition, eligible_data(last_biologic=days_before_screening(111)))
    exc05 = next(c for c in evaluation.criteria if c.id == "EXC05")
    assert "111 days before the screening date" in exc05.message("en")
    assert "111 jours avant la date de sélection" in exc05.message("fr")


def test_age_is_reached_on_the_18th_birthday(definition):
    birthday = _evaluate(definition, eligible_data(birth_date="2007-03-15"))
    day_before = _evaluate(definition, eligible_data(birth_date="2007-03-16"))
    assert _results(birthday)["INC01"] == Result.MET
    assert _results(day_before)["INC01"] == Result.NOT_MET
    inc01 = next(c for c in day_before.criteria if c.id == "INC01")
    assert "age 17 on the screening date" in inc01.message("en")


def test_someone_born_on_29_february_turns_18_on_1_march(definition):
    born = "2007-02-28"
    leap_born = "2008-02-29"
    feb28 = _evaluate(definition, eligible_data(birth_date=leap_born, screening_date="2026-02-28"))
    mar01 = _evaluate(definition, eligible_data(birth_date=leap_born, screening_date="2026-03-01"))
    assert _results(feb28)["INC01"] == Result.NOT_MET
    assert _results(mar01)["INC01"] == Result.MET
    assert _results(_evaluate(definition, eligible_data(birth_date=born)))["INC01"] == Result.MET


def test_pregnancy_items_do_not_apply_to_a_man(definition):
    man = eligible_data(
        sex="M",
        pregnant=True,
        breastfeeding=True,
        planning_pregnancy=True,
        childbearing_potential=True,
        adequate_contraception=False,
    )
    evaluation = _evaluate(definition, man)
    _assert_only(evaluation, "EXC12", Result.MET)
    assert evaluation.status == Status.ELIGIBLE
    exc12 = next(c for c in evaluation.criteria if c.id == "EXC12")
    assert exc12.applies is False
    assert "does not apply to this subject" in exc12.message("en")
    assert "ne s'applique pas" in exc12.message("fr")


def test_a_man_need_not_answer_the_pregnancy_items(definition):
    man = eligible_data(sex="M")
    for key in (
        "pregnant",
        "breastfeeding",
        "planning_pregnancy",
        "childbearing_potential",
        "adequate_contraception",
    ):
        del man[key]
    assert _evaluate(definition, man).status == Status.ELIGIBLE


def test_a_woman_with_unknown_pregnancy_items_is_incomplete(definition):
    data = eligible_data()
    del data["breastfeeding"]
    evaluation = _evaluate(definition, data)
    _assert_only(evaluation, "EXC12", Result.UNKNOWN)
    assert evaluation.status == Status.INCOMPLETE
    exc12 = next(c for c in evaluation.criteria if c.id == "EXC12")
    assert exc12.missing == ("breastfeeding",)
    assert "missing data: Breastfeeding" in exc12.message("en")
    assert "données manquantes : Allaitement" in exc12.message("fr")


def test_kleene_logic_a_known_true_disjunct_excludes_despite_missing_data(definition):
    data = eligible_data(pregnant=True, breastfeeding=None, planning_pregnancy=None)
    _assert_only(_evaluate(definition, data), "EXC12", Result.NOT_MET)


def test_unknown_sex_applies_only_when_it_would_matter(definition):
    clear = eligible_data(sex=None)
    _assert_only(_evaluate(definition, clear), "EXC12", Result.MET)
    pregnant = eligible_data(sex=None, pregnant=True)
    _assert_only(_evaluate(definition, pregnant), "EXC12", Result.UNKNOWN)


#: Missing pregnancy items of the reference woman: which criteria are then not met.
PREGNANCY_UNKNOWNS = {
    "pregnant": {"EXC12"},
    "breastfeeding": {"EXC12"},
    "planning_pregnancy": {"EXC12"},
    "adequate_contraception": {"EXC12"},
    # with adequate contraception, childbearing potential no longer matters (Kleene logic)
    "childbearing_potential": set(),
    # all pregnancy items are "no": whether the criterion applies no longer matters
    "sex": set(),
}


@pytest.mark.parametrize("key", sorted(eligible_data()))
def test_any_missing_key_makes_its_criteria_unknown_never_met(definition, key):
    data = eligible_data()
    data[key] = None
    evaluation = _evaluate(definition, data)
    results = _results(evaluation)
    if key in PREGNANCY_UNKNOWNS:
        assert {cid for cid, r in results.items() if r != Result.MET} == PREGNANCY_UNKNOWNS[key]
        assert set(results.values()) <= {Result.MET, Result.UNKNOWN}
        return
    unknown = [cid for cid, r in results.items() if r == Result.UNKNOWN]
    assert unknown, f"{key} missing should make a criterion unknown"
    assert Result.NOT_MET not in results.values()
    assert evaluation.status == Status.INCOMPLETE
    assert all(key in c.missing for c in evaluation.criteria if c.result == Result.UNKNOWN)


def test_an_empty_input_is_incomplete_with_every_criterion_unknown_or_not_applicable(definition):
    evaluation = _evaluate(definition, {})
    assert evaluation.status == Status.INCOMPLETE
    assert set(_results(evaluation).values()) == {Result.UNKNOWN}


def test_not_met_wins_over_unknown(definition):
    data = eligible_data(nasa_total=3, social_insurance=None)
    evaluation = _evaluate(definition, data)
    assert _results(evaluation)["INC02"] == Result.UNKNOWN
    assert evaluation.status == Status.NOT_ELIGIBLE


def test_messages_are_in_english_and_french_and_name_the_criterion(definition):
    evaluation = _evaluate(definition, eligible_data(nasa_total=4))
    inc04 = next(c for c in evaluation.criteria if c.id == "INC04")
    assert inc04.message("en").startswith("Not met: Moderate to severe disease")
    assert "= 4" in inc04.message("en")
    assert inc04.message("fr").startswith("Non rempli : Forme modérée à sévère")
    exc01 = next(c for c in evaluation.criteria if c.id == "EXC01")
    assert exc01.message("en") == (
        "Met: not excluded by “Hypersensitivity to dupilumab or its excipients”."
    )


def test_to_json_is_the_command_contract(definition):
    payload = _evaluate(definition, eligible_data()).to_json("fr")
    assert set(payload) == {"status", "criteria"}
    assert payload["status"] == "eligible"
    assert set(payload["criteria"][0]) == {"id", "kind", "result", "message"}
    assert payload["criteria"][0]["message"].startswith("Rempli")


# --- validation --------------------------------------------------------------------------------

INVALID = [
    ({"favourite_colour": "blue"}, "favourite_colour", "unknown key"),
    ({"screening_date": "2025-02-30"}, "screening_date", "is not a date"),
    ({"birth_date": "15/03/1990"}, "birth_date", "is not a date"),
    ({"last_biologic": "2024-13-01"}, "last_biologic", "is not a date"),
    ({"last_biologic": "sometimes"}, "last_biologic", "is not a date"),
    ({"birth_date": "never"}, "birth_date", "cannot be 'never'"),
    ({"birth_date": 19900601}, "birth_date", "is not a date"),
    ({"nasa_total": "7"}, "nasa_total", "is not an integer"),
    ({"nasa_total": 7.5}, "nasa_total", "is not an integer"),
    ({"nasa_total": True}, "nasa_total", "is not an integer"),
    ({"nasa_total": 13}, "nasa_total", "above the maximum 12"),
    ({"nasa_total": -1}, "nasa_total", "below the minimum 0"),
    ({"social_insurance": "yes"}, "social_insurance", "is not true or false"),
    ({"social_insurance": 1}, "social_insurance", "is not true or false"),
    ({"sex": "X"}, "sex", "is not one of the codes"),
    ({"sex": "f"}, "sex", "is not one of the codes"),
    ({"lekti_staining": "weak"}, "lekti_staining", "is not one of the codes"),
    ({"lekti_staining": 1}, "lekti_staining", "is not a code"),
    ({"birth_date": "2025-03-16"}, "birth_date", "after the screening date"),
    ({"last_biologic": "2025-03-16"}, "last_biologic", "after the screening date"),
]


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    INVALID,
    ids=[f"{k}={v!r}" for c, k, w in INVALID for v in [c.get(k)]],
)
def test_invalid_input_is_refused_naming_the_key_and_value(definition, changes, key, words):
    with pytest.raises(InvalidScreeningData) as caught:
        eligibility.parse_screening_data(definition, eligible_data(**changes))
    assert caught.value.key == key
    message = str(caught.value)
    assert message.startswith(f"{key}: ")
    assert repr(changes[key]) in message
    assert words in message


def test_input_that_is_not_an_object_is_refused(definition):
    with pytest.raises(InvalidScreeningData, match=r"\(input\)"):
        eligibility.parse_screening_data(definition, [1, 2])


def test_null_and_absent_are_both_unknown(definition):
    with_null = eligible_data(nasa_total=None)
    absent = eligible_data()
    del absent["nasa_total"]
    assert _results(_evaluate(definition, with_null)) == _results(_evaluate(definition, absent))
    assert _results(_evaluate(definition, absent))["INC04"] == Result.UNKNOWN


def test_web_forms_may_give_text_forms(definition):
    text = {
        key: ("true" if value is True else "false" if value is False else str(value))
        for key, value in eligible_data().items()
    }
    text["adequate_contraception"] = ""
    evaluation = _evaluate(definition, text, strict=False)
    assert _results(evaluation)["EXC12"] == Result.UNKNOWN


def test_typed_values_round_trip_through_json(definition):
    values = eligibility.parse_screening_data(definition, eligible_data())
    assert values["screening_date"] == SCREENING_DATE
    assert values["birth_date"] == dt.date(1990, 6, 1)
    assert eligibility.data_to_json(values) == eligible_data()
