"""Logins, failed logins and lockouts are audited from the first day."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed


def _client(request: Any) -> dict[str, str]:
    if request is None:
        return {}
    return {
        "ip": request.META.get("REMOTE_ADDR", ""),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:200],
    }


def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    from .services import audit_login_event

    audit_login_event("auth.login", user=user, details=_client(request))


def on_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    from .services import audit_login_event

    audit_login_event(
        "auth.login_failed",
        username=str(credentials.get("username", ""))[:150],
        details=_client(request),
    )


def on_locked_out(
    sender: Any,
    request: Any = None,
    username: str | None = None,
    ip_address: str | None = None,
    **kwargs: Any,
) -> None:
    from .services import audit_login_event

    audit_login_event("auth.lockout", username=(username or "")[:150], details=_client(request))


def connect() -> None:
    from axes.signals import user_locked_out

    user_logged_in.connect(on_login, dispatch_uid="trialdesk.audit.login")
    user_login_failed.connect(on_login_failed, dispatch_uid="trialdesk.audit.login_failed")
    user_locked_out.connect(on_locked_out, dispatch_uid="trialdesk.audit.lockout")
