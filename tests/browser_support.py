"""Browser-test fixtures (a pytest plugin loaded by the root conftest): a real server
Debian's Chromium driven by Playwright. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("TRIALDESK_CHROMIUM", "/usr/bin/chromium")
DEMO_PASSWORD = "browser-test-password-7431"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CLI = [sys.executable, "-m", "trialdesk.cli"]


def server_env(var: Path) -> dict[str, str]:
    """The environment of a test server: its own SQLite database in ``var``, known passwords."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        {
            "TRIALDESK_VAR_DIR": str(var),
            "TRIALDESK_DEMO_PASSWORD": DEMO_PASSWORD,
            "DJANGO_SETTINGS_MODULE": "trialdesk.settings",
        }
    )
    return env


@contextlib.contextmanager
def served(env: dict[str, str]) -> Iterator[str]:
    """``trialdesk serve`` (gunicorn) on a free loopback port until the block ends; yields its URL."""
    port = _free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("the server did not start")
            time.sleep(0.3)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="session")
def live_url(tmp_path_factory):
    """A fresh installation (``trialdesk setup``) served by gunicorn."""
    env = server_env(tmp_path_factory.mktemp("var"))
    subprocess.run([*CLI, "setup"], env=env, cwd=REPO, check=True, capture_output=True, timeout=300)
    with served(env) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(request):
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
