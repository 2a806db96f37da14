"""``trialdesk screen --study ns-dupi FILE.json``: exit codes, the JSON verdict on stdout, and
messages on stderr naming the key and value of invalid input. No database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.screening.screening_data import CRITERIA, WASHOUTS, days_before_screening, eligible_data
from trialdesk.protocol import load_study
from trialdesk.screening import commands
from trialdesk.screening.commands import screen

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _study_loaded_once(monkeypatch, definition, studies_dir):
    """Loading the study file takes about 0.4 s; the ~90 in-process runs share one load of it.
    (Other paths still go through the real loader; the subprocess test runs it all for real.)"""

    def cached(path):
        if Path(path).resolve() == (studies_dir / "ns-dupi").resolve():
            return definition
        return load_study(path)

    monkeypatch.setattr(commands, "load_study", cached)


def _run(tmp_path, data, *extra, raw: str | None = None):
    path = tmp_path / "person.json"
    path.write_text(raw if raw is not None else json.dumps(data), encoding="utf-8")
    return CliRunner().invoke(screen, ["--study", "ns-dupi", *extra, str(path)])


def _verdict(result):
    payload = json.loads(result.stdout)
    return payload["status"], {c["id"]: c["result"] for c in payload["criteria"]}


def test_an_eligible_person_exits_0_with_every_criterion_met_in_study_order(tmp_path):
    result = _run(tmp_path, eligible_data())
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["status"] == "eligible"
    assert [c["id"] for c in payload["criteria"]] == CRITERIA
    for criterion in payload["criteria"]:
        assert set(criterion) == {"id", "kind", "result", "message"}
        assert criterion["result"] == "met" and criterion["message"]
    assert result.stderr == ""


# Both sides of every non-washout boundary, through the command.
BOUNDARIES = [
    ("INC01", {"birth_date": "2007-03-15"}, {"birth_date": "2007-03-16"}),
    ("INC02", {"social_insurance": True}, {"social_insurance": False}),
    ("INC03", {"lekti_staining": "reduced"}, {"lekti_staining": "normal"}),
    ("INC04", {"nasa_total": 5}, {"nasa_total": 4}),
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
    (
        "EXC12",
        {"childbearing_potential": False, "adequate_contraception": False},
        {"childbearing_potential": True, "adequate_contraception": False},
    ),
    ("EXC13", {"questionnaire_incapacity": False}, {"questionnaire_incapacity": True}),
]


@pytest.mark.parametrize(
    ("criterion", "meets", "fails"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES]
)
def test_each_criterion_on_both_sides_through_the_command(tmp_path, criterion, meets, fails):
    met = _run(tmp_path, eligible_data(**meets))
    assert met.exit_code == 0, met.stdout
    assert _verdict(met)[1][criterion] == "met"
    failed = _run(tmp_path, eligible_data(**fails))
    assert failed.exit_code == 1
    status, results = _verdict(failed)
    assert status == "not_eligible"
    assert {cid for cid, r in results.items() if r != "met"} == {criterion}


@pytest.mark.parametrize(
    ("criterion", "key", "weeks"), WASHOUTS, ids=[f"{w[0]}-{w[1]}" for w in WASHOUTS]
)
def test_washout_boundaries_through_the_command(tmp_path, criterion, key, weeks):
    exactly = _run(tmp_path, eligible_data(**{key: days_before_screening(7 * weeks)}))
    assert exactly.exit_code == 0
    assert _verdict(exactly) == ("eligible", dict.fromkeys(CRITERIA, "met"))
    one_less = _run(tmp_path, eligible_data(**{key: days_before_screening(7 * weeks - 1)}))
    assert one_less.exit_code == 1
    status, results = _verdict(one_less)
    assert status == "not_eligible"
    assert {cid for cid, r in results.items() if r != "met"} == {criterion}
    never = _run(tmp_path, eligible_data(**{key: "never"}))
    assert never.exit_code == 0


def test_a_man_with_pregnant_true_meets_the_pregnancy_criterion(tmp_path):
    result = _run(tmp_path, eligible_data(sex="M", pregnant=True))
    assert result.exit_code == 0
    assert _verdict(result)[1]["EXC12"] == "met"


def test_missing_data_is_incomplete_and_exits_1(tmp_path):
    data = eligible_data(nasa_total=None)
    del data["social_insurance"]
    result = _run(tmp_path, data)
    assert result.exit_code == 1
    status, results = _verdict(result)
    assert status == "incomplete"
    assert results["INC02"] == results["INC04"] == "unknown"
    message = next(
        c["message"] for c in json.loads(result.stdout)["criteria"] if c["id"] == "INC04"
    )
    assert "missing data: NASA score" in message


def test_an_empty_object_is_incomplete(tmp_path):
    result = _run(tmp_path, {})
    assert result.exit_code == 1
    assert _verdict(result)[0] == "incomplete"


def test_messages_in_french(tmp_path):
    result = _run(tmp_path, eligible_data(nasa_total=4), "--language", "fr")
    assert result.exit_code == 1
    inc04 = next(c for c in json.loads(result.stdout)["criteria"] if c["id"] == "INC04")
    assert inc04["message"].startswith("Non rempli : Forme modérée à sévère")


INVALID = [
    ({"unknown_key": 1}, "unknown_key: 1 is given for an unknown key"),
    ({"birth_date": "1990-02-30"}, "birth_date: '1990-02-30' is not a date"),
    ({"screening_date": "15/03/2025"}, "screening_date: '15/03/2025' is not a date"),
    ({"nasa_total": "7"}, "nasa_total: '7' is not an integer"),
    ({"nasa_total": 13}, "nasa_total: 13 is above the maximum 12"),
    ({"nasa_total": -1}, "nasa_total: -1 is below the minimum 0"),
    ({"social_insurance": "yes"}, "social_insurance: 'yes' is not true or false"),
    ({"sex": "U"}, "sex: 'U' is not one of the codes (F, M)"),
    ({"lekti_staining": "faint"}, "lekti_staining: 'faint' is not one of the codes"),
    ({"birth_date": "never"}, "birth_date: 'never'"),
    ({"last_biologic": "2025-04-01"}, "last_biologic: '2025-04-01' is refused"),
]


@pytest.mark.parametrize(
    ("changes", "expected"), INVALID, ids=[e.split(":")[0] for _, e in INVALID]
)
def test_invalid_input_exits_2_naming_the_key_and_value_on_stderr(tmp_path, changes, expected):
    result = _run(tmp_path, eligible_data(**changes))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert expected in result.stderr


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"nasa_total": 5, "nasa_total": 6}', "nasa_total: the key is given twice"),
        ('{"nasa_total": NaN}', "NaN is not a JSON number"),
        ("[1, 2]", "(input): [1, 2] is not an object"),
    ],
)
def test_malformed_json_exits_2(tmp_path, raw, expected):
    result = _run(tmp_path, None, raw=raw)
    assert result.exit_code == 2
    assert expected in result.stderr


def test_a_missing_file_or_study_exits_2(tmp_path):
    result = CliRunner().invoke(screen, ["--study", "ns-dupi", str(tmp_path / "absent.json")])
    assert result.exit_code == 2
    assert "absent.json" in result.stderr
    path = tmp_path / "p.json"
    path.write_text("{}")
    result = CliRunner().invoke(screen, ["--study", str(tmp_path / "no-study"), str(path)])
    assert result.exit_code == 2
    assert "no such study file" in result.stderr


def test_the_installed_command_reads_stdin_and_keeps_the_contract(tmp_path):
    """The real ``trialdesk`` entry point in a fresh process (no database is needed)."""
    env_python = [sys.executable, "-m", "trialdesk.cli", "screen", "--study", "ns-dupi", "-"]
    eligible = subprocess.run(
        env_python,
        check=False,
        input=json.dumps(eligible_data()),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert eligible.returncode == 0, eligible.stderr
    assert json.loads(eligible.stdout)["status"] == "eligible"
    invalid = subprocess.run(
        env_python,
        check=False,
        input=json.dumps(eligible_data(nasa_total=99)),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert invalid.returncode == 2
    assert "nasa_total: 99" in invalid.stderr
