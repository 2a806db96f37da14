"""The CONSORT diagram by arm: each arm adds up, the arms add up to the pool, a wrong box is named."""

from __future__ import annotations

import base64

import pytest

from tests.reports.test_consort import _consort as pooled_consort
from trialdesk.reports.consort import (
    ArmFlow,
    Consort,
    ConsortByArm,
    ConsortError,
    consort_by_arm_svg,
)


def _pooled(**changes: int) -> Consort:
    return pooled_consort(**changes)


def _arm(arm: str, **values: int) -> ArmFlow:
    base = dict(
        allocated=16,
        received=16,
        lost=1,
        withdrawn=1,
        completed=7,
        ongoing=7,
        analysed_itt=16,
        analysed_pp=14,
        analysed_safety=16,
    )
    if arm == "PBO":
        base = dict(
            allocated=8,
            received=8,
            lost=0,
            withdrawn=1,
            completed=3,
            ongoing=4,
            analysed_itt=8,
            analysed_pp=7,
            analysed_safety=8,
        )
    base.update(values)
    return ArmFlow(arm=arm, **base)


def test_arms_that_add_up_to_the_pool_pass_and_every_box_is_drawn():
    consort = ConsortByArm(_pooled(), (_arm("DUPI"), _arm("PBO")))
    consort.check()
    svg = consort_by_arm_svg(consort)
    for text in (
        "Assessed for eligibility (n=40)",
        "Excluded (n=16)",
        "Randomized (n=24)",
        "Allocated to DUPI (n=16)",
        "Allocated to PBO (n=8)",
        "Analysed, per protocol (n=14)",
        "Excluded from PP (n=1)",
        "Still in follow-up (n=4)",
    ):
        assert text in svg
    assert base64.b64encode(svg.encode())


def test_an_arm_whose_follow_up_does_not_add_up_is_named():
    consort = ConsortByArm(_pooled(), (_arm("DUPI", completed=8), _arm("PBO")))
    with pytest.raises(ConsortError, match=r"DUPI\.allocated=16 but its parts add up to 17"):
        consort.check()


def test_arms_that_do_not_add_up_to_the_randomized_are_refused():
    arms = (
        _arm("DUPI"),
        _arm("PBO", allocated=7, ongoing=3, analysed_itt=7, received=7, analysed_safety=7),
    )
    with pytest.raises(ConsortError) as error:
        ConsortByArm(_pooled(), arms).check()
    assert (error.value.field, error.value.value, error.value.expected) == ("randomized", 24, 23)


@pytest.mark.parametrize(
    ("changes", "box"),
    [
        ({"received": 17}, "DUPI.received"),
        ({"analysed_itt": 15}, "DUPI.analysed_itt"),
        ({"analysed_safety": 15}, "DUPI.analysed_safety"),
        ({"analysed_pp": 17}, "DUPI.analysed_pp"),
    ],
)
def test_each_box_of_an_arm_is_checked(changes, box):
    with pytest.raises(ConsortError) as error:
        _arm("DUPI", **changes).check()
    assert error.value.field == box


def test_a_pooled_box_beside_the_arms_is_checked_too():
    consort = ConsortByArm(_pooled(lost=2, ongoing=10), (_arm("DUPI"), _arm("PBO")))
    with pytest.raises(ConsortError) as error:
        consort.check()
    assert error.value.field == "lost"
