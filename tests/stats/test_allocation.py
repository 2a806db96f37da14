"""Permuted-block lists: exact distribution against brute force, samplers against it."""

from __future__ import annotations

import itertools
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialdesk.stats.allocation import (
    AllocationError,
    BlockScheme,
    _draw_by_assembly,
    assemble_lists,
    draw_block_lists,
    draw_stratified_lists,
    list_distribution,
)

NS_DUPI = BlockScheme(arms=("dupilumab", "placebo"), ratio=(2, 1), block_sizes=(3, 6))


def _brute_force(scheme: BlockScheme, n: int) -> dict[tuple[int, ...], Fraction]:
    """Enumerate block-size sequences and every permutation of each block's contents."""
    unit = sum(scheme.ratio)
    probs = [Fraction(1, len(scheme.block_sizes))] * len(scheme.block_sizes)
    out: Counter = Counter()

    def grow(prefix: tuple[int, ...], p: Fraction) -> None:
        if len(prefix) >= n:
            out[prefix[:n]] += p
            return
        for size, p_size in zip(scheme.block_sizes, probs, strict=True):
            contents = [arm for arm, r in enumerate(scheme.ratio) for _ in range(size // unit * r)]
            perms = Counter(itertools.permutations(contents))
            total = sum(perms.values())
            for perm, count in perms.items():
                grow(prefix + perm, p * p_size * Fraction(count, total))

    grow((), Fraction(1))
    return dict(out)


@pytest.mark.parametrize("n", [1, 3, 5, 7])
def test_list_distribution_equals_brute_force(n):
    expected = _brute_force(NS_DUPI, n)
    lists, probs = list_distribution(NS_DUPI, n)
    got = {tuple(row.tolist()): float(p) for row, p in zip(lists, probs, strict=True)}
    assert got.keys() == expected.keys()
    for key, p in expected.items():
        assert got[key] == pytest.approx(float(p), abs=1e-12)


def test_three_arm_equal_ratio_distribution():
    scheme = BlockScheme(arms=("a", "b", "c"), ratio=(1, 1, 1), block_sizes=(3,))
    lists, probs = list_distribution(scheme, 4)
    assert len(lists) == 6 * 3
    np.testing.assert_allclose(probs, 1 / 18)


def _max_z(sample: np.ndarray, lists: np.ndarray, probs: np.ndarray) -> float:
    counts = Counter(map(tuple, sample.tolist()))
    n = len(sample)
    assert set(counts) <= set(map(tuple, lists.tolist()))
    z = [
        (counts.get(tuple(row.tolist()), 0) / n - p) / np.sqrt(p * (1 - p) / n)
        for row, p in zip(lists, probs, strict=True)
    ]
    return float(np.max(np.abs(z)))


@pytest.mark.parametrize("sampler", [draw_block_lists, _draw_by_assembly])
def test_samplers_follow_the_exact_distribution(sampler):
    lists, probs = list_distribution(NS_DUPI, 7)
    sample = sampler(NS_DUPI, 7, 200_000, np.random.default_rng(20240501))
    # about 60 distinct lists: a |z| above 4.5 has probability < 1e-3 under the right law
    assert _max_z(sample, lists, probs) < 4.5


def test_large_strata_fall_back_to_assembling_blocks():
    sample = draw_block_lists(NS_DUPI, 30, 20_000, np.random.default_rng(5))
    assert sample.shape == (20_000, 30)
    assert (sample == 0).mean() == pytest.approx(2 / 3, abs=0.01)


def test_complete_blocks_hold_the_exact_ratio():
    scheme = BlockScheme(arms=("dupilumab", "placebo"), ratio=(2, 1), block_sizes=(6,))
    sample = draw_block_lists(scheme, 12, 5_000, np.random.default_rng(2))
    assert ((sample[:, :6] == 1).sum(axis=1) == 2).all()
    assert ((sample == 1).sum(axis=1) == 4).all()


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(0, 15), min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1))
def test_imbalance_within_a_stratum_is_bounded_by_a_block(sizes, seed):
    sample = draw_stratified_lists(NS_DUPI, sizes, 200, np.random.default_rng(seed))
    start = 0
    for n in sizes:
        part = sample[:, start : start + n]
        start += n
        # weighted imbalance 1*active - 2*placebo is 0 after each block, at most 4 inside one
        imbalance = np.cumsum(np.where(part == 0, 1, -2), axis=1)
        assert np.abs(imbalance).max(initial=0) <= 4


def test_strata_are_drawn_independently():
    sample = draw_stratified_lists(NS_DUPI, [3, 3], 50_000, np.random.default_rng(9))
    first, second = sample[:, 0], sample[:, 3]
    assert np.corrcoef(first, second)[0, 1] == pytest.approx(0.0, abs=0.03)


def test_block_probabilities_are_used():
    scheme = BlockScheme(("a", "b"), (2, 1), (3, 6), block_probs=(1.0, 0.0))
    lists, probs = list_distribution(scheme, 3)
    assert len(lists) == 3
    np.testing.assert_allclose(probs, 1 / 3)


def test_assembly_is_deterministic_given_the_choices():
    table = np.zeros((1, 3, 3), np.int8)
    table[0] = NS_DUPI.patterns(3)
    got = assemble_lists(table, np.array([[3, 3]]), np.array([[0, 0]]), np.array([[2, 0]]), 5)
    assert got.tolist() == [[1, 0, 0, 0, 0]]
    with pytest.raises(AllocationError, match="cover"):
        assemble_lists(table, np.array([[3]]), np.array([[0]]), np.array([[0]]), 5)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"arms": ("a",), "ratio": (1,), "block_sizes": (2,)}, "arms"),
        ({"arms": ("a", "b"), "ratio": (1,), "block_sizes": (2,)}, "ratio"),
        ({"arms": ("a", "b"), "ratio": (2, 1), "block_sizes": (4,)}, "block sizes"),
        (
            {"arms": ("a", "b"), "ratio": (1, 1), "block_sizes": (2,), "block_probs": (0.5,)},
            "probs",
        ),
    ],
)
def test_invalid_schemes_are_refused(kwargs, field):
    with pytest.raises(AllocationError, match=field):
        BlockScheme(**kwargs)


def test_unknown_block_size_is_refused():
    with pytest.raises(AllocationError, match="block size 4"):
        NS_DUPI.patterns(4)
