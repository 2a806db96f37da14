"""A minimal valid study, written to a temporary directory, that tests break one way at a time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.protocol.study_texts import MINI_FORMS, MINI_STUDY


@pytest.fixture
def write_study(tmp_path: Path) -> Callable[..., Path]:
    """Write the minimal study (optionally changed) and return its directory.

    ``study`` and ``forms`` replace the texts of ``study.yaml`` and ``forms.yaml``.
    """

    def write(study: str = MINI_STUDY, forms: str = MINI_FORMS) -> Path:
        folder = tmp_path / "mini"
        folder.mkdir(exist_ok=True)
        (folder / "study.yaml").write_text(study, encoding="utf-8")
        (folder / "forms.yaml").write_text(forms, encoding="utf-8")
        return folder

    return write
