"""Render the blinded reports to HTML (a Django template) and to PDF (WeasyPrint)."""

from __future__ import annotations

import base64
from collections.abc import Iterable

from django.template.loader import render_to_string

from trialdesk.protocol.models import Study

from .blinded import collect
from .consort import consort_svg
from .figures import enrolment_png

#: Kinds built from blinded code paths only.
BLINDED_KINDS: tuple[str, ...] = ("enrolment", "dsmb-open")
#: Kinds that need the allocation (an unblinded role); not built yet.
UNBLINDED_KINDS: tuple[str, ...] = ("dsmb-closed", "final")
TITLES = {"enrolment": "Enrolment report", "dsmb-open": "DSMB open report"}


class ReportKindError(ValueError):
    """A report kind that is unknown or not built by the blinded path."""

    def __init__(self, kind: str) -> None:
        if kind in UNBLINDED_KINDS:
            message = (
                f"kind={kind!r} needs an unblinded role and is not built yet; "
                f"available: {', '.join(BLINDED_KINDS)}"
            )
        else:
            message = f"kind={kind!r} is not a report kind"
        super().__init__(message)
        self.kind = kind


def report_html(study: Study, kind: str, site_codes: Iterable[str] | None = None) -> str:
    """The blinded report ``kind`` of ``study`` as a standalone HTML page.

    Raises
    ------
    ReportKindError
        ``kind`` is not a blinded kind.
    """
    if kind not in BLINDED_KINDS:
        raise ReportKindError(kind)
    data = collect(study, site_codes)
    data.consort.check()
    svg = consort_svg(data.consort)
    context = {
        "kind": kind,
        "title": TITLES[kind],
        "data": data,
        "dsmb": kind == "dsmb-open",
        "consort_svg": base64.b64encode(svg.encode()).decode("ascii"),
        "enrolment_png": enrolment_png(data.enrolment),
    }
    return render_to_string("reports/blinded_report.html", context)


def report_pdf(study: Study, kind: str, site_codes: Iterable[str] | None = None) -> bytes:
    """The blinded report ``kind`` of ``study`` as PDF bytes."""
    from weasyprint import HTML

    return HTML(string=report_html(study, kind, site_codes)).write_pdf()
