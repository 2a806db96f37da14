"""The Code 128 barcode of a sample label: decoded back from the SVG's bars to the sample id."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest
from barcode.charsets.code128 import CODES, STOP
from django.urls import reverse
from django.utils import timezone

from tests.capture.conftest import d0, planned_subject  # noqa: F401 - fixtures
from trialdesk.capture import samples
from trialdesk.capture.models import Sample

SVG = "{http://www.w3.org/2000/svg}"
START = {103: "A", 104: "B", 105: "C"}
SWITCH = {99: "C", 100: "B", 101: "A"}


def _modules(svg: str) -> str:
    """The bar pattern (1 = bar, 0 = space, one character per module) drawn by the SVG."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    module, quiet = samples.BARCODE_MODULE_MM, 10 * samples.BARCODE_MODULE_MM
    bars = []
    for rect in root.iter(f"{SVG}rect"):
        if "black" not in rect.get("style", ""):
            continue
        x, width = (float(rect.get(name).removesuffix("mm")) for name in ("x", "width"))
        start, span = (x - quiet) / module, width / module
        assert abs(start - round(start)) < 1e-6 and abs(span - round(span)) < 1e-6
        bars.append((round(start), round(span)))
    pattern = ["0"] * max(start + span for start, span in bars)
    for start, span in bars:
        pattern[start : start + span] = "1" * span
    return "".join(pattern)


def decode(svg: str) -> str:
    """Decode Code 128 (sets A, B, C), checking the start, the checksum and the stop."""
    pattern = _modules(svg)
    assert pattern.endswith(STOP + "11"), "no stop pattern"
    body = pattern[: -len(STOP + "11")]
    assert len(body) % 11 == 0
    values = [CODES.index(body[i : i + 11]) for i in range(0, len(body), 11)]
    start, *data, checksum = values
    assert start in START
    assert (start + sum(i * v for i, v in enumerate(data, 1))) % 103 == checksum
    text, charset = "", START[start]
    for value in data:
        if value in SWITCH:
            charset = SWITCH[value]
        elif charset == "C":
            text += f"{value:02d}"
        else:
            assert value < 96, f"control code {value} in a sample id"
            text += chr(value + 32)
    return text


@pytest.mark.parametrize("sample_id", ["TLS-B1A2B3", "NCK-S00F3C", "TLS-SW0001", "AB12-3456789012"])
def test_the_barcode_decodes_to_the_sample_id(sample_id):
    svg = samples.barcode_svg(Sample(sample_id=sample_id))
    assert svg.startswith("<svg") and "<?xml" not in svg and "DOCTYPE" not in svg
    assert decode(svg) == sample_id


def test_the_bars_change_with_the_id_and_grow_with_its_length():
    short = _modules(samples.barcode_svg(Sample(sample_id="TLS-B1A2B3")))
    other = _modules(samples.barcode_svg(Sample(sample_id="TLS-B1A2B4")))
    longer = _modules(samples.barcode_svg(Sample(sample_id="TLS-B1A2B3-XYZ")))
    assert short != other and len(short) == len(other)
    assert len(longer) == len(short) + 4 * 11  # four more characters
    assert short.count("01") != longer.count("01")


@pytest.mark.django_db
def test_the_label_page_shows_the_qr_code_and_the_code_128_barcode(
    client,
    planned_subject,  # noqa: F811 - fixture
    claire,
    d0,  # noqa: F811 - fixture
):
    taken = timezone.make_aware(dt.datetime.combine(d0, dt.time(10, 30)))
    sample = samples.create_sample(
        planned_subject, kind="biopsy", visit_code="D0", taken_at=taken, storage="-80 °C", by=claire
    )
    client.force_login(claire)
    page = client.get(reverse("samples:label", args=["ns-dupi", sample.sample_id])).content.decode()
    block = re.search(r'<div data-testid="code128"[^>]*>(.*?)</div>', page, re.S)
    assert block is not None and f"Code 128 barcode of {sample.sample_id}" in page
    assert decode(block.group(1)) == sample.sample_id
    assert 'data-testid="barcode"' in page and page.count("<svg") == 2
