"""Analysis datasets: derivations, population flags, blinding, hashes."""

from __future__ import annotations

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.analysis.conftest import ARMS, NASA, PRURITUS

#: Tables a blinded build must never query: they hold or lead to the allocation.
ALLOCATION_TABLES = (
    "randomization_allocation",
    "randomization_sealed_row",
    "randomization_sealed_kit",
)


def _row(frame, **where):
    mask = True
    for column, value in where.items():
        mask = mask & (frame[column] == value)
    rows = frame.loc[mask]
    assert len(rows) == 1, where
    return rows.iloc[0]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def test_blinded_build_reads_no_allocation_and_derives_every_variable(trial, ns_dupi, plan):
    from trialdesk.analysis.datasets import build_datasets

    with CaptureQueriesContext(connection) as queries:
        bundle = build_datasets(ns_dupi, plan, blinded=True)
    sql = " ".join(q["sql"] for q in queries.captured_queries).lower()
    assert queries.captured_queries
    for table in ALLOCATION_TABLES:
        assert table not in sql
    for name, dataset in bundle.datasets.items():
        assert not {"TRT01P", "TRT01A", "RANDSEQ", "ARM"} & set(dataset.frame.columns), name

    adsl = bundle["ADSL"].frame
    assert sorted(adsl["USUBJID"]) == sorted(ARMS)
    assert set(adsl["ITTFL"]) == {"Y"}
    flags = {r.USUBJID: (r.SAFFL, r.PPROTFL) for r in adsl.itertuples()}
    assert flags["NCK-002"] == ("N", "N")  # never dosed, withdrawn
    assert flags["TLS-004"] == ("Y", "N")  # no W16 NASA
    assert flags["TLS-006"] == ("Y", "N")  # 6 dosing visits
    assert flags["NCK-003"] == ("Y", "N")  # W16 out of window: major deviation
    for label in ("TLS-001", "TLS-002", "TLS-003", "TLS-005", "NCK-001"):
        assert flags[label] == ("Y", "Y"), label
    assert "6 dosing visits" in _row(adsl, USUBJID="TLS-006")["PPEXCL"]
    assert "visit_out_of_window at W16" in _row(adsl, USUBJID="NCK-003")["PPEXCL"]
    assert _row(adsl, USUBJID="TLS-001")["NDOSEVIS"] == 8
    assert _row(adsl, USUBJID="TLS-006")["NDOSEVIS"] == 6
    withdrawn = _row(adsl, USUBJID="NCK-002")
    assert (withdrawn["EOSSTT"], withdrawn["DCSREAS"]) == ("DISCONTINUED", "withdrawn")
    assert _row(adsl, USUBJID="TLS-001")["EOSSTT"] == "COMPLETED"
    assert _row(adsl, USUBJID="TLS-002")["EOSSTT"] == "ONGOING"
    first = _row(adsl, USUBJID="TLS-001")
    assert first["RANDDT"] == first["TRTSDT"]
    assert _missing(withdrawn["TRTSDT"])
    assert first["STRATUM"] == first["SITEID"] == "TLS"
    assert first["NASABL"] == NASA["TLS-001"][0]
    assert first["PRURBL"] == PRURITUS["TLS-001"][0]

    nasa = bundle["ADNASA"].frame
    assert len(nasa) == 2 * len(ARMS)
    for label, (base, w16) in NASA.items():
        d0 = _row(nasa, USUBJID=label, AVISIT="D0")
        week16 = _row(nasa, USUBJID=label, AVISIT="W16")
        assert (d0["AVAL"], d0["BASE"], d0["ABLFL"], d0["ANL01FL"]) == (base, base, "Y", "Y")
        assert _missing(d0["CHG"])
        assert week16["BASE"] == base and _missing(week16["ABLFL"])
        assert week16["AVISITN"] == 16
        if w16 is None:
            assert _missing(week16["AVAL"]) and _missing(week16["CHG"])
            assert _missing(week16["ANL01FL"])
        else:
            assert (week16["AVAL"], week16["CHG"], week16["ANL01FL"]) == (w16, w16 - base, "Y")
    late = _row(nasa, USUBJID="NCK-003", AVISIT="W16")
    assert (late["ADT"] - _row(nasa, USUBJID="NCK-003", AVISIT="D0")["ADT"]).days == 122

    pruritus = bundle["ADPRUR"].frame
    w2 = _row(pruritus, USUBJID="TLS-003", AVISIT="W2")
    assert w2["CHG"] == pytest.approx(PRURITUS["TLS-003"][1] - PRURITUS["TLS-003"][0])
    assert _missing(_row(pruritus, USUBJID="TLS-003", AVISIT="W4")["AVAL"])

    infections = bundle["ADINF"].frame
    control = _row(infections, USUBJID="NCK-001")
    assert (control["AVAL"], control["NVISREC"], control["EXPDAYS"]) == (3, 2, 112)
    assert control["EXPYRS"] == pytest.approx(112 / 365.25)
    missed = _row(infections, USUBJID="TLS-004")
    assert (missed["AVAL"], missed["EXPDAYS"], missed["ANL01FL"]) == (1, 14, "Y")
    never = _row(infections, USUBJID="NCK-002")
    assert _missing(never["AVAL"]) and _missing(never["ANL01FL"])


def test_hashes_are_of_the_canonical_csv_and_change_with_the_data(trial, ns_dupi, plan, claire):
    from tests.analysis import world
    from trialdesk.analysis.datasets import build_datasets
    from trialdesk.lib.hashing import sha256_hex

    first = build_datasets(ns_dupi, plan, blinded=True)
    again = build_datasets(ns_dupi, plan, blinded=True)
    assert first.hashes() == again.hashes()
    nasa = first["ADNASA"]
    assert nasa.sha256 == sha256_hex(nasa.canonical_csv())
    assert nasa.canonical_csv().splitlines()[0].startswith("STUDYID,USUBJID,SITEID,PARAMCD")
    world.nasa(trial["TLS-002"], "W16", 5, claire, reason="transcription error")
    changed = build_datasets(ns_dupi, plan, blinded=True).hashes()
    assert changed["ADNASA"] != first.hashes()["ADNASA"]
    assert changed["ADPRUR"] == first.hashes()["ADPRUR"]


def test_unblinded_build_has_the_arms_for_an_unblinded_statistician_only(
    trial, ns_dupi, plan, ugo, simon
):
    from trialdesk.analysis.datasets import DatasetError, build_datasets
    from trialdesk.randomization.errors import BlindingError

    adsl = build_datasets(ns_dupi, plan, blinded=False, user=ugo)["ADSL"].frame
    assert dict(zip(adsl["USUBJID"], adsl["TRT01P"], strict=True)) == ARMS
    actual = dict(zip(adsl["USUBJID"], adsl["TRT01A"], strict=True))
    assert actual["NCK-002"] is None and actual["TLS-001"] == "DUPI"
    assert list(adsl.loc[adsl["SITEID"] == "TLS"].sort_values("RANDSEQ")["USUBJID"]) == [
        f"TLS-00{i}" for i in range(1, 7)
    ]
    with pytest.raises(BlindingError):
        build_datasets(ns_dupi, plan, blinded=False, user=simon)
    with pytest.raises(DatasetError, match="user"):
        build_datasets(ns_dupi, plan, blinded=False)


def test_the_dictionary_lists_every_column_built(ns_dupi, plan, ugo):
    from trialdesk.analysis.datasets import build_datasets, data_dictionary

    bundle = build_datasets(ns_dupi, plan, blinded=False, user=ugo)
    declared = {(row["dataset"], row["name"]) for row in data_dictionary()}
    built = {(name, c) for name, d in bundle.datasets.items() for c in d.frame.columns}
    assert built == declared
    blinded = {(row["dataset"], row["name"]) for row in data_dictionary(blinded=True)}
    assert ("ADSL", "TRT01P") in declared - blinded
