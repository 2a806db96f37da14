"""The enrolment dashboard: each user sees the sites they may see, never an arm."""

from __future__ import annotations

import base64
import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _user(username: str):
    from trialdesk.accounts.models import User

    return User.objects.get(username=username)


def _page(client, username: str, name: str = "reports:dashboard", **kwargs) -> str:
    client.force_login(_user(username))
    response = client.get(reverse(name, kwargs={"study": "ns-dupi", **kwargs}))
    assert response.status_code == 200
    return response.content.decode()


def test_a_site_coordinator_sees_only_the_numbers_of_their_site(demo, client):
    page = _page(client, "demo.coordinator.nck")
    assert 'data-testid="site-NCK"' in page
    assert 'data-testid="site-TLS"' not in page
    assert "SYNTHETIC DATA" in page


def test_the_data_manager_sees_every_site_and_no_arm(demo, client):
    page = _page(client, "demo.datamanager")
    assert 'data-testid="site-NCK"' in page and 'data-testid="site-TLS"' in page
    assert "data:image/png;base64," in page
    assert not re.search(r"\b(DUPI|PBO)\b", page)


def test_the_site_report_download_holds_the_site_only(demo, client):
    from trialdesk.screening.models import ScreeningEntry

    page = _page(client, "demo.coordinator.nck", "reports:download", kind="enrolment", fmt="html")
    nck = ScreeningEntry.objects.filter(study__code="ns-dupi", site__code="NCK").count()
    svg = base64.b64decode(re.search(r"data:image/svg\+xml;base64,([^\"]+)", page)[1]).decode()
    assert f"Assessed for eligibility (n={nck})" in svg
    assert f'<td>NCK</td><td class="n">{nck}</td>' in page
    assert "<td>TLS</td>" not in page
    assert not re.search(r"\b(DUPI|PBO)\b", page)


def test_the_home_page_links_to_the_dashboard(demo, client):
    client.force_login(_user("demo.coordinator.nck"))
    home = client.get(reverse("home")).content.decode()
    assert reverse("reports:dashboard", kwargs={"study": "ns-dupi"}) in home


def test_a_stranger_gets_404(demo, client, django_user_model):
    stranger = django_user_model.objects.create_user("stranger", password="x")
    client.force_login(stranger)
    response = client.get(reverse("reports:dashboard", kwargs={"study": "ns-dupi"}))
    assert response.status_code == 404
