"""The marker of a study filled with synthetic data by ``trialdesk demo``."""

from __future__ import annotations

from django.db import models

from trialdesk.protocol.models import Study


class DemoMarker(models.Model):
    """One row per study built by the demo generator: its data are synthetic."""

    study = models.OneToOneField(Study, on_delete=models.PROTECT, related_name="+")
    seed = models.BigIntegerField()
    today = models.DateField(help_text="The reference date the demo was built for.")
    built_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"synthetic data in {self.study.code} (seed {self.seed})"
