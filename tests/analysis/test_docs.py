"""docs/analysis_datasets.md names every variable and every method."""

from __future__ import annotations

from pathlib import Path

from trialdesk.analysis.datasets import data_dictionary
from trialdesk.analysis.runner import METHODS

DOC = Path(__file__).resolve().parents[2] / "docs" / "analysis_datasets.md"


def test_the_page_names_every_variable_with_its_label():
    text = DOC.read_text(encoding="utf-8")
    for row in data_dictionary():
        assert f"| `{row['name']}` | {row['label']} |" in text, row


def test_the_page_describes_every_method():
    text = DOC.read_text(encoding="utf-8")
    for method in METHODS:
        assert f"| `{method}` |" in text, method
