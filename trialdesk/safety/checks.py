"""Deploy-time checks of the safety app (``trialdesk manage check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


def safety_contact_configured(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when nobody would be told of a serious adverse event."""
    if getattr(settings, "SAFETY_NOTIFY_EMAILS", None):
        return []
    return [
        checks.Warning(
            "No sponsor safety contact is notified of serious adverse events.",
            hint="Set TRIALDESK_SAFETY_EMAIL to the sponsor's safety contact (comma-separated "
            "addresses).",
            id="trialdesk.safety.W001",
        )
    ]
