"""The operational commands, run as a newcomer runs them: in a fresh process, on a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TRIALDESK = [sys.executable, "-m", "trialdesk.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        {"TRIALDESK_VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "trialdesk.settings"}
    )
    env.update(extra)
    return env


def _run(args, env, check=True):
    result = subprocess.run(
        [*TRIALDESK, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def test_setup_prepares_everything_and_prints_demo_credentials_once(tmp_path):
    env = _env(tmp_path)
    first = _run(["setup"], env).stdout
    assert "study ns-dupi v" in first and "(sites: NCK, TLS)" in first
    assert "study ns-cohort v" in first
    assert "translations compiled: 1 catalog(s)" in first
    for username in (
        "investigator.tls",
        "coordinator.tls",
        "pharmacist.tls",
        "monitor",
        "datamanager",
        "statistician",
        "unblinded.statistician",
        "dsmb",
        "sponsor",
    ):
        assert f"  {username} " in first
    assert (tmp_path / "var" / "secret_key").exists()
    second = _run(["setup"], env).stdout
    assert "already loaded" in second and "demo users already exist" in second
    assert "investigator.tls " not in second
    verify = _run(["audit", "verify"], env).stdout
    assert verify.startswith("intact: ")


def test_the_deploy_check_is_clean_in_production_settings(tmp_path):
    env = _env(
        tmp_path,
        TRIALDESK_SECRET_KEY="x" * 20 + "-production-secret-key-with-enough-entropy-9f3k",
        TRIALDESK_HTTPS="1",
        TRIALDESK_ALLOWED_HOSTS="trialdesk.example.org",
        TRIALDESK_UNBLINDING_EMAIL="unblinded.safety@sponsor.example.org",
        TRIALDESK_SAFETY_EMAIL="safety@sponsor.example.org",
    )
    result = _run(["manage", "check", "--deploy", "--fail-level", "WARNING"], env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_check_flags_the_placeholder_secret_key(tmp_path):
    env = _env(tmp_path, TRIALDESK_HTTPS="1")
    result = _run(["manage", "check", "--deploy", "--fail-level", "WARNING"], env, check=False)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stdout + result.stderr


def test_stats_imports_no_django():
    code = (
        "import sys, trialdesk.stats; "
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("args", [["--help"], ["study", "--help"], ["audit", "--help"]])
def test_the_cli_answers_help(args, tmp_path):
    assert _run(args, _env(tmp_path)).returncode == 0
