"""``trialdesk randomization generate``, driven through click's CliRunner."""

from __future__ import annotations

import csv
import hashlib
import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from trialdesk.protocol.errors import ProtocolError
from trialdesk.randomization import commands
from trialdesk.randomization.commands import randomization


def _fake_study(block_sizes=(3, 6)):
    """The NS-DUPI design under reading A, shaped like ``trialdesk.protocol.load_study``'s."""
    return SimpleNamespace(
        arms=[SimpleNamespace(code="DUPI", ratio=2), SimpleNamespace(code="PBO", ratio=1)],
        randomization=SimpleNamespace(block_sizes=list(block_sizes)),
        sites=[SimpleNamespace(code="TLS"), SimpleNamespace(code="NCK")],
        dosing=SimpleNamespace(
            units_per_visit={"D0": 2, **{f"W{week}": 1 for week in range(2, 15, 2)}}
        ),
    )


@pytest.fixture
def fake_study(monkeypatch):
    loaded = []

    def load(path):
        loaded.append(path)
        return _fake_study()

    monkeypatch.setattr(commands, "_load_study", load)
    return loaded


def _run(out, *extra, seed="42", per_stratum="12"):
    args = ["generate", "--study", "ns-dupi", "--seed", seed, "--per-stratum", per_stratum]
    return CliRunner().invoke(randomization, [*args, "--out", str(out), *extra])


def _read(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_it_writes_both_lists_and_the_sidecar(tmp_path, fake_study):
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
    assert fake_study == [commands.STUDIES_DIR / "ns-dupi"]


def test_kits_cover_nine_syringes_per_row_plus_the_reserve(tmp_path, fake_study):
    assert _run(tmp_path, "--reserve", "4").exit_code == 0
    rows = _read(tmp_path / "randomization.csv")[1:]
    kits = _read(tmp_path / "kits.csv")[1:]
    for arm in ("DUPI", "PBO"):
        assert sum(k[1] == arm for k in kits) == 9 * sum(r[4] == arm for r in rows) + 4


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
    assert (meta["seed"], meta["per_stratum"], meta["kit_reserve_per_arm"]) == (42, 12, 3)
    assert meta["arms"] == [{"code": "DUPI", "ratio": 2}, {"code": "PBO", "ratio": 1}]
    assert meta["block_sizes"] == [3, 6]
    assert meta["strata"] == ["TLS", "NCK"]
    assert meta["units_per_subject"] == 9
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
    result = CliRunner().invoke(
        randomization,
        ["generate", "--study", "no-such-study", "--seed", "1", "--per-stratum", "3",
         "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no study 'no-such-study'" in result.output
    assert not (tmp_path / "out").exists()


def test_a_design_the_generator_cannot_honour_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(commands, "_load_study", lambda path: _fake_study(block_sizes=(3, 4)))
    result = _run(tmp_path / "out")
    assert result.exit_code == 1
    assert "block size=4 is not a positive multiple of the ratio sum 3" in result.output
    assert not (tmp_path / "out").exists()


def test_a_broken_study_file_is_reported(tmp_path, monkeypatch):
    def refuse(path):
        raise ProtocolError("study.yaml:3: arms: missing")

    monkeypatch.setattr(commands, "_load_study", refuse)
    result = _run(tmp_path / "out")
    assert result.exit_code == 1
    assert "study.yaml:3: arms: missing" in result.output


def test_a_study_directory_can_be_given_as_a_path(tmp_path, fake_study):
    study = tmp_path / "my-study"
    study.mkdir()
    result = CliRunner().invoke(
        randomization,
        ["generate", "--study", str(study), "--seed", "1", "--per-stratum", "3",
         "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake_study == [study]
    meta = json.loads((tmp_path / "out" / "randomization.meta.json").read_text())
    assert meta["study"] == "my-study"
