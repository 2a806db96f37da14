from __future__ import annotations

from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "trialdesk.safety"
    label = "safety"
    verbose_name = "Safety: adverse events, SAE clocks, laboratory grading"

    def ready(self) -> None:
        from django.core import checks

        from trialdesk.capture.signals import form_saved

        from .checks import safety_contact_configured
        from .models import FormRecord
        from .services import on_form_saved

        form_saved.connect(on_form_saved, sender=FormRecord, dispatch_uid="safety.derive")
        checks.register(safety_contact_configured, checks.Tags.security, deploy=True)
