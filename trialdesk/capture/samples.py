"""Biopsy and microbiome samples: labels, storage, shipment batches and their receipt.

A :class:`~trialdesk.capture.models.Sample` is taken at a visit of a subject; its id (generated as
``<site>-<B|S><hex>`` unless given, in the form the study file's ``*_sample_id`` items accept) is
printed on a label with a QR code and a Code 128 barcode (:func:`label_svg`,
:func:`barcode_svg`). Site staff ship a batch of their site's unshipped samples (:func:`ship`)
and mark it received by the central laboratory (:func:`receive`). The marker
results the laboratory returns are the MARKERS records of the subject whose ``marker_sample_id``
is the sample's id (:func:`marker_results`). Every write is audited in its transaction; only the
data-entry roles of the sample's site may write.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import secrets
from collections.abc import Sequence
from typing import Any

import segno
from barcode import Code128
from barcode.writer import SVGWriter
from django.db import transaction

from trialdesk.accounts import policy
from trialdesk.audit.services import record as audit
from trialdesk.protocol.models import Site, Study
from trialdesk.screening.models import Subject

from . import records
from .models import FormRecord, Sample, SampleType, Shipment, Visit

SAMPLE_ID = re.compile(r"[A-Z0-9][A-Z0-9-]{3,29}")
#: Code 128 on the label: the narrowest bar (the module) and the bar height, in millimetres;
#: the quiet zone either side is the ten modules the symbology asks for.
BARCODE_MODULE_MM = 0.25
BARCODE_HEIGHT_MM = 8.0
MARKERS_FORM = "MARKERS"


class SampleError(ValueError):
    """A sample or shipment write that cannot be made; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def _check_may_enter(by: Any, site: Site) -> None:
    if not policy.may_enter_data(by, site):
        raise SampleError("site", f"{getattr(by, 'username', by)!r} may not handle samples here")


def new_sample_id(site: Site, kind: str) -> str:
    """A fresh sample id: the site code, B (biopsy) or S (swab), six hexadecimal digits."""
    letter = "B" if kind == SampleType.BIOPSY else "S"
    while True:
        candidate = f"{site.code}-{letter}{secrets.token_hex(3).upper()}"
        if not Sample.objects.filter(sample_id=candidate).exists():
            return candidate


def create_sample(
    subject: Subject,
    *,
    kind: str,
    visit_code: str,
    taken_at: dt.datetime,
    storage: str,
    by: Any,
    sample_id: str = "",
) -> Sample:
    """Record a sample taken at a visit of a subject.

    Raises
    ------
    SampleError
        Naming ``site``, ``kind``, ``visit``, ``storage`` or ``sample_id`` and the value.
    """
    _check_may_enter(by, subject.site)
    if kind not in SampleType.values:
        raise SampleError("kind", f"{kind!r} is not one of {', '.join(SampleType.values)}")
    if not Visit.objects.filter(subject=subject, code=visit_code).exists():
        raise SampleError("visit", f"{visit_code!r} is not a planned visit of {subject.subject_id}")
    storage = (storage or "").strip()
    if not storage:
        raise SampleError("storage", "say how the sample is stored")
    sample_id = (sample_id or "").strip().upper() or new_sample_id(subject.site, kind)
    if not SAMPLE_ID.fullmatch(sample_id):
        raise SampleError("sample_id", f"{sample_id!r} is not 4–30 capitals, digits or dashes")
    if Sample.objects.filter(sample_id=sample_id).exists():
        raise SampleError("sample_id", f"{sample_id!r} is already used")
    with transaction.atomic():
        sample = Sample.objects.create(
            subject=subject,
            sample_id=sample_id,
            kind=kind,
            visit_code=visit_code,
            taken_at=taken_at,
            storage=storage,
            created_by=by,
        )
        audit(
            "sample.create",
            user=by,
            entity=sample,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "sample_id": sample_id,
                "kind": kind,
                "visit": visit_code,
                "taken_at": taken_at.isoformat(),
                "storage": storage,
            },
        )
    return sample


def ship(
    study: Study,
    site: Site,
    sample_ids: Sequence[str],
    *,
    batch: str,
    shipped_on: dt.date,
    by: Any,
) -> Shipment:
    """Send a batch of the site's unshipped samples to the central laboratory.

    Raises
    ------
    SampleError
        ``site``, ``batch`` (empty or already used), ``samples`` (none, or one that is not an
        unshipped sample of the site), ``shipped_on`` (before a sample was taken).
    """
    _check_may_enter(by, site)
    batch = (batch or "").strip()
    if not batch:
        raise SampleError("batch", "name the shipment batch")
    if Shipment.objects.filter(study=study, batch=batch).exists():
        raise SampleError("batch", f"{batch!r} is already used")
    if not sample_ids:
        raise SampleError("samples", "choose at least one sample")
    with transaction.atomic():
        samples = list(
            Sample.objects.select_for_update().filter(
                sample_id__in=list(sample_ids),
                subject__site=site,
                subject__study=study,
                shipment__isnull=True,
            )
        )
        found = {sample.sample_id for sample in samples}
        missing = [sid for sid in sample_ids if sid not in found]
        if missing:
            raise SampleError(
                "samples", f"{missing[0]!r} is not an unshipped sample of {site.code}"
            )
        early = [s for s in samples if s.taken_at.date() > shipped_on]
        if early:
            raise SampleError(
                "shipped_on", f"{shipped_on} is before {early[0].sample_id} was taken"
            )
        shipment = Shipment.objects.create(
            study=study, site=site, batch=batch, shipped_on=shipped_on, shipped_by=by
        )
        Sample.objects.filter(pk__in=[s.pk for s in samples]).update(shipment=shipment)
        audit(
            "sample.ship",
            user=by,
            entity=shipment,
            study=study.code,
            site=site.code,
            changes={
                "batch": batch,
                "shipped_on": shipped_on.isoformat(),
                "samples": sorted(found),
            },
        )
    return shipment


def receive(shipment: Shipment, *, on: dt.date, by: Any) -> Shipment:
    """Mark a shipment received by the central laboratory on a date.

    Raises
    ------
    SampleError
        ``site``, ``received_on`` (before the shipment, or already received).
    """
    _check_may_enter(by, shipment.site)
    if shipment.received_on is not None:
        raise SampleError("received_on", f"{shipment.batch} was received on {shipment.received_on}")
    if on < shipment.shipped_on:
        raise SampleError("received_on", f"{on} is before the shipment on {shipment.shipped_on}")
    with transaction.atomic():
        shipment.received_on = on
        shipment.received_by = by
        shipment.save(update_fields=["received_on", "received_by"])
        audit(
            "sample.receive",
            user=by,
            entity=shipment,
            study=shipment.study.code,
            site=shipment.site.code,
            changes={"batch": shipment.batch, "received_on": [None, on.isoformat()]},
        )
    return shipment


def visible_samples(user: Any, study: Study) -> Any:
    """The samples of the study at the sites the user may see."""
    return Sample.objects.filter(
        subject__study=study, subject__site__in=policy.visible_sites(user, study)
    ).select_related("subject", "subject__site", "shipment")


def marker_results(sample: Sample) -> list[dict[str, Any]]:
    """The MARKERS records of the sample's subject that name this sample, with their values."""
    results = []
    rows = FormRecord.objects.filter(subject=sample.subject, form=MARKERS_FORM).prefetch_related(
        "values"
    )
    for record in rows:
        items = records.items_of(record)
        if items.get("marker_sample_id") == sample.sample_id:
            results.append({"record": record, "items": items})
    return results


def label_svg(sample: Sample) -> str:
    """An inline SVG QR code of the sample id, for the printed label."""
    return segno.make(sample.sample_id, error="m").svg_inline(scale=3)


def barcode_svg(sample: Sample) -> str:
    """An inline SVG Code 128 barcode of the sample id (bars only: the label prints the id)."""
    out = io.BytesIO()
    Code128(sample.sample_id, writer=SVGWriter()).write(
        out,
        options={
            "module_width": BARCODE_MODULE_MM,
            "module_height": BARCODE_HEIGHT_MM,
            "quiet_zone": 10 * BARCODE_MODULE_MM,
            "write_text": False,
        },
    )
    svg = out.getvalue().decode("utf-8")
    return svg[svg.index("<svg") :]
