"""The access and blinding policy: the one place that answers who may see what.

Pages, API, exports, reports and error messages ask these functions; none of them decides on its
own. Every function takes the acting user first and is safe to call with an anonymous or
inactive user (the answer is then "no").

Blinding: only the unblinded pharmacist (at their site), the unblinded statistician and the
DSMB may see allocations; after an emergency unblinding, the investigator who asked may see
that one subject's arm (:func:`may_see_subject_allocation`). Identity (names, phone, e-mail) is
for the site's investigator and coordinator only; never the sponsor, statisticians, DSMB or
monitors through trialdesk.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from trialdesk.protocol.models import Site, Study

from .models import STUDY_ROLES, AllocationGrant, Membership, Role

UNBLINDED_ROLES = frozenset({Role.PHARMACIST, Role.UNBLINDED_STATISTICIAN, Role.DSMB})
IDENTITY_ROLES = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})
DATA_ENTRY_ROLES = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})


def _active(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def memberships(user: Any, study: Study | None = None) -> QuerySet[Membership]:
    """The user's current (not revoked) memberships, in one study or in all."""
    if not _active(user):
        return Membership.objects.none()
    qs = Membership.objects.filter(user=user, revoked_at__isnull=True).select_related(
        "study", "site"
    )
    return qs.filter(study=study) if study is not None else qs


def roles(user: Any, study: Study, site: Site | None = None) -> set[Role]:
    """Roles the user holds in ``study``; with ``site``, those that apply at that site."""
    held = set()
    for m in memberships(user, study):
        if site is None or m.site_id is None or m.site_id == site.pk:
            held.add(Role(m.role))
    return held


def studies(user: Any) -> QuerySet[Study]:
    """Studies in which the user holds any role."""
    ids = memberships(user).values_list("study_id", flat=True)
    return Study.objects.filter(pk__in=ids).order_by("code")


def visible_sites(user: Any, study: Study) -> QuerySet[Site]:
    """Sites whose data the user may see: all sites for study-wide roles, else their own."""
    ms = list(memberships(user, study))
    if any(Role(m.role) in STUDY_ROLES for m in ms):
        return study.sites.all()
    return study.sites.filter(pk__in=[m.site_id for m in ms if m.site_id])


def may_see_site(user: Any, site: Site) -> bool:
    return visible_sites(user, site.study).filter(pk=site.pk).exists()


def may_see_subject(user: Any, subject: Any) -> bool:
    """A subject (anything with ``site``) is visible to whoever may see its site."""
    return may_see_site(user, subject.site)


def may_see_allocation(user: Any, study: Study, site: Site | None = None) -> bool:
    """May the user see treatment arms in ``study`` (at ``site`` for the pharmacist)?"""
    return bool(roles(user, study, site) & UNBLINDED_ROLES)


def may_see_subject_allocation(user: Any, subject: Any) -> bool:
    """May the user see the arm of this one subject (anything with ``site`` and ``subject_id``)?

    Yes for the unblinded roles that may see the subject's site, and for a user who was granted
    this subject's allocation by an emergency unblinding (an :class:`AllocationGrant`), as long
    as they may still see the subject.
    """
    if not may_see_subject(user, subject):
        return False
    if may_see_allocation(user, subject.site.study, subject.site):
        return True
    return AllocationGrant.objects.filter(
        user=user,
        study_id=subject.site.study_id,
        subject_key=subject.subject_id,
        revoked_at__isnull=True,
    ).exists()


def may_see_identity(user: Any, site: Site) -> bool:
    """Direct identifiers are for the site's investigator and coordinator only."""
    return bool(roles(user, site.study, site) & IDENTITY_ROLES) and any(
        m.site_id == site.pk for m in memberships(user, site.study)
    )


def may_enter_data(user: Any, site: Site) -> bool:
    return bool(
        {Role(m.role) for m in memberships(user, site.study) if m.site_id == site.pk}
        & DATA_ENTRY_ROLES
    )


def may_use_admin(user: Any) -> bool:
    """The Django admin is for data managers (and superusers), never for site staff."""
    if not _active(user):
        return False
    return user.is_superuser or memberships(user).filter(role=Role.DATA_MANAGER).exists()
