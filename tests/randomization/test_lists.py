"""Properties of generated randomization and kit lists (``trialdesk.randomization.lists``).

The statistical checks run over 10,000 NS-DUPI lists generated from the fixed seeds 0..9,999,
so they are deterministic; each tolerance is 5 binomial (or sample) standard errors.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from trialdesk.randomization.lists import (
    ALGORITHM,
    DesignError,
    Generated,
    ListDesign,
    generate,
    kit_number_range,
    kits_csv,
    list_csv,
    meta_json,
)

NS_DUPI = ListDesign.of(arms=[("DUPI", 2), ("PBO", 1)], block_sizes=[3, 6], strata=["TLS", "NCK"])
N_LISTS = 10_000
PER_STRATUM = 12
UNITS = 9  # reading A: 2 syringes at D0, then 1 at W2..W14
RESERVE = 10
Z = 5.0


def _ns_dupi(seed: int, per_stratum: int = PER_STRATUM) -> Generated:
    return generate(
        NS_DUPI, seed=seed, per_stratum=per_stratum, kits_per_subject=UNITS, reserve=RESERVE
    )


@dataclass(frozen=True)
class Stratum:
    """One stratum of one list, as arrays."""

    active: np.ndarray  # 1 for DUPI, 0 for PBO, in seq order
    block: np.ndarray
    block_size: np.ndarray
    seq: np.ndarray


@pytest.fixture(scope="module")
def lists() -> list[Generated]:
    return [_ns_dupi(seed) for seed in range(N_LISTS)]


@pytest.fixture(scope="module")
def strata(lists) -> list[Stratum]:
    return list(_strata_of(lists))


def _strata_of(generated_lists):
    for generated in generated_lists:
        for code in NS_DUPI.strata:
            rows = [row for row in generated.rows if row.stratum == code]
            yield Stratum(
                active=np.array([row.arm == "DUPI" for row in rows], dtype=int),
                block=np.array([row.block for row in rows]),
                block_size=np.array([row.block_size for row in rows]),
                seq=np.array([row.seq for row in rows]),
            )


def _assert_within(observed: float, expected: float, se: float, what: str) -> None:
    assert abs(observed - expected) <= Z * se, (
        f"{what}: observed {observed:.5f}, expected {expected:.5f} ± {Z} × {se:.5f}"
    )


# --- the randomization list ---------------------------------------------------------------


def test_there_are_at_least_ten_thousand_lists(lists, strata):
    assert len(lists) >= 10_000
    assert len(strata) == 2 * len(lists)


def test_rows_are_numbered_within_their_stratum_in_design_order(lists):
    for generated in lists[:500]:
        assert [row.stratum for row in generated.rows] == sorted(
            (row.stratum for row in generated.rows), key=NS_DUPI.strata.index
        )
    for stratum in _strata_of(lists[:500]):
        assert stratum.seq.tolist() == list(range(1, len(stratum.seq) + 1))
        assert stratum.block[0] == 1
        assert set(np.diff(stratum.block).tolist()) <= {0, 1}


def test_every_block_is_complete_and_holds_exactly_two_to_one(strata):
    for stratum in strata:
        for block in np.unique(stratum.block):
            members = stratum.block == block
            size = stratum.block_size[members]
            assert len(set(size.tolist())) == 1
            assert members.sum() == size[0], "a block is cut short"
            assert size[0] in (3, 6)
            assert stratum.active[members].sum() * 3 == 2 * size[0]


def test_a_stratum_is_the_fewest_whole_blocks_reaching_per_stratum(strata):
    lengths = np.array([len(s.active) for s in strata])
    last_block_sizes = np.array([s.block_size[-1] for s in strata])
    assert (lengths >= PER_STRATUM).all()
    assert (lengths - last_block_sizes < PER_STRATUM).all()
    assert lengths.max() <= PER_STRATUM + 5
    assert set(lengths.tolist()) == {12, 15}  # 12 = 3+3+3+3, 6+6, ...; 15 = 3+3+3+6, 3+6+6, ...


def test_imbalance_is_at_most_four_at_every_prefix_and_zero_at_block_ends(strata):
    worst = 0
    for stratum in strata:
        imbalance = np.cumsum(stratum.active) - 2 * np.cumsum(1 - stratum.active)
        worst = max(worst, int(np.abs(imbalance).max()))
        block_ends = np.r_[stratum.block[1:] != stratum.block[:-1], True]
        assert (imbalance[block_ends] == 0).all()
    assert worst == 4  # reached (DUPI ×4 opening a block of 6), never exceeded


def test_each_position_is_active_with_probability_two_thirds(strata):
    active = np.array([s.active[:PER_STRATUM] for s in strata])
    se = np.sqrt(2 / 3 * 1 / 3 / len(active))
    for position, share in enumerate(active.mean(axis=0), start=1):
        _assert_within(share, 2 / 3, se, f"P(active) at position {position}")


def test_block_sizes_three_and_six_are_drawn_with_equal_probability(strata):
    n = len(strata)
    se = np.sqrt(0.25 / n)
    first = np.array([s.block_size[0] for s in strata])
    second = np.array([s.block_size[s.block == 2][0] for s in strata])
    _assert_within(np.mean(first == 3), 0.5, se, "P(first block has 3)")
    _assert_within(np.mean(second == 3), 0.5, se, "P(second block has 3)")


def test_blocks_are_uniform_permutations(strata):
    # the placebo of a block of 3 sits at each position with probability 1/3,
    # and each of the 15 arrangements of a block of 6 has probability 1/15
    placebo_position: Counter[int] = Counter()
    arrangements: Counter[tuple[int, ...]] = Counter()
    for stratum in strata:
        for block in np.unique(stratum.block):
            arms = tuple(stratum.active[stratum.block == block].tolist())
            if len(arms) == 3:
                placebo_position[arms.index(0)] += 1
            else:
                arrangements[arms] += 1
    assert len(arrangements) == 15
    for counts, k in ((placebo_position, 3), (arrangements, 15)):
        total = sum(counts.values())
        se = np.sqrt((1 / k) * (1 - 1 / k) / total)
        for key, count in counts.items():
            _assert_within(count / total, 1 / k, se, f"P(block arrangement {key})")


# --- the kit list -------------------------------------------------------------------------


def test_there_are_enough_kits_for_every_dosing_visit_plus_the_reserve(lists):
    for generated in lists:
        rows = Counter(row.arm for row in generated.rows)
        kits = Counter(kit.arm for kit in generated.kits)
        assert kits == {arm: UNITS * rows[arm] + RESERVE for arm in ("DUPI", "PBO")}


def test_kit_numbers_are_unique_four_digit_and_listed_in_order(lists):
    for generated in lists:
        numbers = [kit.kit_number for kit in generated.kits]
        assert len(set(numbers)) == len(numbers)
        assert numbers == sorted(numbers)
        assert 1000 <= numbers[0] and numbers[-1] <= 9999


@pytest.fixture(scope="module")
def kit_arrays(lists) -> tuple[np.ndarray, np.ndarray]:
    numbers = np.array([kit.kit_number for g in lists for kit in g.kits])
    active = np.array([kit.arm == "DUPI" for g in lists for kit in g.kits])
    return numbers, active


@pytest.mark.parametrize("modulus", [2, 10])
def test_kit_number_residues_are_independent_of_the_arm(kit_arrays, modulus):
    numbers, active = kit_arrays
    table = np.array(
        [np.bincount(numbers[arm] % modulus, minlength=modulus) for arm in (active, ~active)]
    )
    statistic, _, dof, _ = stats.chi2_contingency(table)
    assert statistic < stats.chi2.ppf(1 - 1e-6, dof), table


def test_kit_numbers_of_both_arms_cover_the_same_range(kit_arrays):
    numbers, active = kit_arrays
    diff = numbers[active].mean() - numbers[~active].mean()
    se = numbers.std() * np.sqrt(1 / active.sum() + 1 / (~active).sum())
    _assert_within(diff, 0.0, se, "mean kit number DUPI - PBO")
    for arm in (active, ~active):
        share_low = np.mean(numbers[arm] < 5500)
        _assert_within(share_low, 0.5, np.sqrt(0.25 / arm.sum()), "share of kits below 5500")


def test_sorted_kit_order_is_not_aligned_with_the_arms(lists):
    # in each list sorted by kit number: the mean relative rank of DUPI kits is 1/2, and
    # neighbours share an arm as often as in a random permutation (no blocks, no alternation)
    ranks, same_observed, same_expected, same_var = [], 0, 0.0, 0.0
    for generated in lists:
        active = np.array([kit.arm == "DUPI" for kit in generated.kits])
        n, a = len(active), int(active.sum())
        ranks.append(np.flatnonzero(active).mean() / (n - 1))
        same_observed += int((active[1:] == active[:-1]).sum())
        p_same = (a * (a - 1) + (n - a) * (n - a - 1)) / (n * (n - 1))
        same_expected += (n - 1) * p_same
        same_var += (n - 1) * p_same * (1 - p_same)
    ranks = np.array(ranks)
    _assert_within(ranks.mean(), 0.5, ranks.std() / np.sqrt(len(ranks)), "mean rank of DUPI")
    # the adjacency indicators are weakly dependent; doubling the variance is conservative
    _assert_within(same_observed, same_expected, np.sqrt(2 * same_var), "same-arm neighbours")


def test_kit_numbers_are_drawn_afresh_for_every_list(lists):
    # two lists share as many kit numbers as two random draws from the 9,000 four-digit numbers
    overlaps, expected = [], []
    for one, other in zip(lists[:2000], lists[1:2001], strict=True):
        a = {kit.kit_number for kit in one.kits}
        b = {kit.kit_number for kit in other.kits}
        overlaps.append(len(a & b))
        expected.append(len(a) * len(b) / 9000)
    overlaps = np.array(overlaps)
    se = overlaps.std() / np.sqrt(len(overlaps))
    _assert_within(overlaps.mean(), float(np.mean(expected)), se, "kit numbers shared")


@pytest.mark.parametrize(
    ("n_kits", "expected"),
    [(1, (1000, 9999)), (900, (1000, 9999)), (901, (10000, 99999)), (9001, (100000, 999999))],
)
def test_the_kit_number_range_keeps_kits_sparse(n_kits, expected):
    assert kit_number_range(n_kits) == expected


def test_a_large_list_takes_five_digit_kit_numbers():
    generated = _ns_dupi(seed=7, per_stratum=60)
    numbers = [kit.kit_number for kit in generated.kits]
    assert len(numbers) > 900
    assert 10_000 <= min(numbers) and max(numbers) <= 99_999
    assert len(set(numbers)) == len(numbers)


# --- reproducibility ----------------------------------------------------------------------


def _hashes(generated: Generated) -> tuple[str, str]:
    return tuple(
        hashlib.sha256(text.encode()).hexdigest()
        for text in (list_csv(generated), kits_csv(generated))
    )


def test_the_same_seed_gives_byte_identical_files():
    first, second = _ns_dupi(seed=2024), _ns_dupi(seed=2024)
    assert list_csv(first) == list_csv(second)
    assert kits_csv(first) == kits_csv(second)
    hashes = {"randomization.csv": "0" * 64}
    provenance = {"version": "1.0", "sha256": "ab" * 32}
    assert meta_json(first, study="ns-dupi", study_file=provenance, file_hashes=hashes) == (
        meta_json(second, study="ns-dupi", study_file=provenance, file_hashes=hashes)
    )


def test_different_seeds_give_different_files():
    hashes = [_hashes(_ns_dupi(seed)) for seed in range(300)]
    assert len({lists for lists, _ in hashes}) == 300
    assert len({kits for _, kits in hashes}) == 300


def test_algorithm_v1_is_frozen():
    # a recorded seed must regenerate the same list; if this fails after a NumPy upgrade,
    # NumPy changed its streams and the algorithm version must be raised, not this hash
    assert ALGORITHM == "trialdesk list algorithm v1"
    assert list_csv(_ns_dupi(seed=1)).splitlines()[:4] == [
        "stratum,seq,block,block_size,arm",
        "TLS,1,1,3,DUPI",
        "TLS,2,1,3,DUPI",
        "TLS,3,1,3,PBO",
    ]
    assert _hashes(_ns_dupi(seed=1))[0] == (
        "7ddf62d7bae4bd282173074282e358a82f0071a94c2bf7bd86ce1c5915e9a6b5"
    )


def test_csv_columns_and_line_endings():
    generated = _ns_dupi(seed=3)
    assert list_csv(generated).startswith("stratum,seq,block,block_size,arm\n")
    assert kits_csv(generated).startswith("kit_number,arm\n")
    assert "\r" not in list_csv(generated) + kits_csv(generated)
    assert len(kits_csv(generated).splitlines()) == len(generated.kits) + 1


# --- other designs and bad input ----------------------------------------------------------


def test_other_ratios_and_block_sizes_hold_their_ratio():
    design = ListDesign.of(
        arms=[("A", 1), ("B", 1), ("C", 2)], block_sizes=[4, 8], strata=["S1", "S2", "S3"]
    )
    generated = generate(design, seed=11, per_stratum=20, kits_per_subject=1, reserve=0)
    for code in design.strata:
        arms = Counter(row.arm for row in generated.rows if row.stratum == code)
        assert arms["C"] == arms["A"] + arms["B"] and arms["A"] == arms["B"]
    assert Counter(k.arm for k in generated.kits) == Counter(r.arm for r in generated.rows)


def test_a_design_reports_every_problem_at_once():
    with pytest.raises(DesignError) as caught:
        ListDesign.of(arms=[("DUPI", 2), ("DUPI", 0)], block_sizes=[3, 3], strata=["TLS", ""])
    problems = caught.value.problems
    assert "arm code='DUPI' appears twice" in problems
    assert "arm 'DUPI' ratio=0 is not a positive integer" in problems
    assert "block size=3 appears twice" in problems
    assert "stratum='' is not a non-empty string" in problems


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arms": [("DUPI", 2), ("PBO", 1)], "block_sizes": [3, 4], "strata": ["TLS"]},
         "block size=4 is not a positive multiple of the ratio sum 3"),
        ({"arms": [("DUPI", 2)], "block_sizes": [2], "strata": ["TLS"]},
         "arms=['DUPI'] needs at least two arms"),
        ({"arms": [("DUPI", 2), ("PBO", 1)], "block_sizes": [], "strata": ["TLS"]},
         "block_sizes=() is empty"),
        ({"arms": [("DUPI", 2), ("PBO", 1)], "block_sizes": [3], "strata": []},
         "strata=() is empty"),
        ({"arms": [("DUPI", 2.0), ("PBO", 1)], "block_sizes": [3], "strata": ["TLS"]},
         "arm 'DUPI' ratio=2.0 is not a positive integer"),
        ({"arms": [("DUPI", 2), ("PBO", 1)], "block_sizes": [3, 6], "strata": ["TLS", "TLS"]},
         "stratum='TLS' appears twice"),
    ],
)  # fmt: skip
def test_a_bad_design_is_refused_naming_the_value(kwargs, message):
    with pytest.raises(DesignError) as caught:
        ListDesign.of(**kwargs)
    assert message in caught.value.problems


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -1}, "seed=-1 is not an integer >= 0"),
        ({"seed": 1.5}, "seed=1.5 is not an integer >= 0"),
        ({"per_stratum": 0}, "per_stratum=0 is not an integer >= 1"),
        ({"kits_per_subject": True}, "kits_per_subject=True is not an integer >= 1"),
        ({"reserve": -1}, "reserve=-1 is not an integer >= 0"),
    ],
)
def test_bad_generation_parameters_are_refused_naming_the_value(kwargs, message):
    params = {"seed": 1, "per_stratum": 12, "kits_per_subject": UNITS, "reserve": 0} | kwargs
    with pytest.raises(DesignError) as caught:
        generate(NS_DUPI, **params)
    assert caught.value.problems == (message,)


def test_seed_zero_and_no_reserve_are_allowed():
    generated = generate(NS_DUPI, seed=0, per_stratum=3, kits_per_subject=UNITS, reserve=0)
    assert len(generated.kits) == UNITS * len(generated.rows)


def test_the_list_is_independent_of_the_kit_parameters():
    # the kits are drawn after the list, so changing them leaves the list untouched
    small = generate(NS_DUPI, seed=5, per_stratum=12, kits_per_subject=1, reserve=0)
    large = generate(NS_DUPI, seed=5, per_stratum=12, kits_per_subject=9, reserve=50)
    assert small.rows == large.rows
