"""``trialdesk randomization generate``, driven through click's CliRunner."""

from __future__ import annotations

import csv
import hashlib
import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from trialdesk.protocol import ProtocolError
from trialdesk.randomization import commands
from trialdesk.randomization.commands import list_inputs, randomization
from trialdesk.randomization.lists import DesignError

READING_A = {"D0": 2, **{f"W{week}": 1 for week in range(2, 15, 2)}}


def _study(randomization_changes=None, dosing_changes=None, **changes):
    """The NS-DUPI design under reading A, shaped like ``trialdesk.protocol.load_study``'s."""
    design = {
        "block_sizes": [3, 6],
        "block_choice": "random",
        "stratify_by": ["site"],
        "units_per_kit": 1,
        "kit_reserve_per_site": 3,
    } | (randomization_changes or {})
    study = {
        "id": "ns-dupi",
        "version": "1.0",
        "sha256": "ab" * 32,
        "arms": [SimpleNamespace(code="DUPI", ratio=2), SimpleNamespace(code="PBO", ratio=1)],
        "randomization": SimpleNamespace(**design),
        "sites": [SimpleNamespace(code="TLS"), SimpleNamespace(code="NCK")],
        "dosing": SimpleNamespace(**({"units_per_visit": READING_A} | (dosing_changes or {}))),
    } | changes
    return SimpleNamespace(**study)


@pytest.fixture
def fake_study(monkeypatch):
    loaded = []

    def load(path):
        loaded.append(path)
        return _study()

    monkeypatch.setattr(commands, "load_study", load)
    return loaded


def _run(out, *extra, seed="42", per_stratum="12", study="ns-dupi"):
    args = ["generate", "--study", study, "--seed", seed, "--per-stratum", per_stratum]
    return CliRunner().invoke(randomization, [*args, "--out", str(out), *extra])


def _read(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_it_writes_both_lists_and_the_sidecar(tmp_path, fake_study, studies_dir):
    result = _run(tmp_path / "out")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "kits.csv", "randomization.csv", "randomization.meta.json",
    ]  # fmt: skip
    rows = _read(out / "randomization.csv")
    kits = _read(out / "kits.csv")
    assert rows[0] == ["stratum", "seq", "block", "block_size", "arm"]
    assert kits[0] == ["kit_number", "arm"]
    assert {row[0] for row in rows[1:]} == {"TLS", "NCK"}
    assert fake_study == [studies_dir / "ns-dupi"]


def test_kits_cover_nine_syringes_per_row_plus_the_reserve(tmp_path, fake_study):
    assert _run(tmp_path, "--reserve", "4").exit_code == 0
    rows = _read(tmp_path / "randomization.csv")[1:]
    kits = _read(tmp_path / "kits.csv")[1:]
    for arm in ("DUPI", "PBO"):
        assert sum(k[1] == arm for k in kits) == 9 * sum(r[4] == arm for r in rows) + 4


def test_the_default_reserve_is_the_study_reserve_per_site_times_the_sites(tmp_path, fake_study):
    assert _run(tmp_path).exit_code == 0
    rows = _read(tmp_path / "randomization.csv")[1:]
    kits = _read(tmp_path / "kits.csv")[1:]
    for arm in ("DUPI", "PBO"):
        assert sum(k[1] == arm for k in kits) == 9 * sum(r[4] == arm for r in rows) + 3 * 2


def test_the_printed_hashes_are_those_of_the_files(tmp_path, fake_study):
    result = _run(tmp_path)
    printed = dict(reversed(line.split("  ", 1)) for line in result.output.splitlines())
    assert set(printed) == {
        str(tmp_path / name)
        for name in ("randomization.csv", "kits.csv", "randomization.meta.json")
    }
    for path, digest in printed.items():
        with open(path, "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == digest


def test_the_sidecar_records_algorithm_generator_inputs_and_hashes(tmp_path, fake_study):
    _run(tmp_path, "--reserve", "3")
    meta = json.loads((tmp_path / "randomization.meta.json").read_text())
    assert meta["algorithm"] == "trialdesk list algorithm v1"
    assert meta["generator"] == "numpy PCG64"
    assert meta["numpy_version"]
    assert meta["study"] == "ns-dupi"
    assert meta["study_file"] == {
        "version": "1.0", "sha256": "ab" * 32, "units_per_visit": READING_A,
        "units_per_kit": 1, "kit_reserve_per_site": 3,
    }  # fmt: skip
    assert (meta["seed"], meta["per_stratum"], meta["kit_reserve_per_arm"]) == (42, 12, 3)
    assert meta["arms"] == [{"code": "DUPI", "ratio": 2}, {"code": "PBO", "ratio": 1}]
    assert meta["block_sizes"] == [3, 6]
    assert meta["strata"] == ["TLS", "NCK"]
    assert meta["kits_per_subject"] == 9
    for name in ("randomization.csv", "kits.csv"):
        digest = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert meta["files"][name]["sha256"] == digest


def test_the_same_inputs_give_byte_identical_files(tmp_path, fake_study):
    _run(tmp_path / "a")
    _run(tmp_path / "b")
    for name in ("randomization.csv", "kits.csv", "randomization.meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_different_seeds_give_different_files(tmp_path, fake_study):
    _run(tmp_path / "a", seed="1")
    _run(tmp_path / "b", seed="2")
    for name in ("randomization.csv", "kits.csv"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()


def test_it_never_overwrites_a_list(tmp_path, fake_study):
    assert _run(tmp_path).exit_code == 0
    before = (tmp_path / "randomization.csv").read_bytes()
    result = _run(tmp_path, seed="7")
    assert result.exit_code == 1
    assert "already holds randomization.csv" in result.output
    assert (tmp_path / "randomization.csv").read_bytes() == before


@pytest.mark.parametrize(
    ("option", "value"), [("--seed", "-1"), ("--per-stratum", "0"), ("--reserve", "-2")]
)
def test_out_of_range_options_are_refused(tmp_path, fake_study, option, value):
    args = {"--seed": "1", "--per-stratum": "12", "--reserve": "0"} | {option: value}
    result = CliRunner().invoke(
        randomization,
        ["generate", "--study", "ns-dupi", "--out", str(tmp_path),
         *[part for pair in args.items() for part in pair]],
    )  # fmt: skip
    assert result.exit_code == 2
    assert option in result.output
    assert not any(tmp_path.iterdir())


def test_an_unknown_study_is_refused(tmp_path, fake_study):
    result = _run(tmp_path / "out", study="no-such-study")
    assert result.exit_code == 2
    assert "no study 'no-such-study'" in result.output
    assert not (tmp_path / "out").exists()
    assert fake_study == []


def test_a_design_the_generator_cannot_honour_is_refused(tmp_path, monkeypatch):
    study = _study(randomization_changes={"block_sizes": [3, 4]})
    monkeypatch.setattr(commands, "load_study", lambda path: study)
    result = _run(tmp_path / "out")
    assert result.exit_code == 1
    assert "block size=4 is not a positive multiple of the ratio sum 3" in result.output
    assert not (tmp_path / "out").exists()


def test_a_broken_study_file_is_reported(tmp_path, monkeypatch):
    def refuse(path):
        raise ProtocolError("study.yaml:3: arms: missing")

    monkeypatch.setattr(commands, "load_study", refuse)
    result = _run(tmp_path / "out")
    assert result.exit_code == 1
    assert "study.yaml:3: arms: missing" in result.output


def test_a_study_directory_can_be_given_as_a_path(tmp_path, fake_study):
    study = tmp_path / "my-study"
    study.mkdir()
    result = _run(tmp_path / "out", study=str(study), per_stratum="3")
    assert result.exit_code == 0, result.output
    assert fake_study == [study]


# --- reading the design from a study ------------------------------------------------------


def test_kits_per_subject_rounds_each_visit_up_to_whole_kits():
    assert list_inputs(_study()).kits_per_subject == 9
    two_per_kit = _study(randomization_changes={"units_per_kit": 2})
    assert list_inputs(two_per_kit).kits_per_subject == 1 + 7 * 1  # 2/2 at D0, then ceil(1/2)
    reading_b = _study(dosing_changes={"units_per_visit": {"D0": 2, "W2": 1, "W4": 1}})
    assert list_inputs(reading_b).kits_per_subject == 4


@pytest.mark.parametrize(
    ("study", "message"),
    [
        (_study(randomization=None), "randomization: study 'ns-dupi' declares none"),
        (_study(dosing=None), "dosing: study 'ns-dupi' declares none, so kits cannot be counted"),
        (_study(randomization_changes={"block_choice": "fixed"}),
         "randomization.block_choice='fixed': list algorithm v1 draws block sizes at random only"),
        (_study(randomization_changes={"stratify_by": ["site", "sex"]}),
         "randomization.stratify_by=['site', 'sex']: list algorithm v1 stratifies by site only"),
    ],
)  # fmt: skip
def test_a_study_the_algorithm_does_not_cover_is_refused_by_name(study, message):
    with pytest.raises(DesignError) as caught:
        list_inputs(study)
    assert message in caught.value.problems


# --- the real study file ------------------------------------------------------------------


def test_it_generates_the_lists_of_the_ns_dupi_study_file(tmp_path):
    result = _run(tmp_path, per_stratum="12")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "randomization.meta.json").read_text())
    assert meta["study"] == "ns-dupi"
    assert len(meta["study_file"]["sha256"]) == 64
    assert meta["arms"] == [{"code": "DUPI", "ratio": 2}, {"code": "PBO", "ratio": 1}]
    assert meta["block_sizes"] == [3, 6]
    assert meta["strata"] == ["TLS", "NCK"]
    assert meta["kits_per_subject"] == 9
    rows = _read(tmp_path / "randomization.csv")[1:]
    kits = _read(tmp_path / "kits.csv")[1:]
    reserve = meta["kit_reserve_per_arm"]
    for arm in ("DUPI", "PBO"):
        assert sum(k[1] == arm for k in kits) == 9 * sum(r[4] == arm for r in rows) + reserve
