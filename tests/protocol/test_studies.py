"""The two real studies load and declare what ../shared/docs/ns-dupi.md and the issues say."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel

from trialdesk.protocol import (
    NEVER,
    STUDIES_DIR,
    UNKNOWN,
    ItemValueError,
    Study,
    UnknownCodeError,
    load_study,
    resolve_study_path,
)

#: The input keys of `trialdesk screen` (issue 3), in its order.
SCREEN_KEYS = [
    "screening_date", "birth_date", "sex", "social_insurance", "ns_clinical_diagnosis",
    "lekti_staining", "nasa_total", "able_to_complete_questionnaires", "informed_consent_signed",
    "dupilumab_hypersensitivity", "usual_treatment_changed_on",
    "last_topical_calcineurin_inhibitor", "last_oral_immunosuppressant", "last_oral_retinoid",
    "last_phototherapy", "last_biologic", "last_investigational_drug", "last_systemic_antibiotic",
    "last_skin_infection_systemic_therapy", "condition_impairing_evaluation",
    "immunosuppression_history", "current_infection", "pregnant", "breastfeeding",
    "planning_pregnancy", "childbearing_potential", "adequate_contraception",
    "questionnaire_incapacity",
]  # fmt: skip
LAST_USE_KEYS = [key for key in SCREEN_KEYS if key.startswith("last_")] + [
    "usual_treatment_changed_on"
]


@pytest.fixture(scope="module")
def dupi(studies_dir) -> Study:
    return load_study(studies_dir / "ns-dupi")


@pytest.fixture(scope="module")
def cohort(studies_dir) -> Study:
    return load_study(studies_dir / "ns-cohort" / "study.yaml")


def test_studies_dir_is_the_repository_folder(studies_dir):
    assert STUDIES_DIR == studies_dir.resolve()
    assert resolve_study_path("ns-dupi") == STUDIES_DIR / "ns-dupi"


def test_ns_dupi_identity(dupi):
    assert (dupi.id, dupi.version, dupi.kind, dupi.blinding) == (
        "ns-dupi",
        "1.0",
        "randomized",
        "triple",
    )
    assert dupi.registry_ids == {"NCT": "NCT04244006", "EudraCT": "2019-001220-35"}
    assert dupi.sponsor.protocol_code == "RC31/19/0045"
    assert dupi.target_enrollment == 24
    assert len(dupi.sha256) == 64


def test_ns_dupi_arms_randomization_and_sites(dupi):
    assert [(arm.code, arm.ratio) for arm in dupi.arms] == [("DUPI", 2), ("PBO", 1)]
    assert dupi.randomization.block_sizes == [3, 6]
    assert dupi.randomization.stratify_by == ["site"]
    assert [(s.code, s.city) for s in dupi.sites] == [("TLS", "Toulouse"), ("NCK", "Paris")]
    assert dupi.site("NCK").name.startswith("Dermatology, Necker")


def test_ns_dupi_visits_and_windows(dupi):
    expected = [("D0", 0, 0)] + [(f"W{w}", 7 * w, 3) for w in range(2, 15, 2)]
    expected += [("W16", 112, 7), ("W28", 196, 7)]
    assert [(v.code, v.day, v.window_before) for v in dupi.visits] == expected
    assert all(v.window_before == v.window_after for v in dupi.visits)
    assert dupi.visit("W16").window(dt.date(2024, 1, 1)) == (
        dt.date(2024, 4, 15),
        dt.date(2024, 4, 29),
    )
    assert dupi.reference_visit.code == "D0"


def test_ns_dupi_schedule_of_activities(dupi):
    def visits_of(form: str) -> list[str]:
        return [visit.code for visit in dupi.visits_of(form)]

    every = [v.code for v in dupi.visits]
    assert visits_of("NASA") == ["D0", "W16"]
    for form in ("ITCH_PAIN", "INFECT", "INFECT_LOG", "TCS", "AE", "CM"):
        assert visits_of(form) == every, form
    assert visits_of("DLQI") == ["D0", "W16", "W28"]
    for form in ("BIOPSY", "SWAB", "MARKERS", "TEWL", "IGE", "SIGE"):
        assert visits_of(form) == ["D0", "W16"], form
    assert visits_of("LAB") == ["D0", "W4", "W8", "W12", "W16"]
    assert visits_of("DRUG") == ["D0", "W2", "W4", "W6", "W8", "W10", "W12", "W14"]
    assert [form.code for form in dupi.forms_at("W28")] == [
        "ITCH_PAIN",
        "INFECT",
        "INFECT_LOG",
        "TCS",
        "DLQI",
        "AE",
        "CM",
    ]


def test_ns_dupi_dosing_reading_a(dupi):
    dosing = dupi.dosing
    assert (dosing.reading, dosing.last_dosing_week, dosing.form) == ("A", 14, "DRUG")
    assert dosing.dosing_visits == ["D0", "W2", "W4", "W6", "W8", "W10", "W12", "W14"]
    assert dosing.units_per_visit["D0"] == 2
    assert dosing.total_units == 9


def test_screening_items_are_exactly_the_screen_input_keys(dupi):
    assert dupi.screening_form == "SCREENING"
    assert sorted(item.code for item in dupi.screening.items) == sorted(SCREEN_KEYS)
    for key in LAST_USE_KEYS:
        item = dupi.item("SCREENING", key)
        assert (item.data_type, item.allow_never) == ("date", True), key
    assert dupi.codelist(dupi.item("SCREENING", "lekti_staining").codelist).codes == [
        "absent",
        "reduced",
        "normal",
    ]
    assert dupi.codelist(dupi.item("SCREENING", "sex").codelist).codes == ["F", "M"]
    nasa = dupi.item("SCREENING", "nasa_total")
    assert (nasa.data_type, nasa.min, nasa.max) == ("integer", 0, 12)


def test_eligibility_ids_and_kinds(dupi):
    assert [(c.id, c.kind) for c in dupi.eligibility] == [
        (f"INC0{i}", "inclusion") for i in range(1, 7)
    ] + [(f"EXC{i:02d}", "exclusion") for i in range(1, 14)]
    assert dupi.criterion("EXC12").applies_when.text == 'sex == "F"'
    assert all(c.applies_when is None for c in dupi.eligibility if c.id != "EXC12")
    names = {name for c in dupi.eligibility for name in c.condition.names}
    assert names == set(SCREEN_KEYS) - {"sex"}


def eligible_adult() -> dict[str, object]:
    values: dict[str, object] = dict.fromkeys(SCREEN_KEYS, False)
    values.update(
        screening_date=dt.date(2024, 6, 1), birth_date=dt.date(1990, 1, 1), sex="F",
        social_insurance=True, ns_clinical_diagnosis=True, lekti_staining="absent",
        nasa_total=7, able_to_complete_questionnaires=True, informed_consent_signed=True,
        childbearing_potential=True, adequate_contraception=True,
    )  # fmt: skip
    values.update(dict.fromkeys(LAST_USE_KEYS, NEVER))
    return values


def verdicts(study: Study, values: dict[str, object]) -> dict[str, object]:
    """Each criterion's value: an inclusion's condition, an exclusion's excluding situation."""
    result = {}
    for criterion in study.eligibility:
        applies = (
            True if criterion.applies_when is None else criterion.applies_when.evaluate(values)
        )
        result[criterion.id] = "n/a" if applies is False else criterion.condition.evaluate(values)
    return result


def test_an_eligible_adult_meets_every_inclusion_and_no_exclusion(dupi):
    result = verdicts(dupi, eligible_adult())
    assert all(result[f"INC0{i}"] is True for i in range(1, 7))
    assert all(result[f"EXC{i:02d}"] is False for i in range(1, 14))


@pytest.mark.parametrize(
    ("key", "weeks", "criterion"),
    [
        ("usual_treatment_changed_on", 2, "EXC02"),
        ("last_topical_calcineurin_inhibitor", 1, "EXC03"),
        ("last_oral_immunosuppressant", 4, "EXC04"),
        ("last_oral_retinoid", 4, "EXC04"),
        ("last_phototherapy", 4, "EXC04"),
        ("last_biologic", 16, "EXC05"),
        ("last_investigational_drug", 8, "EXC06"),
        ("last_systemic_antibiotic", 2, "EXC07"),
        ("last_skin_infection_systemic_therapy", 2, "EXC08"),
    ],
)
def test_washouts_exclude_below_7n_days_and_allow_exactly_7n(dupi, key, weeks, criterion):
    values = eligible_adult()
    screening = values["screening_date"]
    values[key] = screening - dt.timedelta(days=7 * weeks - 1)
    assert verdicts(dupi, values)[criterion] is True
    values[key] = screening - dt.timedelta(days=7 * weeks)
    assert verdicts(dupi, values)[criterion] is False
    del values[key]
    assert verdicts(dupi, values)[criterion] is UNKNOWN


def test_inc01_adult_on_the_18th_birthday(dupi):
    values = eligible_adult()
    values["birth_date"] = dt.date(2006, 6, 1)
    assert verdicts(dupi, values)["INC01"] is True
    values["birth_date"] = dt.date(2006, 6, 2)
    assert verdicts(dupi, values)["INC01"] is False


def test_exc12_applies_to_women_only(dupi):
    values = eligible_adult() | {"sex": "M", "pregnant": None, "adequate_contraception": None}
    assert verdicts(dupi, values)["EXC12"] == "n/a"
    values["sex"] = "F"
    values["adequate_contraception"] = False
    assert verdicts(dupi, values)["EXC12"] is True
    values["childbearing_potential"] = False
    values["adequate_contraception"] = None
    assert verdicts(dupi, values)["EXC12"] is UNKNOWN  # pregnant is still unknown
    values["pregnant"] = False
    assert verdicts(dupi, values)["EXC12"] is False
    del values["sex"]
    assert dupi.criterion("EXC12").applies_when.evaluate(values) is UNKNOWN


def test_computed_items(dupi):
    dlqi = dupi.item("DLQI", "dlqi_total").computed
    answers = {f"dlqi_q{i}": 3 for i in range(1, 11)}
    assert dlqi.evaluate(answers) == 30
    assert dlqi.evaluate(answers | {"dlqi_q7": None}) == 27
    assert dlqi.evaluate(answers | {"dlqi_q7": None, "dlqi_q8": None}) is UNKNOWN
    grams = dupi.item("TCS", "tcs_grams").computed
    assert grams.evaluate({"tcs_used": True, "tubes_used": 2.5, "grams_per_tube": 30}) == 75
    assert grams.evaluate({"tcs_used": False}) == 0
    assert grams.evaluate({"tcs_used": True, "tubes_used": 1}) is UNKNOWN
    positive = dupi.item("SIGE", "sige_positive").computed
    assert positive.evaluate({"sige_value": 0.35}) is True
    assert positive.evaluate({"sige_value": 0.34}) is False


def test_edit_checks(dupi):
    pain = dupi.edit_check("ITCH_PAIN_SEVERE_PAIN_NO_AE")
    assert (pain.severity, pain.form, pain.item) == ("soft", "ITCH_PAIN", "pain_score")
    assert pain.expression.evaluate({"visit_code": "W4", "pain_score": 9, "AE.records": 0})
    assert not pain.expression.evaluate({"visit_code": "W4", "pain_score": 9, "AE.records": 1})
    tewl = dupi.edit_check("TEWL_SHORT_ACCLIMATISATION").expression
    assert tewl.constants == {"settings.tewl_min_acclimatisation_minutes": 20}
    assert tewl.evaluate({"acclimatisation_min": 19}) is True
    assert tewl.evaluate({"acclimatisation_min": 20}) is False
    ae = dupi.edit_check("AE_END_BEFORE_START").expression
    assert ae.evaluate({"ae_start_date": "2024-05", "ae_end_date": dt.date(2024, 4, 1)}) is True
    assert ae.evaluate({"ae_start_date": "2024-05", "ae_end_date": dt.date(2024, 5, 1)}) is UNKNOWN
    assert ae.evaluate({"ae_start_date": dt.date(2024, 5, 2), "ae_end_date": dt.date(2024, 5, 1)})
    assert [c.id for c in dupi.checks_of("DRUG")] == [
        "DRUG_NOT_ON_VISIT_DATE",
        "DRUG_INCOMPLETE_WITHOUT_REASON",
        "DRUG_MORE_THAN_PLANNED",
    ]


def test_every_assessment_of_the_protocol_is_declared(dupi):
    forms = {form.code for form in dupi.forms}
    assert forms == {
        "SCREENING", "NASA", "ITCH_PAIN", "INFECT", "INFECT_LOG", "TCS", "DLQI", "BIOPSY", "SWAB",
        "MARKERS", "TEWL", "LAB", "IGE", "SIGE", "AE", "CM", "DRUG",
    }  # fmt: skip
    labs = [group.lab_test for group in dupi.form("LAB").item_groups if group.lab_test]
    assert labs == ["ALT", "AST", "BILI", "ALP", "GGT", "CREAT", "HGB", "WBC", "NEUT", "LYMPH",
                    "EOS", "PLAT", "SODIUM"]  # fmt: skip
    assert dupi.form("AE").repeating and dupi.form("CM").repeating and dupi.form("DRUG").repeating
    tewl = {item.code for item in dupi.form("TEWL").items}
    assert {
        "tewl_site",
        "ambient_temperature_c",
        "relative_humidity_pct",
        "acclimatisation_min",
        "tewl_device",
        "tewl_repeats",
        "hours_since_emollient",
        "tewl_value",
    } <= tewl
    assert dupi.item("TEWL", "tewl_value").unit == "g/m²/h"
    assert [item.code for item in dupi.form("DLQI").items][:10] == [
        f"dlqi_q{i}" for i in range(1, 11)
    ]


def test_open_items_are_settings(dupi):
    open_items = {key for key, setting in dupi.settings.items() if setting.status == "open"}
    assert {
        "nasa_item_scores",
        "itch_pain_instrument",
        "itch_pain_anchor",
        "itch_pain_recall",
        "qol_instrument",
        "tcs_quantity_method",
        "tewl_device",
    } <= open_items
    assert dupi.setting("itch_pain_instrument") in dupi.settings["itch_pain_instrument"].choices
    assert dupi.form("NASA").item_groups[1].enabled_by == "nasa_item_scores"


def test_every_text_is_in_english_and_french(dupi, cohort):
    def texts(node: object):
        if hasattr(node, "en") and hasattr(node, "fr"):
            yield node
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                yield from texts(getattr(node, name))
        elif isinstance(node, list | tuple):
            for element in node:
                yield from texts(element)
        elif isinstance(node, dict):
            for element in node.values():
                yield from texts(element)

    for study in (dupi, cohort):
        found = list(texts(study))
        assert len(found) > 100
        assert all(text.en.strip() and text.fr.strip() for text in found)
    assert all(item.label.fr != "" for form in dupi.forms for item in form.items)


def test_lookups_raise_a_named_error(dupi):
    with pytest.raises(UnknownCodeError, match="form 'NOPE'"):
        dupi.form("NOPE")
    with pytest.raises(UnknownCodeError, match="item of form NASA 'nope'"):
        dupi.item("NASA", "nope")
    with pytest.raises(KeyError):
        dupi.visit("W3")
    with pytest.raises(UnknownCodeError, match="setting"):
        dupi.setting("nope")


@pytest.mark.parametrize(
    ("item", "raw", "expected"),
    [
        ("screening_date", "2024-06-01", dt.date(2024, 6, 1)),
        ("last_biologic", "never", NEVER),
        ("nasa_total", 12, 12),
        ("nasa_total", "7", 7),
        ("sex", "F", "F"),
        ("pregnant", True, True),
        ("pregnant", None, None),
    ],
)
def test_parse_value_accepts(dupi, item, raw, expected):
    assert dupi.parse_value("SCREENING", item, raw) == expected


@pytest.mark.parametrize(
    ("item", "raw", "fragment"),
    [
        ("screening_date", "2024-13-01", "is not a date"),
        ("screening_date", "never", "cannot be 'never'"),
        ("nasa_total", 13, "above the maximum 12"),
        ("nasa_total", -1, "below the minimum 0"),
        ("nasa_total", 5.5, "not an integer"),
        ("nasa_total", True, "not an integer"),
        ("sex", "X", "not one of the codes (F, M)"),
        ("pregnant", "yes", "not true or false"),
    ],
)
def test_parse_value_refuses_naming_item_and_value(dupi, item, raw, fragment):
    with pytest.raises(ItemValueError) as caught:
        dupi.parse_value("SCREENING", item, raw)
    assert str(caught.value).startswith(f"{item}: {raw!r}")
    assert fragment in str(caught.value)


def test_partial_dates_and_decimals(dupi):
    assert dupi.parse_value("AE", "ae_start_date", "2024-05") == "2024-05"
    with pytest.raises(ItemValueError, match="'2024-13' has a month outside 01–12"):
        dupi.parse_value("AE", "ae_start_date", "2024-13")
    assert dupi.parse_value("ITCH_PAIN", "pain_score", "6,5") == 6.5
    with pytest.raises(ItemValueError, match="more than 1 decimal"):
        dupi.parse_value("ITCH_PAIN", "pain_score", 6.55)
    with pytest.raises(ItemValueError, match="pattern"):
        dupi.parse_value("DRUG", "kit_number", "kit 12")


def test_the_cohort_is_observational_any_age_with_treatments(cohort):
    assert (cohort.id, cohort.kind, cohort.arms, cohort.randomization, cohort.dosing) == (
        "ns-cohort",
        "observational",
        [],
        None,
        None,
    )
    treatment = cohort.form("TREATMENT")
    assert treatment.repeating
    assert "ivig" in cohort.codelist(treatment.item("product").codelist).codes
    assert {"dose", "dose_unit", "interval_days", "off_label"} <= {i.code for i in treatment.items}
    assert [visit.code for visit in cohort.visits_of("IGE")] == [v.code for v in cohort.visits]
    names = {name for criterion in cohort.eligibility for name in criterion.condition.names}
    assert "birth_date" not in names  # any age
    young = {"ENROLMENT.birth_date": dt.date(2019, 1, 1), "visit_date": dt.date(2025, 1, 1)}
    assert cohort.edit_check("DLQI_TOO_YOUNG").expression.evaluate(young) is True
