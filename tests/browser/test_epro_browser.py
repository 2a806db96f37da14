"""A patient answers pruritus, pain and DLQI on a 390-pixel-wide phone page, through a one-time
link issued by the Toulouse coordinator, in a real browser against ``trialdesk serve``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.browser_support import CLI, REPO, served, server_env

pytestmark = pytest.mark.browser

ISSUE_LINK = """
import datetime as dt, django
django.setup()
from django.contrib.auth import get_user_model
from tests.randomization.trial_world import eligible_data
from trialdesk.capture.epro import issue_link
from trialdesk.capture.schedule import plan_visits
from trialdesk.protocol.models import Study
from trialdesk.screening.services import screen
study = Study.objects.get(code="ns-dupi")
subject = screen(study, study.sites.get(code="TLS"), eligible_data(), by=None).subject
plan_visits(subject, dt.date.today(), by=None)
coordinator = get_user_model().objects.get(username="coordinator.tls")
print(subject.subject_id, issue_link(subject, "D0", by=coordinator, language="en").path)
"""

CHECK_SAVED = """
import django
django.setup()
from trialdesk.audit.models import AuditEvent
from trialdesk.capture.models import FormRecord
from trialdesk.capture.records import values_of
record = FormRecord.objects.get(form="DLQI", visit_code="D0", patient_entered=True)
event = AuditEvent.objects.get(action="epro.submit")
print(values_of(record)["dlqi_total"], event.username)
"""


@pytest.fixture(scope="module")
def served_link(tmp_path_factory):
    env = server_env(tmp_path_factory.mktemp("epro-var"))

    def python(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return done.stdout.strip().splitlines()[-1]

    subprocess.run([*CLI, "setup"], env=env, cwd=REPO, check=True, capture_output=True, timeout=300)
    subject_id, path = python(ISSUE_LINK).split()
    with served(env) as url:
        yield url, path, subject_id, lambda: python(CHECK_SAVED)


def test_a_patient_completes_dlqi_on_a_phone(browser, screenshot, served_link):
    url, path, subject_id, saved = served_link
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(f"{url}{path}?lang=fr")
        assert page.get_by_text("Démangeaisons, douleurs").is_visible()
        assert subject_id not in page.content()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        page.fill("input[name='ITCH_PAIN.pruritus_score']", "6")
        page.fill("input[name='ITCH_PAIN.pain_score']", "2")
        for question in range(1, 11):
            answer = "1" if question <= 6 else "2"
            page.check(f"input[name='DLQI.dlqi_q{question}'][value='{answer}']")
        screenshot(page, "answered")
        page.get_by_test_id("send").click()
        page.get_by_test_id("thanks").wait_for()
        screenshot(page, "thanks")
        total, actor = saved().split(" ", 1)
        assert total == "14" and actor.startswith("patient via link ")
        again = page.goto(f"{url}{path}")
        assert again.status == 404 and "Démangeaisons" not in page.content()
    finally:
        context.close()
