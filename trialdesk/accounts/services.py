"""Every change to users, roles and tokens goes through here, and is audited."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from trialdesk.audit.services import record
from trialdesk.lib.hashing import sha256_hex
from trialdesk.protocol.models import Site, Study

from .models import SITE_ROLES, ApiToken, Membership, Role, User


class AccountError(ValueError):
    """A request about users or roles that cannot be carried out; the message says why."""


def create_user(
    username: str,
    password: str,
    *,
    by: User | None = None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    check_password: bool = True,
) -> User:
    if User.objects.filter(username=username).exists():
        raise AccountError(f"username: {username!r} is already taken")
    if check_password:
        try:
            validate_password(password, User(username=username, email=email))
        except ValidationError as exc:
            raise AccountError(f"password: {' '.join(exc.messages)}") from exc
    with transaction.atomic():
        user = User.objects.create_user(
            username=username,
            password=password,
            email=email,
            first_name=first_name,
            last_name=last_name,
        )
        record(
            "user.create",
            user=by,
            entity=user,
            changes={"username": [None, username], "email": [None, email]},
        )
    return user


def set_active(user: User, active: bool, *, by: User | None, reason: str) -> None:
    if not reason:
        raise AccountError("reason: a reason is required to activate or deactivate a user")
    with transaction.atomic():
        old = user.is_active
        User.objects.filter(pk=user.pk).update(is_active=active)
        user.is_active = active
        record(
            "user.deactivate" if not active else "user.activate",
            user=by,
            entity=user,
            changes={"is_active": [old, active]},
            reason=reason,
        )


def set_password(
    user: User, password: str, *, by: User | None, check_password: bool = True
) -> None:
    if check_password:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise AccountError(f"password: {' '.join(exc.messages)}") from exc
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        record("user.password", user=by, entity=user, changes={"password": ["***", "***"]})


def grant_role(
    user: User, study: Study, role: Role | str, *, site: Site | None = None, by: User | None
) -> Membership:
    role = Role(role)
    if role in SITE_ROLES and site is None:
        raise AccountError(f"site: role {role.value!r} is held at a site; name the site")
    if role not in SITE_ROLES and site is not None:
        raise AccountError(f"site: role {role.value!r} is study-wide; it takes no site")
    if site is not None and site.study_id != study.pk:
        raise AccountError(f"site: {site.code!r} is not a site of study {study.code!r}")
    with transaction.atomic():
        existing = Membership.objects.filter(
            user=user, study=study, site=site, role=role, revoked_at__isnull=True
        ).first()
        if existing:
            return existing
        membership = Membership.objects.create(user=user, study=study, site=site, role=role)
        record(
            "role.grant",
            user=by,
            entity=membership,
            study=study.code,
            site=site.code if site else "",
            changes={"user": user.username, "role": [None, role.value]},
        )
    return membership


def revoke_role(membership: Membership, *, by: User | None, reason: str) -> None:
    if not reason:
        raise AccountError("reason: a reason is required to revoke a role")
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk).update(revoked_at=timezone.now())
        record(
            "role.revoke",
            user=by,
            entity=membership,
            study=membership.study.code,
            site=membership.site.code if membership.site_id else "",
            changes={"user": membership.user.username, "role": [membership.role, None]},
            reason=reason,
        )


TOKEN_PREFIX = "td_"  # noqa: S105 - a public marker, not a secret


def create_api_token(user: User, name: str, *, by: User | None) -> tuple[ApiToken, str]:
    """Create a token and return it with its plain text, which is never stored nor shown again."""
    if not name.strip():
        raise AccountError("name: a token needs a name")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name.strip(), prefix=plain[:10], key_hash=sha256_hex(plain)
        )
        record(
            "token.create",
            user=by or user,
            entity=token,
            changes={"owner": user.username, "name": token.name, "prefix": token.prefix},
        )
    return token, plain


def revoke_api_token(token: ApiToken, *, by: User | None) -> None:
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
        record("token.revoke", user=by, entity=token, changes={"prefix": token.prefix})


def user_for_token(plain: str) -> User | None:
    """The active user owning a valid, unrevoked token, or ``None``."""
    if not plain.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=sha256_hex(plain), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def audit_login_event(
    action: str, *, user: Any = None, username: str = "", details: dict | None = None
) -> None:
    """Record a login, failed login or lockout in its own transaction."""
    with transaction.atomic():
        record(
            action,
            user=user,
            username=username,
            entity_type="accounts.user",
            entity_id=getattr(user, "pk", "") or "",
            changes=details or {},
        )
