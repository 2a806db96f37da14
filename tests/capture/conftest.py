"""The schedule tests use the randomization tests' world (sealed list, stocked sites, subjects)."""

from __future__ import annotations

from tests.randomization.conftest import (  # noqa: F401 - fixtures
    _fast_password_hashing,
    _study_files_parsed_once,
    list_dir,
    new_subject,
    sealed,
    stocked,
)
