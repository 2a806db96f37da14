"""``trialdesk randomization import`` and ``trialdesk randomization receive``."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner

from tests.randomization.trial_world import NCK_ARMS, random_kits, write_list
from trialdesk.randomization.commands import randomization
from trialdesk.randomization.models import Kit, SealedList

pytestmark = pytest.mark.django_db


def _run(*args):
    return CliRunner().invoke(randomization, [*args])


def test_import_seals_and_prints_the_hashes(ns_dupi, list_dir):
    result = _run("import", "--study", "ns-dupi", str(list_dir))
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256((list_dir / "randomization.csv").read_bytes()).hexdigest()
    assert "ns-dupi: sealed: rows TLS 6, NCK 3; 60 kits" in result.output
    assert f"{digest}  randomization.csv" in result.output
    again = _run("import", "--study", "ns-dupi", str(list_dir))
    assert again.exit_code == 0 and "already sealed, nothing changed" in again.output
    assert SealedList.objects.count() == 1


def test_import_records_who_imports(ns_dupi, list_dir, ugo):
    assert _run("import", "--study", "ns-dupi", "--by", "ugo", str(list_dir)).exit_code == 0
    assert SealedList.objects.get().imported_by == ugo
    unknown = _run("import", "--study", "ns-dupi", "--by", "nobody", str(list_dir))
    assert unknown.exit_code == 2 and "no active user 'nobody'" in unknown.output


def test_import_refusals_exit_1_with_the_reason(ns_dupi, stocked, tmp_path):
    other = write_list(tmp_path / "other", {"TLS": NCK_ARMS, "NCK": NCK_ARMS}, random_kits(8, 4, 9))
    result = _run("import", "--study", "ns-dupi", str(other))
    assert result.exit_code == 1
    assert "kit(s) received); a different list" in result.output
    missing = _run("import", "--study", "ns-dupi", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1 and "is not a directory" in missing.output
    assert _run("import", "--study", "no-such-study", str(other)).exit_code == 2


def test_receive_per_arm_or_listed_kits(ns_dupi, sealed):
    result = _run(
        "receive",
        "--study",
        "ns-dupi",
        "--site",
        "TLS",
        "--per-arm",
        "3",
        "--expiry",
        "2031-01-31",
        "--lot",
        "A1",
    )
    assert result.exit_code == 0, result.output
    assert "TLS: 6 kits received, expiry 2031-01-31" in result.output
    assert Kit.objects.filter(site__code="TLS", lot="A1").count() == 6
    number = Kit.objects.first().number
    again = _run(
        "receive",
        "--study",
        "ns-dupi",
        "--site",
        "NCK",
        "--kits",
        str(number),
        "--expiry",
        "2031-01-31",
    )
    assert again.exit_code == 1 and f"kit {number} was already received at TLS" in again.output
    bad = _run(
        "receive", "--study", "ns-dupi", "--site", "NCK", "--kits", "12,x", "--expiry", "2031-01-31"
    )
    assert bad.exit_code == 2 and "'x' is not a kit number" in bad.output
    both = _run("receive", "--study", "ns-dupi", "--site", "NCK", "--expiry", "2031-01-31")
    assert both.exit_code == 2 and "give either --kits or --per-arm" in both.output
    elsewhere = _run(
        "receive", "--study", "ns-dupi", "--site", "LYO", "--per-arm", "1", "--expiry", "2031-01-31"
    )
    assert elsewhere.exit_code == 2 and "'LYO' is not a site of ns-dupi" in elsewhere.output
