"""Downloading the DSMB closed and final reports: unblinded users only, every other role 403."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _get(client, username: str, name: str = "reports:download", **kwargs):
    from trialdesk.accounts.models import User

    client.force_login(User.objects.get(username=username))
    return client.get(reverse(name, kwargs={"study": "ns-dupi", **kwargs}))


@pytest.mark.parametrize(
    "username",
    ["demo.coordinator.tls", "demo.investigator.nck", "demo.monitor", "demo.datamanager"]
    + ["demo.pharmacist.tls"],
)
@pytest.mark.parametrize(("kind", "fmt"), [("dsmb-closed", "html"), ("final", "pdf")])
def test_blinded_roles_and_a_one_site_pharmacist_get_403(demo, client, username, kind, fmt):
    from trialdesk.analysis.models import AnalysisRun

    response = _get(client, username, kind=kind, fmt=fmt)
    assert response.status_code == 403
    assert not re.search(rb"\b(DUPI|PBO)\b", response.content)
    assert not AnalysisRun.objects.exists()


def test_the_unblinded_statistician_downloads_the_closed_report_by_arm(demo, client):
    response = _get(client, "demo.unblinded.statistician", kind="dsmb-closed", fmt="html")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="ns-dupi-dsmb-closed.html"'
    page = response.content.decode()
    assert "DSMB closed report" in page and "SYNTHETIC DATA" in page
    assert re.search(r"\bDUPI\b", page) and re.search(r"\bPBO\b", page)
    assert "Prepared for Ugo Petit" in page


def test_the_dashboard_links_the_unblinded_reports_for_unblinded_users_only(demo, client):
    closed = reverse("reports:download", args=["ns-dupi", "dsmb-closed", "pdf"])
    page = _get(client, "demo.unblinded.statistician", "reports:dashboard").content.decode()
    assert closed in page
    page = _get(client, "demo.coordinator.tls", "reports:dashboard").content.decode()
    assert closed not in page
    assert reverse("reports:download", args=["ns-dupi", "dsmb-open", "pdf"]) in page


def test_an_unknown_kind_is_404(demo, client):
    response = _get(client, "demo.unblinded.statistician", kind="interim", fmt="html")
    assert response.status_code == 404
