"""Broken study files are refused with every problem, each naming its file, line and name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.protocol.study_texts import MINI_FORMS, MINI_STUDY
from trialdesk.protocol import Problem, StudyFileError, load_study


def changed(text: str, old: str, new: str) -> str:
    assert old in text, f"the fixture no longer contains {old!r}"
    return text.replace(old, new, 1)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    found = [number for number, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(found) >= occurrence, f"{needle!r} occurs {len(found)} time(s)"
    return found[occurrence - 1]


def problems_of(folder: Path) -> list[Problem]:
    with pytest.raises(StudyFileError) as caught:
        load_study(folder)
    return caught.value.problems


@dataclass(frozen=True)
class Case:
    file: str  # "study.yaml" or "forms.yaml"
    old: str
    new: str
    name: str
    line_needle: str
    fragment: str
    occurrence: int = 1


ARMS = """\
arms:
  - code: A
    name: {en: "Active", fr: "Actif"}
    ratio: 2
  - code: P
    name: {en: "Placebo", fr: "Placebo"}
    ratio: 1
"""

CASES = {
    "unknown item in a rule": Case(
        "study.yaml", "condition: score >= 5", "condition: scor >= 5",
        "scor", "condition: scor", "unknown name 'scor' (did you mean 'score'?)"),
    "duplicate visit": Case(
        "study.yaml", "  - code: W4\n", "  - code: W2\n",
        "W2", "- code: W2", "duplicate visit 'W2'", occurrence=2),
    "window overlap between consecutive visits": Case(
        "study.yaml", "    day: 28\n    window_before: 3", "    day: 28\n    window_before: 12",
        "W4", "window_before: 12", "overlaps the window of W2 (days 11 to 17)"),
    "bad code list reference": Case(
        "forms.yaml", "codelist: SEX", "codelist: SEXE",
        "SEXE", "codelist: SEXE", "unknown code list 'SEXE' (did you mean 'SEX'?)"),
    "expression syntax error": Case(
        "study.yaml", "condition: score >= 5", "condition: score >= (5",
        "eligibility.INC02.condition", "condition: score", "syntax error"),
    "block sizes that do not match the ratio of the arms": Case(
        "study.yaml", "block_sizes: [3, 6]", "block_sizes: [3, 4]",
        "block_sizes", "block_sizes", "a block of 4 cannot hold the ratio 2:1 of arms A, P"),
    "ratio changed without the block sizes": Case(
        "study.yaml", "    ratio: 1\n", "    ratio: 2\n",
        "block_sizes", "block_sizes", "cannot hold the ratio 2:2"),
    "randomized study without arms": Case(
        "study.yaml", ARMS, "arms: []\n",
        "arms", "kind: randomized", "a randomized study needs at least two arms"),
    "unknown form in the schedule": Case(
        "study.yaml", "W4: [VITALS]", "W4: [VITALS, LABS]",
        "LABS", "W4: [VITALS, LABS]", "unknown form 'LABS'"),
    "duplicate item code": Case(
        "forms.yaml", "      - code: height", "      - code: weight",
        "weight", "- code: weight", "duplicate item 'weight' in form VITALS", occurrence=2),
    "min greater than max": Case(
        "forms.yaml", "        min: 40\n        max: 250", "        min: 400\n        max: 250",
        "height", "max: 250", "min 400 is greater than max 250"),
    "unknown function": Case(
        "study.yaml", "condition: age_years(", "condition: age_in_years(",
        "age_in_years", "condition: age_in_years", "unknown function 'age_in_years'"),
    "missing required key": Case(
        "study.yaml", "    day: 14\n", "",
        "visits.W2.day", "- code: W2", "required key is missing"),
    "wrong type": Case(
        "study.yaml", "    ratio: 2\n", "    ratio: two\n",
        "arms.A.ratio", "ratio: two", "valid integer"),
    "misspelt key": Case(
        "study.yaml", "    window_after: 3\n", "    window_aftr: 3\n",
        "visits.W2.window_aftr", "window_aftr", "did you mean 'window_after'?"),
    "duplicate YAML key": Case(
        "study.yaml", "kind: randomized\n", "kind: randomized\ntitle: Again\n",
        "title", "title: Again", "duplicate key (first on line 3)"),
    "unknown name in an included file's edit check": Case(
        "forms.yaml", "expression: weight >", "expression: weigth >",
        "weigth", "expression: weigth", "unknown name 'weigth' (did you mean 'weight'?)"),
    "unknown setting": Case(
        "forms.yaml", "settings.heavy_kg", "settings.heavy",
        "settings.heavy", "settings.heavy", "unknown setting 'heavy'"),
    "a code its code list lacks": Case(
        "study.yaml", 'applies_when: sex == "F"', 'applies_when: sex == "female"',
        "female", "applies_when", "'female' is not one of the codes (F, M)"),
    "a rule that is not a truth value": Case(
        "study.yaml", "condition: pregnant", "condition: score + 1",
        "EXC01", "condition: score + 1", "must be a boolean but is a number"),
    "last dosing week that is not the last dosing visit": Case(
        "study.yaml", "last_dosing_week: 2", "last_dosing_week: 4",
        "last_dosing_week", "last_dosing_week", "last dosing visit W2 is on day 14"),
    "unknown visit in the dosing regimen": Case(
        "study.yaml", "{D0: 2, W2: 1}", "{D0: 2, W3: 1}",
        "W3", "units_per_visit", "unknown visit 'W3'"),
    "edit check on an unknown form": Case(
        "forms.yaml", "    form: VITALS", "    form: VITAL",
        "VITAL", "form: VITAL", "unknown form 'VITAL' (did you mean 'VITALS'?)"),
    "observational study with arms": Case(
        "study.yaml", "kind: randomized", "kind: observational",
        "arms", "arms:", "an observational study has no arms"),
    "invalid code": Case(
        "study.yaml", "  - code: D0\n", "  - code: d0\n",
        "visits.d0.code", "- code: d0", "'d0' is not a code"),
    "include that matches nothing": Case(
        "study.yaml", "  - forms.yaml", "  - form.yaml",
        "form.yaml", "- form.yaml", "no file matches this include"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_broken_study_names_file_line_and_name(write_study, case):
    study, forms = MINI_STUDY, MINI_FORMS
    if case.file == "study.yaml":
        study = changed(study, case.old, case.new)
        text = study
    else:
        forms = changed(forms, case.old, case.new)
        text = forms
    folder = write_study(study, forms)
    expected_file = str(folder / case.file)
    expected_line = line_of(text, case.line_needle, case.occurrence)

    problems = problems_of(folder)

    matching = [p for p in problems if p.name == case.name and case.fragment in p.message]
    assert matching, "\n".join(map(str, problems))
    problem = matching[0]
    assert (problem.file, problem.line, problem.name) == (expected_file, expected_line, case.name)
    assert str(problem) == f"{expected_file}:{expected_line}: {case.name}: {problem.message}"


def test_the_minimal_study_is_valid(write_study):
    study = load_study(write_study())
    assert (study.id, study.version, study.kind) == ("mini", "1.0", "randomized")
    assert [form.code for form in study.forms] == ["SCR", "VITALS", "DRUG"]


def test_every_problem_is_reported_not_just_the_first(write_study):
    study = changed(MINI_STUDY, "    ratio: 2\n", "    ratio: two\n")  # shape of one element
    study = changed(study, "W4: [VITALS]", "W4: [VITALS, LABS]")  # a reference
    study = changed(study, "condition: score >= 5", "condition: scor >= 5")  # an expression
    study = changed(study, "kind: randomized\n", "kind: randomized\ntitle: Again\n")  # YAML
    forms = changed(MINI_FORMS, "codelist: SEX", "codelist: SEXE")  # in the included file
    folder = write_study(study, forms)

    problems = problems_of(folder)

    names = {problem.name for problem in problems}
    assert {"title", "arms.A.ratio", "LABS", "scor", "SEXE"} <= names, "\n".join(map(str, problems))
    files = [problem.file for problem in problems]
    assert files == sorted(files, key=lambda f: not f.endswith("study.yaml"))  # main file first


def test_a_form_dropped_for_its_shape_does_not_cascade(write_study):
    forms = changed(MINI_FORMS, "        unit: kg\n", "        unit: 3\n")
    problems = problems_of(write_study(MINI_STUDY, forms))
    assert [p.name for p in problems] == ["forms.VITALS.items.weight.unit"], problems


def test_a_setting_dropped_for_its_shape_does_not_cascade(write_study):
    study = changed(MINI_STUDY, "    value: 150\n", "    value: {kg: 150}\n")
    problems = problems_of(write_study(study))
    assert [p.name for p in problems] == ["settings.heavy_kg.value"], problems


def test_a_yaml_syntax_error_names_its_line(write_study):
    study = changed(MINI_STUDY, "W4: [VITALS]", "W4: [VITALS")
    folder = write_study(study)
    [problem] = problems_of(folder)
    assert (problem.file, problem.name) == (str(folder / "study.yaml"), "yaml")
    assert problem.line == line_of(study, "dosing:")
    assert "YAML syntax error" in problem.message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "a study file is a mapping"),
        ("- id: x\n", "a study file is a mapping"),
        ("id: [unclosed\n", "YAML syntax error"),
    ],
)
def test_files_that_are_not_study_files_are_refused_without_traceback(tmp_path, text, fragment):
    (tmp_path / "study.yaml").write_text(text, encoding="utf-8")
    problems = problems_of(tmp_path)
    assert fragment in problems[0].message


def test_a_missing_study_is_a_problem_not_a_traceback(tmp_path):
    [problem] = problems_of(tmp_path / "nowhere")
    assert problem.file == str(tmp_path / "nowhere" / "study.yaml")
    assert problem.line is None
    assert problem.message == "no such study file"


def test_a_file_that_is_not_utf8_is_a_problem(tmp_path):
    (tmp_path / "study.yaml").write_bytes(b"id: \xff\xfe\n")
    [problem] = problems_of(tmp_path)
    assert "cannot be read" in problem.message


def test_includes_stay_inside_the_study_directory(write_study, tmp_path):
    (tmp_path / "outside.yaml").write_text("forms: []\n", encoding="utf-8")
    study = changed(MINI_STUDY, "  - forms.yaml", "  - forms.yaml\n  - ../outside.yaml")
    problems = problems_of(write_study(study))
    assert [(p.name, p.message) for p in problems] == [
        ("../outside.yaml", "included files must be inside the study directory")
    ]


def test_an_included_file_may_not_redeclare_the_study(write_study):
    forms = MINI_FORMS + "visits: []\n"
    folder = write_study(MINI_STUDY, forms)
    [problem] = problems_of(folder)
    assert (problem.file, problem.line, problem.name) == (
        str(folder / "forms.yaml"),
        line_of(forms, "visits: []"),
        "visits",
    )


def test_a_setting_declared_twice_across_files(write_study):
    forms = MINI_FORMS + "settings:\n  heavy_kg:\n    value: 1\n    label: {en: x, fr: x}\n"
    folder = write_study(MINI_STUDY, forms)
    [problem] = problems_of(folder)
    assert problem.name == "heavy_kg"
    assert f"also at {folder / 'study.yaml'}:{line_of(MINI_STUDY, 'heavy_kg:')}" in problem.message


def test_the_hash_ignores_comments_and_layout_but_not_content(write_study):
    first = load_study(write_study()).sha256
    assert len(first) == 64
    commented = "# a comment\n" + changed(MINI_STUDY, "ratio: 2", "ratio:    2   # two")
    assert load_study(write_study(commented)).sha256 == first
    relabelled = changed(MINI_STUDY, '{en: "Active", fr: "Actif"}', '{en: "Drug", fr: "Actif"}')
    assert load_study(write_study(relabelled)).sha256 != first


def test_moving_a_form_between_files_keeps_the_hash(write_study):
    first = load_study(write_study()).sha256
    scr, rest = MINI_FORMS.split("  - code: VITALS\n", 1)
    study = changed(MINI_STUDY, "codelists:", scr.replace("forms:\n", "forms:\n", 1) + "codelists:")
    moved = load_study(write_study(study, "forms:\n  - code: VITALS\n" + rest))
    assert moved.sha256 == first
