"""Users (never deleted, only deactivated), role memberships per study and site, API tokens."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils.translation import gettext_lazy as _

from trialdesk.protocol.models import Site, Study


class DeletionRefused(Exception):
    """Users and memberships are kept for the audit trail; deactivate or revoke instead."""


class Role(models.TextChoices):
    INVESTIGATOR = "investigator", _("Investigator")
    COORDINATOR = "coordinator", _("Coordinator (research nurse)")
    PHARMACIST = "pharmacist", _("Unblinded pharmacist")
    MONITOR = "monitor", _("Monitor")
    DATA_MANAGER = "data_manager", _("Data manager")
    STATISTICIAN = "statistician", _("Blinded statistician")
    UNBLINDED_STATISTICIAN = "unblinded_statistician", _("Unblinded statistician")
    DSMB = "dsmb", _("DSMB member")
    SPONSOR = "sponsor", _("Sponsor viewer")


#: Roles held at one site (the membership names the site).
SITE_ROLES = frozenset({Role.INVESTIGATOR, Role.COORDINATOR, Role.PHARMACIST, Role.MONITOR})
#: Roles held for the whole study (the membership names no site).
STUDY_ROLES = frozenset(set(Role) - SITE_ROLES)


class _NoDeleteQuerySet(models.QuerySet):
    def delete(self):  # type: ignore[override]
        raise DeletionRefused(f"{self.model.__name__} rows are never deleted")


class _TrialdeskUserManager(UserManager.from_queryset(_NoDeleteQuerySet)):  # type: ignore[misc]
    pass


class User(AbstractUser):
    """A person with an account. Never deleted: ``is_active = False`` ends access."""

    objects = _TrialdeskUserManager()

    class Meta:
        ordering = ["username"]

    def delete(self, *args, **kwargs):  # type: ignore[override]
        raise DeletionRefused(f"user {self.username!r} cannot be deleted; deactivate instead")


class Membership(models.Model):
    """A role held by a user in a study, at one site for site roles."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="memberships")
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    granted_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = _NoDeleteQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "study", "site", "role"],
                condition=models.Q(revoked_at__isnull=True),
                name="membership_active_unique",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(role__in=sorted(r.value for r in SITE_ROLES), site__isnull=False)
                    | models.Q(role__in=sorted(r.value for r in STUDY_ROLES), site__isnull=True)
                ),
                name="membership_site_matches_role",
            ),
        ]
        ordering = ["study", "site", "role"]

    def __str__(self) -> str:
        where = self.site.code if self.site_id else "all sites"
        return f"{self.user.username}: {self.get_role_display()} ({self.study.code}, {where})"

    def delete(self, *args, **kwargs):  # type: ignore[override]
        raise DeletionRefused("memberships are revoked, never deleted")


class ApiToken(models.Model):
    """A personal API token; only its SHA-256 is stored, the token is shown once."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user.username}/{self.name} ({self.prefix}…)"


class AllocationGrant(models.Model):
    """The right of one user to see the allocation of one subject, after emergency unblinding.

    The subject is named by study, site and pseudonymous id (``TLS-003``) rather than by a foreign
    key, so that accounts stays below the apps that hold subjects. Grants are never deleted;
    ``revoked_at`` ends one. :func:`trialdesk.accounts.policy.may_see_subject_allocation` reads
    them.
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="allocation_grants")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    subject_key = models.CharField(max_length=32, help_text="The subject's id, e.g. TLS-003.")
    reason = models.TextField()
    granted_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = _NoDeleteQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "study", "subject_key"],
                condition=models.Q(revoked_at__isnull=True),
                name="allocation_grant_active_unique",
            ),
        ]
        ordering = ["study", "subject_key", "granted_at"]

    def __str__(self) -> str:
        return f"{self.user.username} may see the allocation of {self.subject_key}"

    def delete(self, *args, **kwargs):  # type: ignore[override]
        raise DeletionRefused("allocation grants are revoked, never deleted")
