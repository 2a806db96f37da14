"""The blinded reports of the demo trial: contents, CLI, PDF pages, blind to the allocation."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from trialdesk.cli import main

pytestmark = pytest.mark.django_db
SECTIONS = (
    "CONSORT flow diagram",
    "Screened and randomized per site",
    "Screen-failure reasons",
    "Baseline characteristics",
    "Adverse events by term",
    "Serious adverse events",
    "Queries outstanding",
    "SYNTHETIC DATA",
)


def _trial():
    from trialdesk.protocol.models import Study

    return Study.objects.get(code="ns-dupi")


def test_the_consort_numbers_of_the_demo_add_up_to_the_screening_log(demo):
    from trialdesk.reports.blinded import collect

    consort = collect(_trial()).consort
    consort.check()
    assert consort.assessed == demo.screened
    assert consort.randomized == demo.randomized


def test_screen_failure_reasons_name_the_criterion_and_cover_every_failure(demo):
    from trialdesk.reports.blinded import collect

    data = collect(_trial())
    assert data.failure_reasons
    assert all(": " in reason for reason, _ in data.failure_reasons)
    assert sum(n for _, n in data.failure_reasons) >= data.consort.excluded_not_eligible > 0


@pytest.mark.parametrize("kind", ["enrolment", "dsmb-open"])
def test_the_html_report_has_every_section_and_no_arm(demo, kind):
    from trialdesk.reports.render import report_html

    html = report_html(_trial(), kind)
    for section in SECTIONS:
        assert section in html
    assert not re.search(r"\b(DUPI|PBO)\b", html)


def test_the_blinded_report_does_not_notice_swapped_arms(demo):
    from trialdesk.randomization.models import SealedKit, SealedRow
    from trialdesk.reports.render import report_html

    before = report_html(_trial(), "dsmb-open")
    swap = {"DUPI": "PBO", "PBO": "DUPI"}
    for model in (SealedRow, SealedKit):
        for row in model.objects.all():
            model.objects.filter(pk=row.pk).update(arm=swap.get(row.arm, row.arm))
    assert SealedRow.objects.exists()
    assert report_html(_trial(), "dsmb-open") == before


@pytest.mark.parametrize("kind", ["dsmb-closed", "final"])
def test_unblinded_kinds_are_refused_with_exit_2(kind, tmp_path):
    result = CliRunner().invoke(
        main, ["report", "--study", "ns-dupi", "--kind", kind, "--out", str(tmp_path / "r.pdf")]
    )
    assert result.exit_code == 2
    assert "unblinded role" in result.output
    assert not (tmp_path / "r.pdf").exists()


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_the_pdf_has_every_section_and_no_blank_page(demo, tmp_path):
    from PIL import Image

    out = tmp_path / "enrolment.pdf"
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--study",
            "ns-dupi",
            "--kind",
            "enrolment",
            "--format",
            "pdf",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    text = subprocess.run(
        ["pdftotext", str(out), "-"], check=True, capture_output=True, text=True
    ).stdout
    for section in SECTIONS:
        assert section in text
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(out), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages
    for page in pages:
        low, high = Image.open(page).convert("L").getextrema()
        assert low < high, f"{page.name} is blank"


@pytest.mark.parametrize("kind", ["enrolment", "dsmb-open"])
def test_no_query_of_a_blinded_report_touches_a_randomization_table(demo, kind):
    from django.apps import apps
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from trialdesk.reports.render import report_html

    tables = {model._meta.db_table for model in apps.get_app_config("randomization").get_models()}
    assert "randomization_sealed_row" in tables
    with CaptureQueriesContext(connection) as queries:
        report_html(_trial(), kind)
    assert len(queries) > 5
    for query in queries:
        assert not any(table in query["sql"] for table in tables), query["sql"]


def test_the_command_writes_the_html_report_and_refuses_an_unknown_study(demo, tmp_path):
    out = tmp_path / "dsmb.html"
    args = ["report", "--kind", "dsmb-open", "--format", "html", "--out", str(out)]
    written = CliRunner().invoke(main, [*args, "--study", "ns-dupi"])
    assert written.exit_code == 0, written.output
    assert "DSMB open report" in out.read_text(encoding="utf-8")
    missing = CliRunner().invoke(main, [*args, "--study", "nope"])
    assert missing.exit_code == 2 and "no study 'nope'" in missing.output
