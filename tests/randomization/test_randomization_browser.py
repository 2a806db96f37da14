"""A coordinator, in French, in a real browser: screens a person, records the consent,
randomizes, and gets the randomization number and the D0 kits to dispense.

The browser fixtures (``browser``, ``page``, ``screenshot``) are those of ``tests/browser``,
imported by this folder's ``conftest.py``. The server is the real thing: ``trialdesk setup`` on a fresh database, then the operational
commands an unblinded statistician and the central supply would run (``randomization
generate``, ``randomization import``, ``randomization receive``), then ``trialdesk serve``.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from tests.browser_support import CLI, DEMO_PASSWORD, REPO, served, server_env

pytestmark = pytest.mark.browser

SEED_CONSENT = """
import datetime as dt, django
django.setup()
from trialdesk.protocol.models import Study
from trialdesk.screening.services import create_consent_document
create_consent_document(Study.objects.get(code="ns-dupi"), version="1.0", language="fr",
    title="Note d'information et consentement", valid_from=dt.date(2024, 1, 1), by=None)
"""


@pytest.fixture(scope="module")
def trial_url(tmp_path_factory):
    var = tmp_path_factory.mktemp("trial-var")
    env = server_env(var)
    cli = CLI

    def run(*args):
        subprocess.run([*args], env=env, cwd=REPO, check=True, capture_output=True, timeout=300)

    lists = var / "lists"
    expiry = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    run(*cli, "setup")
    run(
        *cli,
        "randomization",
        "generate",
        "--study",
        "ns-dupi",
        "--seed",
        "2026",
        "--per-stratum",
        "12",
        "--out",
        str(lists),
    )
    run(*cli, "randomization", "import", "--study", "ns-dupi", str(lists))
    run(
        *cli,
        "randomization",
        "receive",
        "--study",
        "ns-dupi",
        "--site",
        "TLS",
        "--per-arm",
        "6",
        "--expiry",
        expiry,
    )
    run(sys.executable, "-c", SEED_CONSENT)
    with served(env) as url:
        yield url


ANSWERS = {
    "birth_date": "1988-04-12",
    "sex": "F",
    "social_insurance": "true",
    "informed_consent_signed": "true",
    "ns_clinical_diagnosis": "true",
    "lekti_staining": "absent",
    "nasa_total": "8",
    "able_to_complete_questionnaires": "true",
    "questionnaire_incapacity": "false",
    "dupilumab_hypersensitivity": "false",
    "condition_impairing_evaluation": "false",
    "immunosuppression_history": "false",
    "current_infection": "false",
    "pregnant": "false",
    "breastfeeding": "false",
    "planning_pregnancy": "false",
    "childbearing_potential": "false",
}
NEVER_USED = [
    "usual_treatment_changed_on",
    "last_topical_calcineurin_inhibitor",
    "last_oral_immunosuppressant",
    "last_oral_retinoid",
    "last_phototherapy",
    "last_biologic",
    "last_investigational_drug",
    "last_systemic_antibiotic",
    "last_skin_infection_systemic_therapy",
]


def test_a_coordinator_randomizes_a_new_subject_in_french(trial_url, page, screenshot):
    page.goto(f"{trial_url}/login/")
    page.fill("#id_username", "coordinator.tls")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button.primary")
    page.wait_for_selector('[data-testid="study-ns-dupi"]')
    page.click('[data-testid="lang-fr"]')
    page.wait_for_selector("html[lang=fr]")

    page.goto(f"{trial_url}/studies/ns-dupi/screening/new/")
    page.fill("#id_first_name", "Léa")
    page.fill("#id_last_name", "Exemple")
    page.fill("#id_screening_date", dt.date.today().isoformat())
    for code, value in ANSWERS.items():
        field = page.locator(f"#id_{code}")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    for code in NEVER_USED:
        page.check(f'input[name="{code}__never"]')
    page.click('[data-testid="screen-form"] button.primary')
    page.wait_for_load_state()
    assert "Éligible" in page.content()
    screenshot(page, "verdict-fr")

    page.goto(f"{trial_url}/studies/ns-dupi/subjects/TLS-001/consent/")
    page.select_option("#id_document", index=1)
    signed = dt.datetime.now().replace(second=0, microsecond=0) - dt.timedelta(hours=1)
    page.fill("#id_signed_at", signed.strftime("%Y-%m-%dT%H:%M"))
    page.click('[data-testid="consent-form"] button.primary')
    page.wait_for_load_state()

    page.goto(f"{trial_url}/studies/ns-dupi/subjects/TLS-001/randomize/")
    assert page.locator("h1").inner_text().startswith("Randomisation")
    for check in ("subject", "eligibility", "consent", "list", "stratum"):
        assert page.locator(f'[data-testid="check-{check}"]').get_attribute("data-ok") == "yes"
    screenshot(page, "checks-fr")
    page.click('[data-testid="randomize"]')
    page.wait_for_selector('[data-testid="randomization-number"]')
    assert page.locator('[data-testid="randomization-number"]').inner_text() == "TLS-R001"
    message = page.locator(".messages").inner_text()
    assert "randomisé : TLS-R001. Dispensez les kits" in message
    kits = page.locator('[data-testid="dosing-D0"] [data-testid="kit"]').all_inner_texts()
    assert len(kits) == 2 and all(k.isdigit() for k in kits)
    body = page.content()
    assert "DUPI" not in body and "PBO" not in body and "Placebo" not in body
    screenshot(page, "randomized-fr")
