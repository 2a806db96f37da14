"""Samples: ids and labels, shipment batches and receipt, marker results, pages, site access."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.capture.conftest import d0, planned_subject  # noqa: F401 - fixtures
from trialdesk.audit.models import AuditEvent
from trialdesk.capture import samples
from trialdesk.capture.models import Sample, Shipment
from trialdesk.capture.records import save_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def taken(d0):  # noqa: F811 - fixture
    return timezone.make_aware(dt.datetime.combine(d0, dt.time(10, 30)))


@pytest.fixture
def biopsy(planned_subject, claire, taken):  # noqa: F811 - fixture
    return samples.create_sample(
        planned_subject, kind="biopsy", visit_code="D0", taken_at=taken, storage="-80 °C", by=claire
    )


def test_a_sample_gets_an_id_the_study_file_accepts_and_is_audited(biopsy, planned_subject):  # noqa: F811
    assert samples.SAMPLE_ID.fullmatch(biopsy.sample_id)
    assert biopsy.sample_id.startswith(f"{planned_subject.site.code}-B")
    event = AuditEvent.objects.get(action="sample.create")
    assert event.entity_id == str(biopsy.pk) and event.username == "claire"


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("kind", {"kind": "blood"}),
        ("visit", {"visit_code": "W99"}),
        ("storage", {"storage": " "}),
        ("sample_id", {"sample_id": "x"}),
    ],
)
def test_bad_sample_input_names_the_field(planned_subject, claire, taken, field, changes):  # noqa: F811
    arguments = {
        "kind": "swab",
        "visit_code": "D0",
        "taken_at": taken,
        "storage": "4 °C",
        **changes,
    }
    with pytest.raises(samples.SampleError) as refused:
        samples.create_sample(planned_subject, by=claire, **arguments)
    assert refused.value.field == field
    assert not Sample.objects.exists()


def test_a_duplicate_sample_id_is_refused(biopsy, planned_subject, claire, taken):  # noqa: F811
    with pytest.raises(samples.SampleError, match="already used"):
        samples.create_sample(
            planned_subject,
            kind="swab",
            visit_code="D0",
            taken_at=taken,
            storage="4 °C",
            sample_id=biopsy.sample_id,
            by=claire,
        )


def test_other_sites_staff_cannot_record_ship_or_receive(biopsy, planned_subject, paul, taken):  # noqa: F811
    with pytest.raises(samples.SampleError, match="site"):
        samples.create_sample(
            planned_subject, kind="swab", visit_code="D0", taken_at=taken, storage="x", by=paul
        )
    site = planned_subject.site
    with pytest.raises(samples.SampleError, match="site"):
        samples.ship(
            planned_subject.study,
            site,
            [biopsy.sample_id],
            batch="B1",
            shipped_on=taken.date(),
            by=paul,
        )


def test_ship_then_receive(biopsy, planned_subject, claire, taken):  # noqa: F811
    study, site, day = planned_subject.study, planned_subject.site, taken.date()
    with pytest.raises(samples.SampleError, match="shipped_on"):
        samples.ship(
            study,
            site,
            [biopsy.sample_id],
            batch="B1",
            shipped_on=day - dt.timedelta(days=1),
            by=claire,
        )
    shipment = samples.ship(study, site, [biopsy.sample_id], batch="B1", shipped_on=day, by=claire)
    biopsy.refresh_from_db()
    assert biopsy.shipment == shipment
    with pytest.raises(samples.SampleError, match="unshipped"):
        samples.ship(study, site, [biopsy.sample_id], batch="B2", shipped_on=day, by=claire)
    with pytest.raises(samples.SampleError, match="received_on"):
        samples.receive(shipment, on=day - dt.timedelta(days=1), by=claire)
    samples.receive(shipment, on=day + dt.timedelta(days=2), by=claire)
    assert Shipment.objects.get().received_on == day + dt.timedelta(days=2)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"sample.ship", "sample.receive"} <= actions


def test_marker_results_are_attached_by_sample_id(biopsy, planned_subject, claire, d0):  # noqa: F811
    def marker(sample_id, value):
        data = {
            "marker_sample_id": sample_id,
            "marker": "IL17A",
            "marker_method": "elisa",
            "marker_value": value,
            "marker_unit": "pg/mL",
        }
        return save_form(planned_subject, "MARKERS", data, by=claire, visit_code="D0")

    marker(biopsy.sample_id, "12.5")
    marker("TLS-OTHER1", "3")
    results = samples.marker_results(biopsy)
    assert [r["items"]["marker_value"] for r in results] == [12.5]


def test_the_pages_list_record_ship_receive_and_label(client, planned_subject, claire, taken):  # noqa: F811
    client.force_login(claire)
    url = reverse("samples:list", args=["ns-dupi"])
    response = client.post(
        url,
        {
            "action": "create",
            "subject": planned_subject.subject_id,
            "visit": "D0",
            "kind": "swab",
            "taken_at": taken.strftime("%Y-%m-%dT%H:%M"),
            "storage": "-20 °C",
            "sample_id": "TLS-SW0001",
        },
    )
    assert response.status_code == 302
    assert "TLS-SW0001" in client.get(url).content.decode()
    day = taken.date().isoformat()
    ship = {"action": "ship", "site": "TLS", "samples": ["TLS-SW0001"], "batch": "T-01"}
    assert client.post(url, {**ship, "shipped_on": day}).status_code == 302
    shipment = Shipment.objects.get()
    bad = client.post(url, {"action": "receive", "shipment": shipment.pk, "received_on": "x"})
    assert bad.status_code == 400 and "received_on" in bad.content.decode()
    received = {"action": "receive", "shipment": shipment.pk, "received_on": day}
    assert client.post(url, received).status_code == 302
    label = client.get(reverse("samples:label", args=["ns-dupi", "TLS-SW0001"]))
    page = label.content.decode()
    assert label.status_code == 200 and "<svg" in page and "TLS-SW0001" in page
    assert "T-01" in page


def test_another_sites_samples_are_404(client, biopsy, paul):
    client.force_login(paul)
    label = reverse("samples:label", args=["ns-dupi", biopsy.sample_id])
    assert client.get(label).status_code == 404
    assert (
        biopsy.sample_id
        not in client.get(reverse("samples:list", args=["ns-dupi"])).content.decode()
    )
    url = reverse("samples:list", args=["ns-dupi"])
    shipment_post = {"action": "ship", "site": "TLS", "samples": [biopsy.sample_id], "batch": "X"}
    assert client.post(url, {**shipment_post, "shipped_on": "2026-01-01"}).status_code == 404
