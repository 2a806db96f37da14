"""The Django admin, for data managers only (site staff never see it), read-only.

Changes to users and roles go through :mod:`trialdesk.accounts.services` so they are audited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from trialdesk.accounts import policy
from trialdesk.accounts.models import ApiToken, Membership, User
from trialdesk.audit.models import AuditEvent
from trialdesk.protocol.models import Site, Study, StudyVersion


class TrialdeskAdminSite(admin.AdminSite):
    site_header = "trialdesk data management"
    site_title = "trialdesk"

    def has_permission(self, request: Any) -> bool:
        return policy.may_use_admin(request.user)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: Any) -> bool:
        return policy.may_use_admin(request.user)

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return policy.may_use_admin(request.user)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class UserAdmin(ReadOnlyAdmin):
    list_display = ["username", "first_name", "last_name", "email", "is_active", "last_login"]
    exclude = ["password"]
    search_fields = ["username", "email"]


class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "study", "site", "role", "granted_at", "revoked_at"]
    list_filter = ["study", "role"]


class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "at", "username", "action", "entity_type", "entity_id", "study", "site"]
    list_filter = ["action", "study"]
    search_fields = ["entity_id", "username"]


class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]


site = TrialdeskAdminSite(name="admin")
site.register(User, UserAdmin)
site.register(Membership, MembershipAdmin)
site.register(ApiToken, ApiTokenAdmin)
site.register(AuditEvent, AuditEventAdmin)
site.register(Study, ReadOnlyAdmin)
site.register(StudyVersion, ReadOnlyAdmin)
site.register(Site, ReadOnlyAdmin)
