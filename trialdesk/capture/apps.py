from __future__ import annotations

from django.apps import AppConfig


class CaptureConfig(AppConfig):
    name = "trialdesk.capture"
    label = "capture"
    verbose_name = "Visits and data capture"

    def ready(self) -> None:
        from trialdesk.randomization.signals import subject_randomized

        from .schedule import plan_on_randomization

        subject_randomized.connect(plan_on_randomization, dispatch_uid="capture.plan_schedule")
