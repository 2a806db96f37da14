from __future__ import annotations

from django.apps import AppConfig


class RandomizationConfig(AppConfig):
    name = "trialdesk.randomization"
    label = "randomization"
    verbose_name = "Randomization, drug supply and unblinding"

    def ready(self) -> None:
        from django.core import checks

        from .checks import unblinding_contact_configured

        checks.register(unblinding_contact_configured, checks.Tags.security, deploy=True)
