"""The studies a database holds, the protocol versions loaded into it, and their sites.

The protocol itself is the study file (see ``docs/study_files.md``); these rows record which
version of it was loaded, when and by whom, so every captured record can name the version it
was captured under.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StudyKind(models.TextChoices):
    RANDOMIZED = "randomized", "Randomized trial"
    OBSERVATIONAL = "observational", "Observational cohort"


class Study(models.Model):
    code = models.SlugField(
        max_length=64, unique=True, help_text="The study file's id, e.g. ns-dupi."
    )
    title = models.CharField(max_length=300)
    kind = models.CharField(max_length=16, choices=StudyKind.choices)
    current_version = models.ForeignKey(
        "StudyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class StudyVersion(models.Model):
    """One loaded version of a study file (an amendment is a new version)."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=32)
    sha256 = models.CharField(max_length=64)
    source_path = models.CharField(max_length=500)
    source = models.JSONField(help_text="The study file's text, by file name, as loaded.")
    loaded_at = models.DateTimeField(auto_now_add=True)
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "version"], name="study_version_unique")
        ]
        ordering = ["study", "loaded_at"]

    def __str__(self) -> str:
        return f"{self.study.code} v{self.version}"


class Site(models.Model):
    """A centre taking part in a study (from the study file's ``sites``)."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="sites")
    code = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    city = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "code"], name="site_code_unique")]
        ordering = ["study", "code"]

    def __str__(self) -> str:
        return f"{self.study.code}/{self.code}"
