"""The life of the D0 visit of a randomized subject, in a real browser against ``trialdesk
serve``, one persona after another, with a screenshot at every step (``test-artifacts/``):

1. the Toulouse coordinator, in French, opens the casebook; a value out of range is refused
   (the French message names the item and the value, nothing is saved); a NASA total below the
   inclusion threshold is saved and a soft check raises a query; every other D0 visit form is
   filled and marked complete;
2. the monitor verifies source data (a whole form, an item) and raises a query on an item;
3. the coordinator answers the query and changes the value, first without a reason for change
   (refused), then with one;
4. the investigator signs the visit, re-entering the password, with the meaning shown;
5. the data manager locks the subject's casebook;
6. the coordinator's next edit is refused, and the database is unchanged.

The subject is prepared through the services (:mod:`tests.browser.capture_world`); every other
write goes through the pages, and each step is checked in the database as well as on the page.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.browser.capture_world import D0_VALUES
from tests.browser_support import CLI, DEMO_PASSWORD, REPO, served, server_env
from trialdesk.protocol import load_study, resolve_study_path

pytestmark = pytest.mark.browser

NS_DUPI = load_study(resolve_study_path("ns-dupi"))
MONITOR_QUERY = "The source document gives a NASA total of 7: please check."
ANSWER = "Erreur de transcription : le document source indique 7."
REASON = "Erreur de transcription, corrigée d'après le document source"


@dataclass
class Trial:
    url: str
    subject_id: str
    d0: str
    reader: subprocess.Popen

    def db(self) -> dict[str, Any]:
        """The subject's records, queries, signatures, locks and form audit events, read by
        :func:`tests.browser.capture_world.serve_snapshots` from the server's database."""
        self.reader.stdin.write(f"{self.subject_id}\n")
        self.reader.stdin.flush()
        line = self.reader.stdout.readline()
        assert line, "the database reader stopped"
        return json.loads(line)

    def page_url(self, path: str) -> str:
        return f"{self.url}/studies/ns-dupi/subjects/{self.subject_id}/{path}"


@pytest.fixture(scope="module")
def trial(tmp_path_factory) -> Iterator[Trial]:
    env = server_env(tmp_path_factory.mktemp("capture-var"))

    def python(code: str, **options: Any) -> Any:
        return subprocess.Popen(
            [sys.executable, "-c", f"from tests.browser.capture_world import {code}"],
            env=env,
            cwd=REPO,
            text=True,
            **options,
        )

    subprocess.run([*CLI, "setup"], env=env, cwd=REPO, check=True, capture_output=True, timeout=300)
    preparing = python("prepare; prepare()", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = preparing.communicate(timeout=300)
    assert preparing.returncode == 0, err
    prepared = json.loads(out.strip().splitlines()[-1])
    assert len(prepared["kits"]) == 2
    reader = python(
        "serve_snapshots; serve_snapshots()", stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        with served(env) as url:
            yield Trial(url, prepared["subject_id"], prepared["d0"], reader)
    finally:
        reader.stdin.close()
        reader.wait(timeout=20)


class Walk:
    """Browser contexts per persona, and screenshots numbered in the order they are taken."""

    def __init__(self, browser: Any, trial: Trial, screenshot: Callable[..., Any]) -> None:
        self.browser, self.trial, self.screenshot = browser, trial, screenshot
        self.contexts: list[Any] = []
        self.count = 0

    def log_in(self, username: str, *, french: bool = False, tablet: bool = False) -> Any:
        """A desktop browser, or for a research nurse at the bedside a tablet held upright."""
        viewport = TABLET if tablet else {"width": 1280, "height": 800}
        context = self.browser.new_context(viewport=viewport, has_touch=tablet)
        self.contexts.append(context)
        page = context.new_page()
        page.goto(f"{self.trial.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("button.primary")
        page.wait_for_selector('[data-testid="study-ns-dupi"]')
        if french:
            page.click('[data-testid="lang-fr"]')
            page.wait_for_selector("html[lang=fr]")
        return page

    def shot(self, page: Any, name: str) -> None:
        self.count += 1
        self.screenshot(page, f"{self.count:02d}-{name}")

    def close(self) -> None:
        for context in self.contexts:
            context.close()


#: A 10.9-inch tablet held upright (CSS pixels).
TABLET = {"width": 820, "height": 1180}


def _fits(page: Any) -> None:
    """The page needs no sideways scrolling at its viewport's width."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], (page.url, width)


def _submit(page: Any, selector: str) -> int:
    """Click a submit button; return the HTTP status of the page it leads to."""
    with page.expect_navigation() as navigation:
        page.click(selector)
    return navigation.value.status


def _fill(page: Any, values: dict[str, str], d0: str) -> None:
    for code, value in values.items():
        field = page.locator(f"#id_{code}")
        value = value.format(d0=d0)
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


def _status(page: Any) -> str:
    return page.locator("main [data-status]").first.get_attribute("data-status")


def _error(page: Any, field: str) -> str:
    return page.locator(f'[data-testid="errors"] li[data-field="{field}"]').inner_text()


def test_the_d0_visit_from_entry_to_lock(browser, screenshot, trial):
    walk = Walk(browser, trial, screenshot)
    try:
        _walk(walk, trial)
    finally:
        walk.close()


def _walk(walk: Walk, trial: Trial) -> None:
    d0_forms = [code for code in NS_DUPI.schedule["D0"] if not NS_DUPI.form(code).repeating]
    # The values cover every required item of every D0 visit form (NASA is entered by hand).
    assert set(d0_forms) == {"NASA", *D0_VALUES}
    for code, values in D0_VALUES.items():
        required = {i.code for i in NS_DUPI.form(code).items if i.required}
        assert required <= set(values), (code, required - set(values))

    # 1. The coordinator, in French: the D0 visit not started.
    coordinator = walk.log_in("coordinator.tls", french=True, tablet=True)
    coordinator.goto(trial.page_url("casebook/"))
    assert coordinator.locator("h1").inner_text().startswith("Cahier d'observation")
    _fits(coordinator)  # the visit grid scrolls inside its own frame
    for code in d0_forms:
        cell = coordinator.locator(f'[data-testid="cell-D0-{code}"] [data-status]')
        assert cell.get_attribute("data-status") == "not_started", code
    walk.shot(coordinator, "coordinator-d0-fr")
    assert trial.db()["records"] == {}

    # A range check refuses 15 (NASA is 0–12): French message naming item and value, no write.
    coordinator.goto(trial.page_url("visits/D0/forms/NASA/"))
    _fits(coordinator)
    coordinator.fill("#id_nasa_total", "15")
    coordinator.fill("#id_nasa_assessor", "CD")
    coordinator.check('[data-testid="complete"]')
    assert _submit(coordinator, '[data-testid="save"]') == 400
    message = _error(coordinator, "nasa_total")
    assert message == "Score NASA total (0–12) (nasa_total) : '15' est supérieur au maximum 12"
    assert "Rien n'a été enregistré" in coordinator.locator('[data-testid="errors"]').inner_text()
    assert coordinator.locator("#id_nasa_total").input_value() == "15"
    assert coordinator.locator('[data-testid="complete"]').is_checked()  # kept after a refusal
    walk.shot(coordinator, "range-check-refuses-15")
    assert trial.db()["records"] == {}

    # A soft check: NASA 4 at D0 is below the inclusion threshold; saved, and a query raised.
    coordinator.fill("#id_nasa_total", "4")
    assert _submit(coordinator, '[data-testid="save"]') == 200
    notices = coordinator.locator(".messages").inner_text()
    assert "Une query a été émise" in notices and "Score NASA inférieur à 5 à J0" in notices
    assert _status(coordinator) == "complete"
    raised = coordinator.locator('[data-testid="query"][data-item="nasa_total"]')
    assert raised.count() >= 1 and "Émise" in raised.first.inner_text()
    walk.shot(coordinator, "soft-check-raises-query")
    nasa = trial.db()["records"]["D0/NASA"]
    assert nasa["values"] == {"nasa_total": 4, "nasa_assessor": "CD"}
    assert nasa["completed"] and nasa["status"] == "complete"
    checks = {q["check_id"]: q for q in nasa["queries"]}
    below = checks["NASA_D0_BELOW_INCLUSION"]
    assert below["item"] == "nasa_total" and below["status"] == "open"
    assert below["raised_by"] is None

    # Every other D0 visit form, filled and marked complete.
    for code, values in D0_VALUES.items():
        coordinator.goto(trial.page_url(f"visits/D0/forms/{code}/"))
        _fits(coordinator)
        _fill(coordinator, values, trial.d0)
        coordinator.check('[data-testid="complete"]')
        assert _submit(coordinator, '[data-testid="save"]') == 200, code
        assert "Enregistré." in coordinator.locator(".messages").inner_text(), code
        assert _status(coordinator) == "complete", code
        walk.shot(coordinator, f"d0-{code.lower()}-complete")
    coordinator.goto(trial.page_url("casebook/"))
    for code in d0_forms:
        cell = coordinator.locator(f'[data-testid="cell-D0-{code}"] [data-status]')
        assert cell.get_attribute("data-status") == "complete", code
        assert cell.inner_text() == "Complet"
        assert cell.bounding_box()["height"] < 30, code  # the pill does not stretch
    walk.shot(coordinator, "d0-visit-complete-fr")
    state = trial.db()
    assert sorted(state["records"]) == sorted(f"D0/{code}" for code in d0_forms)
    assert all(r["completed"] and r["status"] == "complete" for r in state["records"].values())
    assert state["records"]["D0/DLQI"]["values"]["dlqi_total"] == 10  # computed
    assert state["records"]["D0/TCS"]["values"]["tcs_grams"] == 0
    assert state["records"]["D0/TEWL"]["values"]["tewl_value"] == 48.2
    assert {e["user"] for e in state["audit"]} == {"coordinator.tls"}

    # 2. The monitor verifies a whole form and an item, and raises a query on an item.
    monitor = walk.log_in("monitor")
    monitor.goto(trial.page_url("visits/D0/forms/ITCH_PAIN/"))
    assert _submit(monitor, '[data-testid="verify-form"]') == 200
    assert _status(monitor) == "verified"
    walk.shot(monitor, "monitor-verifies-itch-pain")
    monitor.goto(trial.page_url("visits/D0/forms/NASA/"))
    assert _submit(monitor, '[data-testid="sdv-nasa_assessor"]') == 200
    assert monitor.locator('[data-testid="verified-nasa_assessor"]').is_visible()
    monitor.fill('input[name="query__nasa_total"]', MONITOR_QUERY)
    assert _submit(monitor, '[data-testid="query-nasa_total"]') == 200
    asked = monitor.locator('[data-testid="query"]', has_text=MONITOR_QUERY)
    assert asked.get_attribute("data-status") == "open"
    walk.shot(monitor, "monitor-raises-query")
    state = trial.db()
    assert state["records"]["D0/ITCH_PAIN"]["verified"]
    assert state["records"]["D0/ITCH_PAIN"]["status"] == "verified"
    nasa = state["records"]["D0/NASA"]
    assert nasa["verified_items"] == ["nasa_assessor"] and not nasa["verified"]
    (query,) = [q for q in nasa["queries"] if q["raised_by"] == "monitor"]
    assert query["status"] == "open" and query["item"] == "nasa_total"
    assert query["messages"] == [["raise", MONITOR_QUERY, "monitor"]]

    # 3. The coordinator answers, then changes the value: a reason for change is required.
    coordinator.goto(trial.page_url("visits/D0/forms/NASA/"))
    asked = coordinator.locator('[data-testid="query"]', has_text=MONITOR_QUERY)
    assert f"Émise: {MONITOR_QUERY} (monitor)" in asked.inner_text()
    asked.locator('input[name="text"]').fill(ANSWER)
    with coordinator.expect_navigation():
        asked.locator('[data-testid="answer"]').click()
    asked = coordinator.locator('[data-testid="query"]', has_text=MONITOR_QUERY)
    assert asked.get_attribute("data-status") == "answered"
    assert f"Réponse: {ANSWER} (coordinator.tls)" in asked.inner_text()
    walk.shot(coordinator, "coordinator-answers-query")
    coordinator.fill("#id_nasa_total", "7")
    assert _submit(coordinator, '[data-testid="save"]') == 400
    assert _error(coordinator, "reason") == (
        "Motif de modification : un motif de modification est obligatoire pour modifier "
        "nasa_total de TLS-001 NASA D0"
    )
    walk.shot(coordinator, "change-without-reason-refused")
    assert trial.db()["records"]["D0/NASA"]["values"]["nasa_total"] == 4
    coordinator.fill("#id_nasa_total", "7")
    coordinator.fill('[data-testid="reason"]', REASON)
    assert _submit(coordinator, '[data-testid="save"]') == 200
    assert coordinator.locator("#id_nasa_total").input_value() == "7"
    walk.shot(coordinator, "coordinator-changes-with-reason")
    state = trial.db()
    nasa = state["records"]["D0/NASA"]
    assert nasa["values"]["nasa_total"] == 7 and nasa["revision"] == 2
    (query,) = [q for q in nasa["queries"] if q["raised_by"] == "monitor"]
    assert query["status"] == "answered"
    assert query["messages"][-1] == ["answer", ANSWER, "coordinator.tls"]
    change = state["audit"][-1]
    assert change == {
        "action": "form.change",
        "form": "NASA",
        "items": {"nasa_total": [4, 7]},
        "reason": REASON,
        "user": "coordinator.tls",
    }

    # 4. The investigator signs the visit: meaning shown, password re-entered.
    investigator = walk.log_in("investigator.tls")
    investigator.goto(trial.page_url("casebook/"))
    with investigator.expect_navigation():
        investigator.click('[data-testid="sign-D0"]')
    meaning = investigator.locator('[data-testid="meaning"]').inner_text()
    assert meaning == (
        "I, the investigator, have reviewed the data of this visit D0 and confirm that, to the "
        "best of my knowledge, they are complete and accurate."
    )
    assert investigator.locator('[data-testid="sign-form"] input[type="password"]').count() == 1
    investigator.fill("#password", "not my password")
    assert _submit(investigator, '[data-testid="sign"]') == 400
    assert "the password is not correct" in _error(investigator, "password")
    walk.shot(investigator, "investigator-wrong-password-refused")
    assert trial.db()["signatures"] == []
    investigator.fill("#password", DEMO_PASSWORD)
    walk.shot(investigator, "investigator-signs-d0")
    assert _submit(investigator, '[data-testid="sign"]') == 200
    assert investigator.locator('[data-testid="signed-D0"]').is_visible()
    assert investigator.locator('[data-testid="signature"]').get_attribute("data-valid") == "yes"
    walk.shot(investigator, "d0-signed")
    state = trial.db()
    (signature,) = state["signatures"]
    assert signature["scope"] == "visit" and signature["visit"] == "D0"
    assert signature["meaning"] == meaning and signature["by"] == "investigator.tls"
    assert signature["valid"] and len(signature["sha256"]) == 64
    assert {r["status"] for r in state["records"].values()} == {"signed"}

    # The coordinator has the NASA form open when the data manager locks.
    coordinator.goto(trial.page_url("visits/D0/forms/NASA/"))

    # 5. The data manager locks the subject's casebook.
    manager = walk.log_in("datamanager")
    manager.goto(f"{trial.url}/studies/ns-dupi/data-management/")
    counts = manager.locator('[data-testid="counts-TLS"] td').all_inner_texts()
    assert counts[1:4] == ["2", "1", "0"] and counts[-1] == "0"  # age 0 days, not "–"
    lock = manager.locator('[data-testid="lock-subject"]')
    lock.locator('input[name="subject"]').fill(trial.subject_id)
    lock.locator('input[name="reason"]').fill("D0 cleaned and signed")
    with manager.expect_navigation():
        lock.locator("button").click()
    assert f"Subject · {trial.subject_id}" in manager.locator('[data-testid="locks"]').inner_text()
    walk.shot(manager, "data-manager-locks-casebook")
    before = trial.db()
    (active,) = before["locks"]
    assert active == {
        "scope": "subject",
        "subject": trial.subject_id,
        "active": True,
        "by": "datamanager",
    }
    assert {r["status"] for r in before["records"].values()} == {"locked"}

    # 6. The coordinator's edit is refused; nothing changes in the database.
    coordinator.fill("#id_nasa_total", "8")
    coordinator.fill('[data-testid="reason"]', "Nouvelle évaluation")
    assert _submit(coordinator, '[data-testid="save"]') == 400
    assert _error(coordinator, "record") == (
        "Formulaire : TLS-001 NASA D0 est verrouillé ; un data manager doit d'abord le déverrouiller"
    )
    assert coordinator.locator("#id_nasa_total").input_value() == "7"  # the stored value
    walk.shot(coordinator, "edit-after-lock-refused")
    coordinator.goto(trial.page_url("visits/D0/forms/NASA/"))
    assert coordinator.locator('[data-testid="locked"]').is_visible()
    assert coordinator.locator("#id_nasa_total").is_disabled()
    assert coordinator.locator('[data-testid="save"]').count() == 0
    assert _status(coordinator) == "locked"
    walk.shot(coordinator, "locked-form-read-only")
    assert trial.db() == before
