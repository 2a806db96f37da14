"""``trialdesk simulate power``: design from the study file, overrides, output, plot."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from trialdesk.analysis import commands
from trialdesk.analysis.commands import NS_DUPI_DEFAULTS, design_from_study, simulate
from trialdesk.protocol import ProtocolError
from trialdesk.stats.power import Scenario, TrialDesign, simulate_trials

DESIGN = ["--n-subjects", "24", "--sites", "TLS,NCK", "--ratio", "2:1", "--block-sizes", "3,6"]
RUN = ["power", "--effect", "-2", "--sd", "2.5", "--n-sims", "3000", "--seed", "7"]


def _fake_study(**changes):
    study = SimpleNamespace(
        id="fake",
        version="2.1",
        target_enrollment=30,
        arms=[SimpleNamespace(code="ACT", ratio=3), SimpleNamespace(code="CTL", ratio=1)],
        sites=[SimpleNamespace(code="S1"), SimpleNamespace(code="S2"), SimpleNamespace(code="S3")],
        randomization=SimpleNamespace(block_sizes=[4, 8]),
    )
    for key, value in changes.items():
        setattr(study, key, value)
    return study


def test_prints_the_simulated_operating_characteristics():
    result = CliRunner().invoke(simulate, RUN + DESIGN)
    assert result.exit_code == 0, result.output
    design = TrialDesign.balanced(
        24, sites=("TLS", "NCK"), ratio=(2, 1), block_sizes=(3, 6), arms=("DUPI", "PBO")
    )
    expected = simulate_trials(design, Scenario(effect=-2.0, sd=2.5), 3000, 7)
    assert f"{expected.power:.4f}" in result.output
    assert f"{expected.type1_error:.4f}" in result.output
    assert "coverage of 95% CI" in result.output
    assert "seed 7" in result.output


def test_the_study_file_sets_the_design(monkeypatch):
    monkeypatch.setattr(commands, "_load_study", lambda study: _fake_study())
    result = CliRunner().invoke(simulate, [*RUN, "--study", "fake"])
    assert result.exit_code == 0, result.output
    assert "30 subjects (S1 10, S2 10, S3 10), ACT:CTL 3:1" in result.output
    assert "blocks of 4 and 8" in result.output
    assert "control CTL" in result.output


def test_options_override_the_study_file(monkeypatch):
    monkeypatch.setattr(commands, "_load_study", lambda study: _fake_study())
    result = CliRunner().invoke(
        simulate, [*RUN, "--study", "fake", "--n-subjects", "12", "--ratio", "1:1"]
    )
    assert result.exit_code == 0, result.output
    assert "12 subjects (S1 4, S2 4, S3 4), ACT:CTL 1:1" in result.output


def test_an_unloadable_ns_dupi_study_falls_back_to_the_published_design(monkeypatch):
    def broken(study):
        raise ProtocolError("3 problems in the study file:\nstudy.yaml:1: x: y")

    monkeypatch.setattr(commands, "_load_study", broken)
    result = CliRunner().invoke(simulate, RUN)
    assert result.exit_code == 0, result.output
    assert "not usable (3 problems in the study file:)" in result.output
    assert "24 subjects (TLS 12, NCK 12), DUPI:PBO 2:1" in result.output


def test_an_unloadable_other_study_is_an_error(monkeypatch):
    def broken(study):
        raise ProtocolError("no such study file")

    monkeypatch.setattr(commands, "_load_study", broken)
    result = CliRunner().invoke(simulate, [*RUN, "--study", "other"])
    assert result.exit_code != 0
    assert "cannot load study 'other'" in result.output


def test_the_ns_dupi_study_file_gives_the_published_design(studies_dir):
    from trialdesk.protocol import load_study

    design = design_from_study(load_study(studies_dir / "ns-dupi"))
    assert (design.n_subjects, design.arms, design.ratio, design.sites, design.block_sizes) == (
        NS_DUPI_DEFAULTS.n_subjects,
        NS_DUPI_DEFAULTS.arms,
        NS_DUPI_DEFAULTS.ratio,
        NS_DUPI_DEFAULTS.sites,
        NS_DUPI_DEFAULTS.block_sizes,
    )


def test_a_study_without_randomization_is_refused():
    import click

    with pytest.raises(click.ClickException, match="no arms or no randomization"):
        design_from_study(_fake_study(randomization=None))


def test_plot_writes_a_png(tmp_path):
    target = tmp_path / "power.png"
    result = CliRunner().invoke(simulate, [*RUN, *DESIGN, "--plot", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "power curve written to" in result.output


def test_long_runs_show_progress(monkeypatch):
    calls = []

    def recording(*args, **kwargs):
        calls.append(kwargs.get("progress"))
        return simulate_trials(*args, **kwargs)

    monkeypatch.setattr(commands, "simulate_trials", recording)
    monkeypatch.setattr(commands, "PROGRESS_THRESHOLD", 1000)
    assert CliRunner().invoke(simulate, RUN + DESIGN).exit_code == 0
    monkeypatch.setattr(commands, "PROGRESS_THRESHOLD", 10**9)
    assert CliRunner().invoke(simulate, RUN + DESIGN).exit_code == 0
    assert callable(calls[0]) and calls[1] is None


def test_the_permutation_test_is_reported_when_asked():
    result = CliRunner().invoke(
        simulate, [*RUN[:-4], "--n-sims", "200", "--permutations", "99", *DESIGN]
    )
    assert result.exit_code == 0, result.output
    assert "permutation power" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ratio", "2:1:1"], "does not fit the arms"),
        (["--ratio", "two"], "not a ':'-separated list"),
        (["--block-sizes", "4"], "multiples of sum(ratio)"),
        (["--correlation", "1.5"], "correlation"),
        (["--control", "XYZ"], "'XYZ'"),
    ],
)
def test_bad_options_are_refused_with_their_name(extra, message):
    args = [*RUN, *DESIGN]
    for i in range(0, len(extra), 2):
        if extra[i] in args:
            args[args.index(extra[i]) + 1] = extra[i + 1]
        else:
            args += extra[i : i + 2]
    result = CliRunner().invoke(simulate, args)
    assert result.exit_code != 0
    assert message in result.output


def test_the_cli_lists_the_simulate_group():
    from trialdesk.cli import COMMANDS, _LazyGroup

    assert ("trialdesk.analysis.commands", "simulate") in COMMANDS
    assert _LazyGroup._load("trialdesk.analysis.commands", "simulate") is simulate
