"""The suite runs against the database it was asked to run against (SQLite or PostgreSQL)."""

from __future__ import annotations

import os

import pytest
from django.db import connection


@pytest.mark.django_db
def test_it_runs_on_the_expected_database():
    expected = os.environ.get("TRIALDESK_EXPECT_DB")
    if expected is None:
        pytest.skip("TRIALDESK_EXPECT_DB not set (set by scripts/test)")
    assert connection.vendor == expected


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_with_foreign_keys():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys")
        assert cursor.fetchone()[0] == 1
