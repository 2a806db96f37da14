"""The CONSORT boxes add up, and a box that does not is named."""

from __future__ import annotations

import pytest

from trialdesk.reports.consort import Consort, ConsortError, consort_svg


def _consort(**changes: int) -> Consort:
    values = dict(
        assessed=40,
        excluded_not_eligible=14,
        excluded_declined=2,
        pending=0,
        randomized=24,
        received=24,
        lost=1,
        withdrawn=2,
        completed=10,
        ongoing=11,
        analysed_itt=24,
        analysed_safety=24,
    )
    values.update(changes)
    return Consort(**values)


def test_a_consistent_flow_passes_and_every_number_is_drawn():
    consort = _consort()
    consort.check()
    svg = consort_svg(consort)
    for text in ("n=40", "n=16", "n=14", "n=24", "n=1)", "n=2)", "n=10", "n=11"):
        assert text in svg


@pytest.mark.parametrize(
    ("changes", "box"),
    [
        ({"assessed": 41}, "assessed"),
        ({"completed": 9}, "randomized"),
        ({"analysed_itt": 23}, "analysed_itt"),
        ({"received": 25, "analysed_safety": 25}, "received"),
        ({"analysed_safety": 23}, "analysed_safety"),
    ],
)
def test_a_box_that_does_not_add_up_is_named(changes, box):
    with pytest.raises(ConsortError, match=box):
        _consort(**changes).check()
