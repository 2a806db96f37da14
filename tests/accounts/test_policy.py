"""The access and blinding policy, persona by persona."""

from __future__ import annotations

import pytest

from trialdesk.accounts import policy

pytestmark = pytest.mark.django_db


def _site(study, code):
    return study.sites.get(code=code)


def test_a_coordinator_at_toulouse_sees_nothing_of_paris(claire, ns_dupi):
    assert list(policy.visible_sites(claire, ns_dupi).values_list("code", flat=True)) == ["TLS"]
    assert policy.may_see_site(claire, _site(ns_dupi, "TLS"))
    assert not policy.may_see_site(claire, _site(ns_dupi, "NCK"))


def test_a_coordinator_at_paris_sees_nothing_of_toulouse(paul, ns_dupi):
    assert not policy.may_see_site(paul, _site(ns_dupi, "TLS"))
    assert policy.may_see_site(paul, _site(ns_dupi, "NCK"))


def test_study_wide_roles_see_every_site(diane, simon, ns_dupi):
    for user in (diane, simon):
        assert set(policy.visible_sites(user, ns_dupi).values_list("code", flat=True)) == {
            "TLS",
            "NCK",
        }


@pytest.mark.parametrize("persona", ["claire", "paul", "ines", "manon", "simon", "diane", "sophie"])
def test_blinded_roles_never_see_the_allocation(persona, request, ns_dupi):
    user = request.getfixturevalue(persona)
    assert not policy.may_see_allocation(user, ns_dupi)
    for site in ns_dupi.sites.all():
        assert not policy.may_see_allocation(user, ns_dupi, site)


def test_the_pharmacist_sees_the_allocation_at_his_site_only(pierre, ns_dupi):
    assert policy.may_see_allocation(pierre, ns_dupi, _site(ns_dupi, "TLS"))
    assert not policy.may_see_allocation(pierre, ns_dupi, _site(ns_dupi, "NCK"))


def test_the_unblinded_statistician_sees_allocations(ugo, ns_dupi):
    assert policy.may_see_allocation(ugo, ns_dupi)


@pytest.mark.parametrize("persona", ["manon", "simon", "ugo", "diane", "sophie", "pierre"])
def test_identity_is_for_site_investigators_and_coordinators_only(persona, request, ns_dupi):
    user = request.getfixturevalue(persona)
    assert not policy.may_see_identity(user, _site(ns_dupi, "TLS"))


def test_identity_is_visible_to_the_sites_own_coordinator(claire, ines, ns_dupi):
    assert policy.may_see_identity(claire, _site(ns_dupi, "TLS"))
    assert policy.may_see_identity(ines, _site(ns_dupi, "TLS"))
    assert not policy.may_see_identity(claire, _site(ns_dupi, "NCK"))


def test_a_deactivated_user_sees_nothing(claire, ns_dupi):
    from trialdesk.accounts.services import set_active

    set_active(claire, False, by=None, reason="left the unit")
    claire.refresh_from_db()
    assert not policy.may_see_site(claire, _site(ns_dupi, "TLS"))
    assert list(policy.studies(claire)) == []


def test_only_data_managers_may_use_the_admin(claire, ines, pierre, diane):
    assert policy.may_use_admin(diane)
    assert not any(policy.may_use_admin(u) for u in (claire, ines, pierre))
