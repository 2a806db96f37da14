"""Runs of the analysis plan and their results, with provenance.

An :class:`AnalysisRun` is one execution of ``trialdesk analyze``: which study-file version (and
its SHA-256), which plan (and its SHA-256), which trialdesk version, seed, blinded or not, the
SHA-256 of every dataset it built, when it started and finished. Each declared analysis gives
one :class:`AnalysisResult` with its tables as JSON, or the reason it could not run. Rows are
written by :mod:`trialdesk.analysis.runner` only, audited in their transaction.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from trialdesk.protocol.models import Study, StudyVersion


class ResultStatus(models.TextChoices):
    DONE = "done", _("Done")
    NOT_RUN = "not_run", _("Not run")
    BLINDED = "blinded", _("Blinded (pooled summary only)")


class AnalysisRun(models.Model):
    """One run of a study's analysis plan over datasets built at that moment."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="analysis_runs")
    study_version = models.ForeignKey(StudyVersion, on_delete=models.PROTECT, related_name="+")
    study_version_label = models.CharField(max_length=32)
    study_sha256 = models.CharField(max_length=64)
    plan_version = models.CharField(max_length=32)
    plan_sha256 = models.CharField(max_length=64)
    code_version = models.CharField(max_length=64, help_text="trialdesk version.")
    seed = models.BigIntegerField()
    blinded = models.BooleanField()
    dataset_hashes = models.JSONField(help_text="Dataset name to SHA-256 of its canonical CSV.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["study", "started_at", "id"]

    def __str__(self) -> str:
        kind = "blinded" if self.blinded else "unblinded"
        return f"{self.study.code} {kind} run {self.pk} (seed {self.seed})"


class AnalysisResult(models.Model):
    """One declared analysis of a run: its tables, or why it did not run."""

    run = models.ForeignKey(AnalysisRun, on_delete=models.PROTECT, related_name="results")
    analysis_id = models.CharField(max_length=64)
    label = models.CharField(max_length=300)
    method = models.CharField(max_length=32)
    population = models.CharField(max_length=8)
    dataset = models.CharField(max_length=16)
    dataset_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=ResultStatus.choices)
    reason = models.TextField(blank=True)
    n_subjects = models.PositiveIntegerField(default=0)
    tables = models.JSONField(default=dict, help_text="Table name to a list of row mappings.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "analysis_id"], name="analysis_result_once"),
        ]
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.analysis_id}: {self.status}"
