"""The example in docs/study_files.md is a valid study file."""

from __future__ import annotations

import re

from trialdesk.protocol import load_study


def test_the_documented_minimal_study_loads(studies_dir, tmp_path):
    text = (studies_dir.parent / "docs" / "study_files.md").read_text(encoding="utf-8")
    section = text.split("## A minimal study", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    (tmp_path / "study.yaml").write_text(example, encoding="utf-8")
    study = load_study(tmp_path)
    assert (study.id, [form.code for form in study.forms]) == ("mini", ["SCR", "VITALS"])
    assert study.criterion("INC01").condition.names == {"birth_date", "screening_date"}
