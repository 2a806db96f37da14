"""``trialdesk study check`` and ``trialdesk study show`` through click's CliRunner."""

from __future__ import annotations

from click.testing import CliRunner

from tests.protocol.study_texts import MINI_STUDY
from trialdesk.cli import main
from trialdesk.protocol.commands import study


def test_check_a_valid_study_exits_0_with_a_summary(studies_dir):
    result = CliRunner().invoke(study, ["check", str(studies_dir / "ns-dupi")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ns-dupi version 1.0, 17 forms, ")
    assert "19 eligibility criteria" in result.output


def test_check_is_reachable_from_the_trialdesk_command():
    result = CliRunner().invoke(main, ["study", "check", "ns-cohort"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ns-cohort version 1.0")


def test_check_a_broken_study_exits_1_listing_every_problem(write_study):
    broken = MINI_STUDY.replace("block_sizes: [3, 6]", "block_sizes: [4]").replace(
        "W4: [VITALS]", "W4: [VITALS, LABS]"
    )
    folder = write_study(broken)
    result = CliRunner().invoke(study, ["check", str(folder)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert f"{folder / 'study.yaml'}:17: block_sizes: a block of 4" in lines[0]
    assert lines[1].startswith(f"{folder / 'study.yaml'}:45: LABS: unknown form 'LABS'")
    assert "2 problems: the study file is refused" in result.stderr
    assert "Traceback" not in result.output


def test_check_a_missing_study_exits_1(tmp_path):
    result = CliRunner().invoke(study, ["check", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert (
        result.stdout
        == f"{tmp_path / 'none' / 'study.yaml'}:None: study.yaml: no such study file\n"
    )


def test_show_prints_the_schedule_of_activities():
    result = CliRunner().invoke(main, ["study", "show", "ns-dupi"])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    nasa = next(line for label, line in rows.items() if label.endswith("NASA"))
    cells = [cell.strip() for cell in nasa.split("│")[2:-1]]
    # SCR, D0, W2 … W14, W16, W28
    assert cells == ["", "x", "", "", "", "", "", "", "", "x", ""]
    drug = next(line for label, line in rows.items() if label.endswith("DRUG"))
    assert [cell.strip() for cell in drug.split("│")[2:-1]] == ["", "×2"] + ["×1"] * 7 + ["", ""]
    assert "W28" in result.output and "d196" in result.output


def test_show_in_french():
    result = CliRunner().invoke(study, ["show", "ns-dupi", "--lang", "fr"])
    assert result.exit_code == 0, result.output
    assert "Score NASA" in result.output
    assert "Bilan biologique de sécurité" in result.output


def test_show_a_broken_study_exits_1(write_study):
    folder = write_study(MINI_STUDY.replace("ratio: 2", "ratio: two"))
    result = CliRunner().invoke(study, ["show", str(folder)])
    assert result.exit_code == 1
    assert "arms.A.ratio" in result.stdout
