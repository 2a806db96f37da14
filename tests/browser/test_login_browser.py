"""A coordinator logs in, switches to French and sees the home page, in a real browser."""

from __future__ import annotations

import pytest

from tests.browser_support import DEMO_PASSWORD

pytestmark = pytest.mark.browser


def test_a_coordinator_logs_in_switches_to_french_and_sees_home(live_url, page, screenshot):
    page.goto(f"{live_url}/")
    assert "/login/" in page.url
    page.fill("#id_username", "coordinator.tls")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button.primary")
    page.wait_for_selector('[data-testid="study-ns-dupi"]')
    assert page.locator("h1").inner_text() == "My studies"
    page.click('[data-testid="lang-fr"]')
    page.wait_for_selector("html[lang=fr]")
    assert page.locator("h1").inner_text() == "Mes études"
    assert page.locator('[data-testid="site-TLS"]').count() >= 1
    assert page.locator('[data-testid="site-NCK"]').count() == 0
    screenshot(page, "home-fr")


def test_a_wrong_password_shows_an_error(live_url, page):
    page.goto(f"{live_url}/login/")
    page.fill("#id_username", "coordinator.nck")
    page.fill("#id_password", "not the password")
    page.click("button.primary")
    assert "did not match" in page.locator("[role=alert]").inner_text()
