"""A version's definition survives an amendment of the file on disk."""

from __future__ import annotations

import shutil

import pytest

from trialdesk.protocol import definitions
from trialdesk.protocol.definitions import StudyDefinitionUnavailable, version_definition
from trialdesk.protocol.services import load_study_into_db

pytestmark = pytest.mark.django_db


@pytest.fixture
def study_copy(tmp_path, studies_dir, monkeypatch):
    monkeypatch.setattr(definitions, "_loaded", {})
    folder = tmp_path / "ns-dupi"
    shutil.copytree(studies_dir / "ns-dupi", folder)
    return folder


def test_it_reads_the_file_on_disk_while_it_matches(study_copy):
    version = load_study_into_db(study_copy).version
    assert version_definition(version).sha256 == version.sha256


def test_an_amended_file_on_disk_does_not_change_an_old_versions_definition(study_copy):
    version = load_study_into_db(study_copy).version
    main = study_copy / "study.yaml"
    main.write_text(main.read_text().replace("version:", "version: '9.9'\n_old_version:", 1))
    shutil.rmtree(study_copy / "forms")
    definition = version_definition(version)
    assert definition.sha256 == version.sha256
    assert definition.version == version.version


def test_a_stored_source_that_no_longer_matches_is_refused(study_copy):
    version = load_study_into_db(study_copy).version
    shutil.rmtree(study_copy)
    version.source = {
        name: text.replace("Netherton", "Nethertonn") for name, text in version.source.items()
    }
    with pytest.raises(StudyDefinitionUnavailable, match="not the recorded"):
        version_definition(version)
