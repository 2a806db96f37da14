from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "trialdesk.demo"
    label = "demo"
    verbose_name = "Demo: the synthetic NS-DUPI trial"
    default_auto_field = "django.db.models.BigAutoField"
