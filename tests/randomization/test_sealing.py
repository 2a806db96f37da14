"""Importing a list seals it: hashes recorded, rows stored apart, import audited, seal kept."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.randomization.trial_world import NCK_ARMS, TLS_ARMS, random_kits, write_list
from trialdesk.audit.models import AuditEvent
from trialdesk.randomization.errors import BlindingError, ListImportError, SealError
from trialdesk.randomization.models import SealedKit, SealedList, SealedRow
from trialdesk.randomization.sealing import (
    allocations_for,
    arm_for,
    import_list,
    kit_arms_for,
)

pytestmark = pytest.mark.django_db


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_it_records_the_hashes_and_stores_every_row_and_kit(ns_dupi, list_dir):
    result = import_list(ns_dupi, list_dir, by=None)
    sealed = result.sealed_list
    assert result.created
    assert sealed.list_sha256 == _sha(list_dir / "randomization.csv")
    assert sealed.kits_sha256 == _sha(list_dir / "kits.csv")
    assert sealed.rows_per_stratum == {"TLS": 6, "NCK": 3}
    assert (
        list(
            SealedRow.objects.filter(sealed_list=sealed, stratum="TLS").values_list(
                "arm", flat=True
            )
        )
        == TLS_ARMS
    )
    assert SealedKit.objects.filter(sealed_list=sealed).count() == 60


def test_the_import_is_audited_without_any_arm(ns_dupi, list_dir):
    sealed = import_list(ns_dupi, list_dir, by=None).sealed_list
    event = AuditEvent.objects.filter(action="randomization.list.import").last()
    assert event.entity_id == str(sealed.pk)
    changes = json.loads(event.changes)
    assert changes["list_sha256"] == [None, sealed.list_sha256]
    assert "DUPI" not in event.changes and "PBO" not in event.changes


def test_importing_the_identical_list_again_changes_nothing(ns_dupi, list_dir):
    first = import_list(ns_dupi, list_dir, by=None)
    events = AuditEvent.objects.count()
    again = import_list(ns_dupi, list_dir, by=None)
    assert not again.created
    assert again.sealed_list.pk == first.sealed_list.pk
    assert AuditEvent.objects.count() == events
    assert SealedRow.objects.count() == 9


def test_a_different_list_replaces_an_unused_one(ns_dupi, list_dir, tmp_path):
    first = import_list(ns_dupi, list_dir, by=None).sealed_list
    other = write_list(tmp_path / "other", {"TLS": NCK_ARMS, "NCK": NCK_ARMS}, random_kits(8, 4, 3))
    second = import_list(ns_dupi, other, by=None)
    assert second.created and second.replaced.pk == first.pk
    assert list(SealedList.objects.filter(study=ns_dupi, active=True)) == [second.sealed_list]


def test_a_different_list_is_refused_once_anyone_is_allocated(
    ns_dupi, stocked, new_subject, claire, tmp_path
):
    from trialdesk.randomization.allocation import randomize

    randomize(new_subject("TLS"), by=claire)
    other = write_list(tmp_path / "other", {"TLS": NCK_ARMS, "NCK": NCK_ARMS}, random_kits(8, 4, 3))
    with pytest.raises(SealError, match=r"1 subject\(s\) allocated"):
        import_list(ns_dupi, other, by=None)
    assert SealedList.objects.get(study=ns_dupi, active=True).pk == stocked.pk


def test_the_identical_list_is_still_a_no_op_after_allocation(
    ns_dupi, stocked, new_subject, claire, list_dir
):
    from trialdesk.randomization.allocation import randomize

    randomize(new_subject("TLS"), by=claire)
    assert not import_list(ns_dupi, list_dir, by=None).created


def test_a_sidecar_whose_hash_does_not_match_is_refused(ns_dupi, list_dir):
    (list_dir / "randomization.meta.json").write_text(
        json.dumps(
            {
                "study": "ns-dupi",
                "algorithm": "trialdesk list algorithm v1",
                "files": {"randomization.csv": {"sha256": "0" * 64}},
            }
        )
    )
    with pytest.raises(
        ListImportError, match="randomization.csv: sha256 .* differs from the sidecar"
    ):
        import_list(ns_dupi, list_dir, by=None)
    assert not SealedList.objects.exists()


def test_a_matching_sidecar_is_hashed_and_its_algorithm_kept(ns_dupi, list_dir):
    meta = list_dir / "randomization.meta.json"
    meta.write_text(
        json.dumps(
            {
                "study": "ns-dupi",
                "algorithm": "trialdesk list algorithm v1",
                "files": {
                    "randomization.csv": {"sha256": _sha(list_dir / "randomization.csv")},
                    "kits.csv": {"sha256": _sha(list_dir / "kits.csv")},
                },
            }
        )
    )
    sealed = import_list(ns_dupi, list_dir, by=None).sealed_list
    assert sealed.meta_sha256 == _sha(meta)
    assert sealed.algorithm == "trialdesk list algorithm v1"


@pytest.mark.parametrize(
    ("strata", "message"),
    [
        ({"TLS": TLS_ARMS, "NCK": NCK_ARMS, "LYO": NCK_ARMS}, "stratum='LYO' is not a site"),
        ({"TLS": TLS_ARMS}, "stratum='NCK' .* has no rows"),
        ({"TLS": ["DUPI", "PBO", "XYZ"], "NCK": NCK_ARMS}, "arm='XYZ' is not an arm"),
        ({"TLS": ["DUPI", "DUPI", "DUPI"], "NCK": NCK_ARMS}, "block 1: arms .* not in the ratio"),
        ({"TLS": ["DUPI", "PBO"], "NCK": NCK_ARMS}, "block 1: holds 2 row"),
    ],
)
def test_a_malformed_list_is_refused_naming_the_value(ns_dupi, tmp_path, strata, message):
    directory = write_list(tmp_path / "bad", strata, random_kits(8, 4))
    with pytest.raises(ListImportError, match=message):
        import_list(ns_dupi, directory, by=None)
    assert not SealedRow.objects.exists()


def test_a_gap_in_seq_is_refused_with_its_line(ns_dupi, list_dir):
    path = list_dir / "randomization.csv"
    path.write_text(path.read_text().replace("TLS,2,1,3,PBO", "TLS,7,1,3,PBO"))
    with pytest.raises(ListImportError, match="line 3: seq=7 in stratum 'TLS', expected 2"):
        import_list(ns_dupi, list_dir, by=None)


def test_duplicate_kit_numbers_are_refused(ns_dupi, list_dir):
    path = list_dir / "kits.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(ListImportError, match=r"kits.csv: line 62: kit_number=\d+ appears twice"):
        import_list(ns_dupi, list_dir, by=None)


def test_a_missing_file_is_named(ns_dupi, list_dir):
    (list_dir / "kits.csv").unlink()
    with pytest.raises(ListImportError, match="kits.csv: missing"):
        import_list(ns_dupi, list_dir, by=None)


# --- the sealed rows are read only through functions that ask the policy first ------------------


def test_blinded_roles_cannot_read_the_sealed_tables(
    ns_dupi, stocked, new_subject, claire, ines, manon, simon, diane, sophie, paul
):
    from trialdesk.randomization.allocation import randomize

    subject = new_subject("TLS")
    randomize(subject, by=claire)
    tls = ns_dupi.sites.get(code="TLS")
    for user in (claire, ines, manon, simon, diane, sophie, paul):
        with pytest.raises(BlindingError):
            arm_for(user, subject)
        with pytest.raises(BlindingError):
            allocations_for(user, ns_dupi, tls)
        assert allocations_for(user, ns_dupi) == []
        with pytest.raises(BlindingError):
            kit_arms_for(user, tls)


def test_unblinded_roles_read_arms_at_their_sites_only(
    ns_dupi, stocked, new_subject, claire, paul, pierre, ugo
):
    from trialdesk.randomization.allocation import randomize

    tls_subject, nck_subject = new_subject("TLS"), new_subject("NCK")
    randomize(tls_subject, by=claire)
    randomize(nck_subject, by=paul)
    assert arm_for(pierre, tls_subject).code == TLS_ARMS[0]
    with pytest.raises(BlindingError):
        arm_for(pierre, nck_subject)  # the Toulouse pharmacist is blinded to Paris
    assert [r["subject_id"] for r in allocations_for(pierre, ns_dupi)] == [tls_subject.subject_id]
    assert {r["arm"] for r in allocations_for(ugo, ns_dupi)} == {TLS_ARMS[0], NCK_ARMS[0]}
    tls = ns_dupi.sites.get(code="TLS")
    arms = kit_arms_for(pierre, tls)
    assert len(arms) == 24 and set(arms.values()) == {"DUPI", "PBO"}
