"""The study definition behind a loaded version: what every service evaluates against.

A record keeps the protocol version it was captured under, so the definition of *that* version
must stay available after an amendment changes the file on disk. Each version's source text is
stored with it (``StudyVersion.source``); the definition is read from the file on disk while its
SHA-256 still matches, and otherwise rebuilt from the stored text. Loaded once per process.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from . import load_study
from .models import Study, StudyVersion
from .schema import Study as StudyDefinition

_lock = threading.Lock()
_loaded: dict[str, StudyDefinition] = {}


class StudyDefinitionUnavailable(RuntimeError):
    """No protocol version is loaded, or its stored source no longer gives its SHA-256."""


def study_definition(study: Study) -> StudyDefinition:
    """The definition of the study's current version.

    Raises
    ------
    StudyDefinitionUnavailable
        The study has no version loaded, or the stored source does not reproduce the recorded
        SHA-256.
    """
    version = study.current_version
    if version is None:
        raise StudyDefinitionUnavailable(f"study: {study.code!r} has no protocol version loaded")
    return version_definition(version)


def version_definition(version: StudyVersion) -> StudyDefinition:
    """The definition of one loaded version (see :func:`study_definition`)."""
    with _lock:
        cached = _loaded.get(version.sha256)
    if cached is not None:
        return cached
    definition = _from_disk(version) or _from_stored_source(version)
    with _lock:
        _loaded[version.sha256] = definition
    return definition


def _from_disk(version: StudyVersion) -> StudyDefinition | None:
    try:
        definition = load_study(version.source_path)
    except Exception:  # noqa: BLE001 - any failure means: use the stored source instead
        return None
    return definition if definition.sha256 == version.sha256 else None


def _from_stored_source(version: StudyVersion) -> StudyDefinition:
    with tempfile.TemporaryDirectory(prefix="trialdesk-study-") as folder:
        for name, text in (version.source or {}).items():
            target = Path(folder, name).resolve()
            if Path(folder).resolve() not in target.parents:
                raise StudyDefinitionUnavailable(f"version: stored file name {name!r} is unsafe")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        try:
            definition = load_study(folder)
        except Exception as exc:
            raise StudyDefinitionUnavailable(
                f"version: the stored source of {version.study.code} v{version.version} "
                f"does not load: {exc}"
            ) from exc
    if definition.sha256 != version.sha256:
        raise StudyDefinitionUnavailable(
            f"version: the stored source of {version.study.code} v{version.version} gives "
            f"sha256 {definition.sha256[:12]}…, not the recorded {version.sha256[:12]}…"
        )
    return definition
