"""The login page, lockout, the home page, the language switch and the admin door."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD
from trialdesk.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _login(client, username, password=PASSWORD):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_it_redirects_anonymous_users_to_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_login_is_audited_and_lands_on_home(client, claire):
    response = _login(client, "claire")
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert AuditEvent.objects.filter(action="auth.login", username="claire").count() == 1


def test_a_failed_login_is_audited_and_says_so(client, claire):
    response = _login(client, "claire", "wrong password")
    assert response.status_code == 200
    assert b"did not match" in response.content
    assert AuditEvent.objects.filter(action="auth.login_failed", username="claire").exists()


def test_five_failures_lock_the_account_even_with_the_right_password(client, claire):
    for _ in range(5):
        _login(client, "claire", "wrong password")
    response = _login(client, "claire")
    assert response.status_code == 429
    assert b"locked" in response.content.lower()
    assert AuditEvent.objects.filter(action="auth.lockout", username="claire").exists()


def test_home_lists_the_users_studies_and_only_their_sites(client, claire):
    _login(client, "claire")
    page = client.get(reverse("home")).content.decode()
    assert 'data-testid="study-ns-dupi"' in page and 'data-testid="study-ns-cohort"' in page
    assert 'data-testid="site-TLS"' in page
    assert 'data-testid="site-NCK"' not in page


def test_switching_to_french_translates_the_page(client, claire):
    _login(client, "claire")
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    page = client.get(reverse("home")).content.decode()
    assert "Mes études" in page and "Se déconnecter" in page
    assert '<html lang="fr">' in page


@pytest.mark.parametrize("persona", ["claire", "ines", "pierre", "manon"])
def test_site_staff_never_see_the_admin(client, persona, request):
    request.getfixturevalue(persona)
    _login(client, persona)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_data_manager_may_read_the_admin_and_the_audit_trail(client, diane):
    _login(client, "diane")
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/audit/auditevent/").status_code == 200


def test_responses_carry_security_headers(client, claire):
    response = client.get(reverse("login"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_a_user_creates_and_revokes_an_api_token_on_the_tokens_page(client, paul):
    from trialdesk.accounts.models import ApiToken

    _login(client, "paul")
    page = client.post(reverse("api_tokens"), {"name": "analysis laptop"}).content.decode()
    token = ApiToken.objects.get(user=paul)
    assert 'data-testid="new-token"' in page and token.prefix in page
    plain = page.split('data-testid="new-token">', 1)[1].split("<", 1)[0]
    anonymous = Client()
    assert anonymous.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 200
    client.post(reverse("api_tokens"), {"revoke": token.pk})
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert anonymous.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 401


def test_an_empty_token_name_is_refused_with_the_field_named(client, paul):
    _login(client, "paul")
    page = client.post(reverse("api_tokens"), {"name": "  "}).content.decode()
    assert "name: a token needs a name" in page


def test_home_links_the_worklist_of_the_trial_and_not_of_the_cohort(client, claire):
    _login(client, "claire")
    page = client.get(reverse("home")).content.decode()
    assert 'data-testid="worklist-ns-dupi"' in page
    assert 'data-testid="worklist-ns-cohort"' not in page
    assert "/pharmacy/" not in page


def test_home_links_the_pharmacy_for_the_pharmacist(client, pierre):
    _login(client, "pierre")
    assert "/studies/ns-dupi/pharmacy/" in client.get(reverse("home")).content.decode()
