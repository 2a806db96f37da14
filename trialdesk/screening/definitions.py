"""The loaded study file behind a study row: the definition screening evaluates against."""

from __future__ import annotations

import threading

from trialdesk.protocol import load_study
from trialdesk.protocol.models import Study, StudyVersion
from trialdesk.protocol.schema import Study as StudyDefinition

_lock = threading.Lock()
_loaded: dict[tuple[str, str], StudyDefinition] = {}


class StudyDefinitionUnavailable(RuntimeError):
    """The study file of a study's current version cannot be found or has changed."""


def study_definition(study: Study) -> StudyDefinition:
    """The study file of the study's current version, loaded once per process.

    Raises
    ------
    StudyDefinitionUnavailable
        No version loaded, or the file at the recorded path no longer has the recorded SHA-256
        (an amendment must be loaded as a new version first).
    """
    version = study.current_version
    if version is None:
        raise StudyDefinitionUnavailable(f"study: {study.code!r} has no protocol version loaded")
    return version_definition(version)


def version_definition(version: StudyVersion) -> StudyDefinition:
    """The study file of one loaded version (see :func:`study_definition`)."""
    key = (version.source_path, version.sha256)
    with _lock:
        cached = _loaded.get(key)
    if cached is not None:
        return cached
    definition = load_study(version.source_path)
    if definition.sha256 != version.sha256:
        raise StudyDefinitionUnavailable(
            f"version: the study file at {version.source_path} has changed since version "
            f"{version.version} of {version.study.code} was loaded "
            f"(sha256 {definition.sha256[:12]}… ≠ {version.sha256[:12]}…); load it as a new version"
        )
    with _lock:
        _loaded[key] = definition
    return definition
