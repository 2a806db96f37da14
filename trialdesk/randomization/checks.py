"""Deploy-time checks of the randomization app (``trialdesk manage check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


def unblinding_contact_configured(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Warn when nobody would be told of an emergency unblinding."""
    if getattr(settings, "UNBLINDING_NOTIFY_EMAILS", None):
        return []
    return [
        checks.Warning(
            "No sponsor contact is notified of emergency unblindings.",
            hint="Set TRIALDESK_UNBLINDING_EMAIL to the sponsor's unblinded contact (comma-"
            "separated addresses).",
            id="trialdesk.randomization.W001",
        )
    ]
