"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def refdata_dir() -> Path:
    """The project's reference data (``../shared/refdata`` beside the repository by default)."""
    path = Path(os.environ.get("TRIALDESK_REFDATA", REPO.parent / "shared" / "refdata"))
    if not path.is_dir():
        pytest.fail(f"reference data not found at {path}; set TRIALDESK_REFDATA")
    return path


@pytest.fixture(scope="session")
def studies_dir() -> Path:
    return REPO / "studies"
