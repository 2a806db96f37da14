"""The SYNTHETIC DATA banner: every page says so once a demo trial is loaded."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .models import DemoMarker


def synthetic_banner(request: HttpRequest) -> dict[str, Any]:
    """``synthetic_data`` is true when any study of this installation holds demo data."""
    return {"synthetic_data": DemoMarker.objects.exists()}
