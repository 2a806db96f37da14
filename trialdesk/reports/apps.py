"""The reports app (its templates)."""

from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "trialdesk.reports"
    label = "reports"
    verbose_name = "Reports"
