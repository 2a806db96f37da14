"""ADAE, ADLB and the exposure variables of ADSL, built from captured data; blinding."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.analysis import safety_world, world
from tests.analysis.conftest import ARMS
from tests.analysis.safety_world import TEAE_SUBJECTS
from tests.analysis.test_datasets import ALLOCATION_TABLES

#: The fixture of safety_world, for the tests of this module.
safety_trial = safety_world.safety_trial

ARM_COLUMNS = {"TRT01P", "TRT01A", "RANDSEQ", "ARM"}


def _row(frame, **where):
    mask = True
    for column, value in where.items():
        mask = mask & (frame[column] == value)
    rows = frame.loc[mask]
    assert len(rows) == 1, where
    return rows.iloc[0]


def _day(n: int) -> dt.date:
    return world.d0_date() + dt.timedelta(days=n)


@pytest.mark.usefixtures("safety_trial")
def test_blinded_safety_datasets_read_no_allocation_and_have_no_arm(ns_dupi, plan):
    from trialdesk.analysis import safety
    from trialdesk.analysis.datasets import build_datasets

    with CaptureQueriesContext(connection) as queries:
        bundle = build_datasets(ns_dupi, plan, blinded=True)
        tables = [
            safety.ae_by_soc(bundle),
            safety.ae_overview(bundle),
            safety.lab_shifts(bundle),
            safety.exposure(bundle),
        ]
        n_build = len(queries.captured_queries)
    sql = " ".join(q["sql"] for q in queries.captured_queries).lower()
    assert "safety_adverseevent" in sql and "safety_labresult" in sql
    for table in ALLOCATION_TABLES:
        assert table not in sql
    # The summaries are pandas only: no query beyond the build's.
    assert len(queries.captured_queries) == n_build
    for name in ("ADAE", "ADLB"):
        assert not ARM_COLUMNS & set(bundle[name].frame.columns), name
    for table in tables:
        assert set(table["ARM"]) == {"All"}


@pytest.mark.usefixtures("safety_trial")
def test_adae_derivations(ns_dupi, plan, ugo):
    from trialdesk.analysis.datasets import build_datasets

    adae = build_datasets(ns_dupi, plan, blinded=False, user=ugo)["ADAE"].frame
    assert len(adae) == 6
    conj = _row(adae, USUBJID="TLS-001", AESEQ=1)
    assert conj["ARM"] == "DUPI"
    assert (conj["AETERM"], conj["AEDECOD"], conj["AEBODSYS"]) == (
        "Conjonctivite",
        "Conjunctivitis",
        "Eye disorders",
    )
    assert conj["ASTDT"] == _day(10) and conj["ASTDTF"] is None and conj["ASTDY"] == 11
    assert conj["TRTEMFL"] == "Y" and conj["AERELFL"] == "Y" and conj["AESIFL"] == "Y"
    assert conj["AESICAT"] == "conjunctivitis" and conj["AESER"] == "N"
    assert conj["AESEV"] == "MILD" and conj["AESEVFL"] is None
    assert _row(adae, USUBJID="TLS-001", AESEQ=2)["AEDECOD"] == "Blepharitis"
    sae = _row(adae, USUBJID="TLS-002")
    assert sae["ARM"] == "PBO" and sae["AESER"] == "Y" and sae["AETOXGR"] == 3.0
    assert sae["AESEVFL"] == "Y" and sae["AEDISFL"] == "Y" and sae["AERELFL"] is None
    before = _row(adae, USUBJID="TLS-003")
    assert before["ASTDY"] == -3 and before["TRTEMFL"] is None
    first_day = _row(adae, USUBJID="TLS-005")
    assert first_day["ASTDY"] == 1 and first_day["TRTEMFL"] == "Y"
    never_dosed = _row(adae, USUBJID="NCK-002")
    assert never_dosed["TRTEMFL"] is None and math.isnan(never_dosed["ASTDY"])
    assert set(adae.loc[adae["TRTEMFL"] == "Y", "USUBJID"]) == TEAE_SUBJECTS
    # Ongoing events: no end, no imputation.
    assert adae["AENDT"].isna().all() and adae["AENDTF"].isna().all()


def test_adae_imputes_a_partial_start_in_the_first_dose_month(trial, ns_dupi, plan, claire):
    from tests.analysis.safety_world import adverse_event
    from trialdesk.analysis.datasets import build_datasets

    d0 = world.d0_date()
    adverse_event(trial["TLS-002"], "W2", "Rash", d0.strftime("%Y-%m"), claire)
    adae = build_datasets(ns_dupi, plan, blinded=True)["ADAE"].frame
    rash = _row(adae, USUBJID="TLS-002")
    assert rash["AESTDTC"] == d0.strftime("%Y-%m")
    assert rash["ASTDT"] == d0 and rash["ASTDTF"] == "D" and rash["TRTEMFL"] == "Y"
    assert rash["AEBODSYS"] == "Skin and subcutaneous tissue disorders"


@pytest.mark.usefixtures("safety_trial")
def test_adlb_derivations(ns_dupi, plan, ugo):
    from trialdesk.analysis.datasets import build_datasets

    adlb = build_datasets(ns_dupi, plan, blinded=False, user=ugo)["ADLB"].frame
    assert len(adlb) == 8 and set(adlb["PARAMCD"]) == {"ALT"}
    base = _row(adlb, USUBJID="TLS-001", AVISIT="D0")
    assert base["ABLFL"] == "Y" and base["ANL01FL"] is None
    assert (base["AVAL"], base["AVALU"], base["ANRLO"], base["ANRHI"]) == (30.0, "U/L", 7.0, 40.0)
    assert base["ANRIND"] == "NORMAL" and base["ATOXGR"] == 0.0 and base["BTOXGR"] == 0.0
    assert base["PARAM"] == "Alanine aminotransferase (ALT) (U/L)"
    w4 = _row(adlb, USUBJID="TLS-001", AVISIT="W4")
    assert w4["ARM"] == "DUPI" and w4["AVISITN"] == 4.0 and w4["ANL01FL"] == "Y"
    assert (w4["AVAL"], w4["BASE"], w4["ANRIND"]) == (130.0, 30.0, "HIGH")
    assert w4["ATOXGR"] == 2.0 and w4["BTOXGR"] == 0.0  # > 3 x ULN
    assert w4["ADT"] == _day(28)  # sampled on the W4 visit, done on its planned day
    assert _row(adlb, USUBJID="TLS-003", AVISIT="W4")["ATOXGR"] == 3.0  # > 5 x ULN


@pytest.mark.usefixtures("safety_trial")
def test_lab_shifts_of_the_built_trial_add_up_per_arm(ns_dupi, plan, ugo):
    from trialdesk.analysis import safety
    from trialdesk.analysis.datasets import build_datasets

    bundle = build_datasets(ns_dupi, plan, blinded=False, user=ugo)
    shifts = safety.lab_shifts(bundle)
    got = {(r.ARM, r.BTOXGR, r.WTOXGR): r.SUBJECTS for r in shifts.itertuples()}
    assert got[("DUPI", "0", "2")] == 1 and got[("DUPI", "0", "3")] == 1
    assert got[("DUPI", "0", "Missing")] == 1  # TLS-005: baseline only
    safety_n = {"DUPI": 5, "PBO": 3}  # NCK-002 never dosed
    assert shifts.groupby("ARM")["SUBJECTS"].sum().to_dict() == safety_n
    overview = safety.ae_overview(bundle).set_index(["CATEGORY", "ARM"])
    assert overview.loc[("ANY", "DUPI"), "SUBJECTS"] == 2
    assert overview.loc[("ANY", "PBO"), "SUBJECTS"] == 1
    assert overview.loc[("SERIOUS", "PBO"), "SUBJECTS"] == 1


def test_adsl_exposure_variables(trial, ns_dupi, plan):
    from trialdesk.analysis.datasets import build_datasets

    adsl = build_datasets(ns_dupi, plan, blinded=True)["ADSL"].frame.set_index("USUBJID")
    # Each dosing visit of the fixture has one syringe; the regimen plans 2 at D0 and 1 at W2-W14.
    full = adsl.loc["TLS-001"]
    assert (full["NDOSES"], full["PLNDOSES"], full["TRTDURD"]) == (8, 9, 99)
    assert full["COMPLPCT"] == pytest.approx(800 / 9)
    short = adsl.loc["TLS-006"]  # no dose at W12 and W14, though W16 was done
    assert (short["NDOSES"], short["PLNDOSES"], short["TRTDURD"]) == (6, 9, 71)
    assert short["COMPLPCT"] == pytest.approx(600 / 9)
    withdrawn = adsl.loc["NCK-002"]  # withdrawn on day 5 without a dose: D0 only was due
    assert (withdrawn["NDOSES"], withdrawn["PLNDOSES"], withdrawn["COMPLPCT"]) == (0, 2, 0.0)
    assert _missing(withdrawn["TRTDURD"])
    assert set(adsl.index) == set(ARMS)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@pytest.mark.usefixtures("safety_trial")
def test_an_unreadable_stored_date_names_the_dataset_subject_and_value(ns_dupi, plan):
    from trialdesk.analysis.datasets import DatasetError, build_datasets
    from trialdesk.safety.models import AdverseEvent

    AdverseEvent.objects.filter(subject__subject_id="TLS-002").update(start="2025-13")
    with pytest.raises(DatasetError, match="ADAE.ae_start_date: TLS-002: ae_start_date: '2025-13'"):
        build_datasets(ns_dupi, plan, blinded=True)
