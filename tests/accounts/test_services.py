"""Users, roles and tokens: never deleted, always audited, errors name the field."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from trialdesk.accounts.models import DeletionRefused, Membership, User
from trialdesk.accounts.services import (
    AccountError,
    create_api_token,
    create_user,
    grant_role,
    revoke_api_token,
    revoke_role,
    user_for_token,
)
from trialdesk.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_users_are_never_deleted(claire):
    with pytest.raises(DeletionRefused):
        claire.delete()
    with pytest.raises(DeletionRefused):
        User.objects.filter(pk=claire.pk).delete()
    assert User.objects.filter(pk=claire.pk).exists()


def test_passwords_are_hashed_with_argon2(claire):
    assert claire.password.startswith("argon2")


def test_creating_a_user_is_audited_and_refuses_a_duplicate(claire):
    assert AuditEvent.objects.filter(action="user.create", entity_id=str(claire.pk)).exists()
    with pytest.raises(AccountError, match="username: 'claire' is already taken"):
        create_user("claire", "another long password 1")


def test_a_weak_password_is_refused_naming_the_field(studies):
    with pytest.raises(AccountError, match="^password: "):
        create_user("newbie", "123")


def test_a_site_role_needs_a_site_and_a_study_role_takes_none(claire, ns_dupi):
    with pytest.raises(AccountError, match="site: role 'monitor' is held at a site"):
        grant_role(claire, ns_dupi, "monitor", by=None)
    with pytest.raises(AccountError, match="site: role 'sponsor' is study-wide"):
        grant_role(claire, ns_dupi, "sponsor", site=ns_dupi.sites.first(), by=None)


def test_the_database_refuses_a_site_role_without_a_site(claire, ns_dupi):
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=claire, study=ns_dupi, role="coordinator")


def test_revoking_a_role_keeps_the_row_and_audits_the_reason(claire, ns_dupi):
    membership = Membership.objects.get(user=claire, study=ns_dupi)
    revoke_role(membership, by=None, reason="moved to another unit")
    membership.refresh_from_db()
    assert membership.revoked_at is not None
    event = AuditEvent.objects.filter(action="role.revoke").last()
    assert event.reason == "moved to another unit"


def test_an_api_token_is_stored_hashed_and_can_be_revoked(claire):
    token, plain = create_api_token(claire, "laptop", by=claire)
    assert plain.startswith("td_") and plain not in token.key_hash
    assert user_for_token(plain) == claire
    revoke_api_token(token, by=claire)
    assert user_for_token(plain) is None
    assert user_for_token("td_not-a-token") is None
