"""Render the reports to HTML (a Django template) and to PDF (WeasyPrint).

The blinded kinds (enrolment, DSMB open) come from :mod:`.blinded`, which never reads the
allocation; the unblinded kinds (DSMB closed, final) from :mod:`.unblinded`, for a user the
blinding policy lets see the allocation at every site (:func:`.unblinded.check_access`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

from django.template.loader import render_to_string

from trialdesk.protocol.models import Study

from .blinded import collect
from .consort import consort_by_arm_svg, consort_svg
from .figures import enrolment_png, missing_png, over_time_png, primary_png, queries_png
from .tables import Table, safety_tables
from .unblinded import QUERY_AGE_BINS, collect_unblinded, visit_order

#: Kinds built from blinded code paths only.
BLINDED_KINDS: tuple[str, ...] = ("enrolment", "dsmb-open")
#: Kinds that need the allocation (an unblinded role at every site).
UNBLINDED_KINDS: tuple[str, ...] = ("dsmb-closed", "final")
TITLES = {
    "enrolment": "Enrolment report",
    "dsmb-open": "DSMB open report",
    "dsmb-closed": "DSMB closed report",
    "final": "Final report",
}
NOTICES = {
    "dsmb-closed": "UNBLINDED: for the DSMB closed session only; results by treatment arm",
    "final": "UNBLINDED: final analysis report; results by treatment arm",
}


class ReportKindError(ValueError):
    """A report kind that does not exist."""

    def __init__(self, kind: str) -> None:
        kinds = ", ".join((*BLINDED_KINDS, *UNBLINDED_KINDS))
        super().__init__(f"kind={kind!r} is not a report kind (kinds: {kinds})")
        self.kind = kind


def report_html(
    study: Study,
    kind: str,
    site_codes: Iterable[str] | None = None,
    *,
    user: Any = None,
    seed: int | None = None,
    progress: Callable[[Any], None] | None = None,
) -> str:
    """The report ``kind`` of ``study`` as a standalone HTML page.

    Parameters
    ----------
    site_codes : iterable of str, optional
        Blinded kinds only: the sites the report covers (all when None). The unblinded kinds
        always cover every site.
    user : User, optional
        Unblinded kinds only: who the report is for (the blinding policy decides); when the
        stored analysis run does not match the data, the plan is run for this user.
    seed, progress
        Unblinded kinds only: seed and progress callback of that run of the plan.

    Raises
    ------
    ReportKindError
        ``kind`` is not a report kind.
    ReportAccessError
        An unblinded kind for a user who may not see the allocation at every site.
    """
    if kind in UNBLINDED_KINDS:
        return _unblinded_html(study, kind, user=user, seed=seed, progress=progress)
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
        "safety": pooled_safety(study, site_codes) if kind == "dsmb-open" else None,
        "consort_svg": base64.b64encode(svg.encode()).decode("ascii"),
        "enrolment_png": enrolment_png(data.enrolment),
    }
    return render_to_string("reports/blinded_report.html", context)


def pooled_safety(study: Study, site_codes: Iterable[str] | None = None) -> dict[str, Table]:
    """The safety tables of a blinded build of the datasets (no allocation read), arms pooled.

    Restricted to the subjects of ``site_codes`` when given.
    """
    from trialdesk.analysis.datasets import AnalysisDataset, DatasetBundle, build_datasets
    from trialdesk.analysis.plan import load_plan
    from trialdesk.protocol import resolve_study_path

    bundle = build_datasets(study, load_plan(resolve_study_path(study.code)), blinded=True)
    if site_codes is not None:
        adsl = bundle["ADSL"].frame
        keep = set(adsl.loc[adsl["SITEID"].isin(set(site_codes)), "USUBJID"])
        bundle = DatasetBundle(
            bundle.study,
            True,
            {
                name: AnalysisDataset(name, d.frame.loc[d.frame["USUBJID"].isin(keep)])
                for name, d in bundle.datasets.items()
            },
        )
    return safety_tables(bundle)


def _unblinded_html(
    study: Study,
    kind: str,
    *,
    user: Any,
    seed: int | None,
    progress: Callable[[Any], None] | None,
) -> str:
    from trialdesk.analysis.runner import ARM

    data = collect_unblinded(study, user, seed=seed, progress=progress)
    data.consort.check()
    svg = consort_by_arm_svg(data.consort)
    context = {
        "kind": kind,
        "title": TITLES[kind],
        "notice": NOTICES[kind],
        "final": kind == "final",
        "data": data,
        "blinded": data.blinded,
        "user_name": user.get_full_name() or user.username,
        "consort_svg": base64.b64encode(svg.encode()).decode("ascii"),
        "primary_png": primary_png(
            data.primary_points, data.primary_lsmeans, "NASA change from D0 to W16 (ITT)"
        ),
        "over_time_png": over_time_png(data.over_time, ARM),
        "queries_png": queries_png(data.query_ages, [name for name, _ in QUERY_AGE_BINS]),
        "missing_png": missing_png(data.missing, visit_order(data.missing)),
    }
    return render_to_string("reports/unblinded_report.html", context)


def report_pdf(
    study: Study,
    kind: str,
    site_codes: Iterable[str] | None = None,
    *,
    user: Any = None,
    seed: int | None = None,
    progress: Callable[[Any], None] | None = None,
) -> bytes:
    """The report ``kind`` of ``study`` as PDF bytes (arguments as :func:`report_html`)."""
    return html_to_pdf(
        report_html(study, kind, site_codes, user=user, seed=seed, progress=progress)
    )


def html_to_pdf(html: str) -> bytes:
    """A report's HTML page as PDF bytes (WeasyPrint)."""
    from weasyprint import HTML

    return HTML(string=html).write_pdf()
