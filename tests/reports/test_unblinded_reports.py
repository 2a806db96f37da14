"""The DSMB closed and final reports: by arm, for unblinded users only, from a run of the plan."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from trialdesk.cli import main

pytestmark = pytest.mark.django_db
SECTIONS = (
    "Provenance of the results",
    "CONSORT flow diagram by arm",
    "Baseline characteristics by arm",
    "Primary endpoint: NASA change from D0 to W16",
    "LS mean change by arm",
    "Missing-data sensitivity: tipping point",
    "Pruritus and pain over time by arm",
    "Secondary and exploratory endpoints",
    "Exposure and compliance",
    "Adverse events overview",
    "Adverse events by system organ class and term",
    "Adverse events of special interest",
    "Serious adverse events",
    "Laboratory shift tables by CTCAE grade",
    "Protocol deviations",
    "Data quality",
    "Queries by age",
    "Missing data by visit",
    "SYNTHETIC DATA",
)
FINAL_ONLY = ("Enrolment per site", "Screen-failure reasons")
UNBLINDED = "demo.unblinded.statistician"


def _trial():
    from trialdesk.protocol.models import Study

    return Study.objects.get(code="ns-dupi")


def _user(username: str):
    from trialdesk.accounts.models import User

    return User.objects.get(username=username)


def _arms_allocated() -> dict[str, int]:
    from collections import Counter

    from trialdesk.randomization.models import Allocation, SealedRow

    rows = {(r.sealed_list_id, r.stratum, r.seq): r.arm for r in SealedRow.objects.all()}
    return Counter(
        rows[(a.sealed_list_id, a.stratum, a.seq)]
        for a in Allocation.objects.filter(study__code="ns-dupi")
    )


def _svg(html: str) -> str:
    return base64.b64decode(re.search(r"data:image/svg\+xml;base64,([^\"]+)", html)[1]).decode()


def test_the_consort_by_arm_adds_up_to_the_screening_log_and_the_allocation(demo):
    from trialdesk.reports.blinded import collect
    from trialdesk.reports.unblinded import collect_unblinded

    data = collect_unblinded(_trial(), _user(UNBLINDED), seed=3)
    data.consort.check()
    pooled = collect(_trial()).consort
    assert data.consort.enrolment.assessed == pooled.assessed == demo.screened
    assert data.consort.enrolment.randomized == demo.randomized
    allocated = {flow.arm: flow.allocated for flow in data.consort.arms}
    assert allocated == {arm: _arms_allocated().get(arm, 0) for arm in ("DUPI", "PBO")}
    assert allocated == {arm: demo.arms.get(arm, 0) for arm in ("DUPI", "PBO")}
    assert sum(allocated.values()) == demo.randomized
    # Below randomization the datasets agree with the blinded report's pooled boxes.
    for box in ("received", "lost", "withdrawn", "completed", "ongoing"):
        assert sum(getattr(f, box) for f in data.consort.arms) == getattr(pooled, box), box


@pytest.mark.parametrize("kind", ["dsmb-closed", "final"])
def test_the_unblinded_html_names_the_arms_and_has_every_section(demo, kind):
    from trialdesk.reports.render import report_html

    html = report_html(_trial(), kind, user=_user(UNBLINDED), seed=3)
    expected = SECTIONS + (FINAL_ONLY if kind == "final" else ())
    for section in expected:
        assert section in html, section
    if kind == "dsmb-closed":
        assert not any(section in html for section in FINAL_ONLY)
    assert re.search(r"\bDUPI\b", html) and re.search(r"\bPBO\b", html)
    svg = _svg(html)
    for arm, n in _arms_allocated().items():
        assert f"Allocated to {arm} (n={n})" in svg
    assert f"Randomized (n={demo.randomized})" in svg


def test_only_the_unblinded_kinds_name_an_arm(demo):
    from trialdesk.reports.render import report_html

    for kind in ("enrolment", "dsmb-open"):
        assert not re.search(r"\b(DUPI|PBO)\b", report_html(_trial(), kind))


def test_the_plan_runs_once_for_the_current_data_and_the_provenance_says_so(demo):
    from trialdesk.analysis.models import AnalysisRun
    from trialdesk.reports.unblinded import collect_unblinded

    assert not AnalysisRun.objects.filter(blinded=False).exists()
    first = collect_unblinded(_trial(), _user(UNBLINDED), seed=11).provenance
    assert first.ran_now and first.why == "no unblinded run was stored"
    assert first.seed == 11 and first.requested_by == UNBLINDED
    run = AnalysisRun.objects.get(blinded=False)
    assert first.run_id == run.pk and first.dataset_hashes == run.dataset_hashes
    assert set(first.dataset_hashes) >= {"ADSL", "ADNASA", "ADPRUR", "ADPAIN"}
    assert first.study_sha256 == _trial().current_version.sha256
    again = collect_unblinded(_trial(), _user(UNBLINDED), seed=99).provenance
    assert not again.ran_now and again.run_id == run.pk and again.seed == 11
    assert AnalysisRun.objects.filter(blinded=False).count() == 1


def test_a_run_on_other_data_is_not_reused(demo):
    from trialdesk.analysis.models import AnalysisRun
    from trialdesk.capture.models import Visit, VisitStatus
    from trialdesk.reports.unblinded import collect_unblinded

    collect_unblinded(_trial(), _user(UNBLINDED), seed=1)
    visit = Visit.objects.filter(subject__study__code="ns-dupi", status=VisitStatus.DONE).last()
    Visit.objects.filter(pk=visit.pk).update(status=VisitStatus.MISSED)
    provenance = collect_unblinded(_trial(), _user(UNBLINDED), seed=2).provenance
    assert provenance.ran_now and provenance.why.startswith("the data changed since the stored run")
    assert AnalysisRun.objects.filter(blinded=False).count() == 2


@pytest.mark.parametrize(
    "username", ["demo.coordinator.tls", "demo.datamanager", "demo.pharmacist.tls", "demo.monitor"]
)
def test_blinded_users_and_a_one_site_pharmacist_are_refused(demo, username):
    from trialdesk.analysis.models import AnalysisRun
    from trialdesk.reports.render import report_html
    from trialdesk.reports.unblinded import ReportAccessError

    with pytest.raises(ReportAccessError, match=re.escape(repr(username))):
        report_html(_trial(), "final", user=_user(username))
    assert not AnalysisRun.objects.exists()


def test_a_dsmb_member_gets_the_closed_report(demo):
    from trialdesk.accounts.models import Role
    from trialdesk.accounts.services import create_user, grant_role
    from trialdesk.reports.render import report_html

    member = create_user("dsmb.chair", "a long enough password 7", check_password=False)
    grant_role(member, _trial(), Role.DSMB, by=None)
    html = report_html(_trial(), "dsmb-closed", user=member, seed=4)
    assert "DSMB closed report" in html and re.search(r"\bPBO\b", html)


def test_the_command_refuses_a_blinded_user_and_an_unknown_one(demo, tmp_path):
    out = tmp_path / "closed.html"
    args = ["report", "--study", "ns-dupi", "--kind", "dsmb-closed", "--out", str(out)]
    blinded = CliRunner().invoke(main, [*args, "--user", "demo.coordinator.tls"])
    assert blinded.exit_code == 2
    assert "'demo.coordinator.tls' has no unblinded role" in blinded.output
    unknown = CliRunner().invoke(main, [*args, "--user", "nobody"])
    assert unknown.exit_code == 2 and "no active user 'nobody'" in unknown.output
    assert not out.exists()


def _pdf_text(path, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(
        ["pdftotext", *pages, str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
@pytest.mark.parametrize("kind", ["dsmb-closed", "final"])
def test_the_pdf_has_every_section_synthetic_data_on_every_page_and_no_blank_page(
    demo, tmp_path, kind
):
    from PIL import Image

    out = tmp_path / f"{kind}.pdf"
    result = CliRunner().invoke(
        main,
        ["report", "--study", "ns-dupi", "--kind", kind, "--format", "pdf", "--out", str(out)]
        + ["--user", UNBLINDED, "--seed", "5"],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(_pdf_text(out).split())
    for section in SECTIONS + (FINAL_ONLY if kind == "final" else ()):
        assert section in text, section
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(out), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) >= 4
    for number, page in enumerate(pages, start=1):
        low, high = Image.open(page).convert("L").getextrema()
        assert low < high, f"{page.name} is blank"
        assert "SYNTHETIC DATA" in _pdf_text(out, number), f"page {number}"


def _subjects_events(cell: str) -> tuple[int, int]:
    subjects, events = re.fullmatch(r"(\d+)(?: \(\d+%\))? \[(\d+)\]", cell).groups()
    return int(subjects), int(events)


def test_the_dsmb_open_safety_tables_pool_the_arms_of_the_closed_report(demo):
    from trialdesk.reports.render import pooled_safety
    from trialdesk.reports.unblinded import collect_unblinded

    pooled = pooled_safety(_trial())
    by_arm = collect_unblinded(_trial(), _user(UNBLINDED), seed=3).tables
    assert pooled["ae_overview"].columns[1] == f"All (N={demo.randomized})"
    for pooled_row, arm_row in zip(
        pooled["ae_overview"].rows, by_arm["ae_overview"].rows, strict=True
    ):
        assert pooled_row[0] == arm_row[0]
        arms = [_subjects_events(cell) for cell in arm_row[1:]]
        assert _subjects_events(pooled_row[1]) == tuple(map(sum, zip(*arms, strict=True)))
    html = " ".join(p for p in (pooled["ae_by_soc"].note, pooled["lab_shifts"].note))
    assert not re.search(r"\b(DUPI|PBO)\b", html)


def test_the_dsmb_open_safety_tables_of_one_site_count_that_site_only(demo):
    from trialdesk.randomization.models import Allocation
    from trialdesk.reports.render import pooled_safety

    nck = Allocation.objects.filter(study__code="ns-dupi", site__code="NCK").count()
    assert 0 < nck < demo.randomized
    assert pooled_safety(_trial(), ["NCK"])["ae_overview"].columns[1] == f"All (N={nck})"


def test_the_infection_rate_row_follows_the_stored_fit(demo):
    """A finite rate ratio with its CI, or, when an arm had no infection (separation, likely in
    the small trial), "not estimable" with the fit's reason: never an optimiser's stopping point."""
    from trialdesk.analysis.models import AnalysisResult
    from trialdesk.reports.render import report_html

    html = report_html(_trial(), "final", user=_user(UNBLINDED), seed=5)
    result = (
        AnalysisResult.objects.filter(analysis_id="INFECTIONS_RATE", run__blinded=False)
        .order_by("-run_id")
        .first()
    )
    (ratio,) = result.tables["rate_ratios"]
    (fit,) = result.tables["fit"]
    if ratio["ratio"] is None:
        assert ratio["lower"] is None and ratio["p"] is None
        assert "no events in TRT01P=" in fit["messages"]
        assert "DUPI / PBO: not estimable; no events in TRT01P=" in html
    else:
        assert "no events" not in fit["messages"]
        assert f"DUPI / PBO: {ratio['ratio']:.2f} (" in html
