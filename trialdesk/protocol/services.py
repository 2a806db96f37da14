"""Loading study files into the database: versions recorded, sites created, the load audited."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from trialdesk.audit.services import record

from . import load_study
from .models import Site, Study, StudyVersion


class StudyVersionConflict(ValueError):
    """A study version already loaded with other content: an amendment needs a new version."""


@dataclass(frozen=True)
class LoadResult:
    study: Study
    version: StudyVersion
    created: bool


def resolve_study_path(id_or_path: str | Path) -> Path:
    """A study directory from its id (under ``settings.STUDIES_DIR``) or a path."""
    path = Path(id_or_path)
    if path.exists():
        return path
    return Path(settings.STUDIES_DIR) / str(id_or_path)


def _source_files(path: Path) -> dict[str, str]:
    folder = path if path.is_dir() else path.parent
    return {
        str(p.relative_to(folder)): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in {".yaml", ".yml", ".po", ".md"}
    }


def load_study_into_db(id_or_path: str | Path, *, by: Any = None) -> LoadResult:
    """Validate a study file and record it; loading the same version again changes nothing.

    Raises :class:`trialdesk.protocol.StudyFileError` for an invalid file and
    :class:`StudyVersionConflict` when the version exists with different content.
    """
    path = resolve_study_path(id_or_path)
    definition = load_study(path)
    with transaction.atomic():
        study, _ = Study.objects.select_for_update().get_or_create(
            code=definition.id,
            defaults={"title": definition.title, "kind": definition.kind},
        )
        existing = study.versions.filter(version=definition.version).first()
        if existing is not None:
            if existing.sha256 != definition.sha256:
                raise StudyVersionConflict(
                    f"version: {definition.id} version {definition.version!r} is already loaded "
                    f"with other content (sha256 {existing.sha256[:12]}…); "
                    "an amendment needs a new version number"
                )
            return LoadResult(study, existing, created=False)
        version = StudyVersion.objects.create(
            study=study,
            version=definition.version,
            sha256=definition.sha256,
            source_path=str(path),
            source=_source_files(path),
            loaded_by=by if getattr(by, "pk", None) else None,
        )
        previous = study.current_version.version if study.current_version_id else None
        Study.objects.filter(pk=study.pk).update(
            current_version=version, title=definition.title, kind=definition.kind
        )
        study.refresh_from_db()
        for site in definition.sites:
            Site.objects.update_or_create(
                study=study,
                code=site.code,
                defaults={"name": site.name, "city": getattr(site, "city", "") or ""},
            )
        record(
            "study.load",
            user=by,
            entity=version,
            study=study.code,
            changes={
                "version": [previous, definition.version],
                "sha256": definition.sha256,
                "sites": [s.code for s in definition.sites],
            },
        )
    return LoadResult(study, version, created=True)
