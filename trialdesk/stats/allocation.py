"""Vectorized permuted-block randomization: many allocation lists at once.

A :class:`BlockScheme` describes how a trial randomizes within a stratum: arms in a fixed
ratio, permuted blocks whose size is drawn at random from a set (NS-DUPI: 2:1, blocks of 3
and 6). :func:`draw_block_lists` draws ``n_lists`` independent allocation lists for one
stratum; :func:`draw_stratified_lists` does it for every stratum (site) and puts the strata
side by side. They are the engine of the re-randomization test and of the trial simulator.

How a list is drawn (every operation is on whole arrays, no Python loop over lists):

1. a sequence of block sizes, each drawn independently (equal probabilities unless
   ``block_probs`` says otherwise), long enough to cover the stratum;
2. for every block, one of the distinct arrangements of its arms, uniformly (a block of 6
   at 2:1 has ``6! / (4! 2!) = 15`` arrangements): this is a uniformly random permutation of
   the block's contents;
3. the blocks are laid end to end and the list is cut at the stratum's size, so the last
   block may be incomplete, as in a real list filled up to the last enrolled subject.

For small strata (NS-DUPI: 12 subjects per site) the exact distribution of a stratum's list
is small enough to tabulate (:func:`list_distribution`: every distinct list with its
probability, summed over the block-size sequences and arrangements that produce it); lists
are then drawn from that table, which is faster and is also what an exact re-randomization
test enumerates. Larger strata fall back to assembling the blocks as described above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

__all__ = [
    "AllocationError",
    "BlockScheme",
    "TooManyListsError",
    "draw_block_lists",
    "draw_stratified_lists",
    "list_distribution",
]

#: Largest number of distinct lists per stratum that :func:`draw_block_lists` tabulates.
MAX_TABULATED_LISTS = 200_000


class AllocationError(ValueError):
    """An invalid randomization scheme or request."""


@dataclass(frozen=True)
class BlockScheme:
    """Permuted blocks with a fixed allocation ratio and randomly drawn block sizes.

    Parameters
    ----------
    arms : tuple of str
        Arm names; lists hold their indices (0 for ``arms[0]``, ...).
    ratio : tuple of int
        Allocation ratio, one entry per arm (``(2, 1)``).
    block_sizes : tuple of int
        Possible block sizes; each must be a multiple of ``sum(ratio)``.
    block_probs : tuple of float, optional
        Probability of each block size; equal by default.

    Examples
    --------
    >>> scheme = BlockScheme(arms=("dupilumab", "placebo"), ratio=(2, 1), block_sizes=(3, 6))
    >>> scheme.patterns(3).tolist()
    [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    >>> len(scheme.patterns(6))
    15
    """

    arms: tuple[str, ...]
    ratio: tuple[int, ...]
    block_sizes: tuple[int, ...]
    block_probs: tuple[float, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arms", tuple(self.arms))
        object.__setattr__(self, "ratio", tuple(int(r) for r in self.ratio))
        object.__setattr__(self, "block_sizes", tuple(int(b) for b in self.block_sizes))
        if len(self.arms) < 2 or len(set(self.arms)) != len(self.arms):
            raise AllocationError(f"arms must be at least two distinct names, got {self.arms}")
        if len(self.ratio) != len(self.arms) or min(self.ratio) < 1:
            raise AllocationError(
                f"ratio {self.ratio} must give a positive integer for each of the arms {self.arms}"
            )
        unit = sum(self.ratio)
        bad = [b for b in self.block_sizes if b < unit or b % unit]
        if not self.block_sizes or bad:
            raise AllocationError(
                f"block sizes {self.block_sizes} must be multiples of sum(ratio) = {unit}"
            )
        if self.block_probs is not None:
            probs = tuple(float(p) for p in self.block_probs)
            object.__setattr__(self, "block_probs", probs)
            if len(probs) != len(self.block_sizes) or min(probs) < 0 or abs(sum(probs) - 1) > 1e-9:
                raise AllocationError(
                    f"block_probs {probs} must be one probability per block size, summing to 1"
                )

    @property
    def probabilities(self) -> np.ndarray:
        """Probability of each block size.

        Examples
        --------
        >>> BlockScheme(("a", "b"), (1, 1), (2, 4)).probabilities.tolist()
        [0.5, 0.5]
        """
        if self.block_probs is None:
            return np.full(len(self.block_sizes), 1.0 / len(self.block_sizes))
        return np.asarray(self.block_probs)

    def patterns(self, size: int) -> np.ndarray:
        """All distinct arrangements of a block of ``size``, in lexicographic order.

        Examples
        --------
        >>> BlockScheme(("a", "b"), (1, 1), (2,)).patterns(2).tolist()
        [[0, 1], [1, 0]]
        """
        if size not in self.block_sizes:
            raise AllocationError(f"block size {size} is not one of {self.block_sizes}")
        counts = [size // sum(self.ratio) * r for r in self.ratio]
        return np.array(list(_arrangements(counts)), dtype=np.int8)

    @cached_property
    def _pattern_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Padded table ``[size index, pattern, position]`` and pattern counts per size."""
        tables = [self.patterns(b) for b in self.block_sizes]
        counts = np.array([len(t) for t in tables])
        table = np.zeros((len(tables), counts.max(), max(self.block_sizes)), np.int8)
        for i, t in enumerate(tables):
            table[i, : len(t), : t.shape[1]] = t
        return table, counts


def _arrangements(counts: list[int]) -> list[tuple[int, ...]]:
    """Distinct permutations of the multiset with ``counts[k]`` copies of ``k``."""
    if sum(counts) == 0:
        return [()]
    out = []
    for k, c in enumerate(counts):
        if c:
            rest = counts.copy()
            rest[k] -= 1
            out.extend((k, *tail) for tail in _arrangements(rest))
    return out


def draw_block_lists(
    scheme: BlockScheme, n_subjects: int, n_lists: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw independent permuted-block allocation lists for one stratum.

    Parameters
    ----------
    scheme : BlockScheme
        Arms, ratio and block sizes.
    n_subjects : int
        Length of each list (subjects in the stratum, in randomization order).
    n_lists : int
        Number of lists.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        Arm indices, shape ``(n_lists, n_subjects)``, dtype int8.

    Examples
    --------
    >>> scheme = BlockScheme(("dupilumab", "placebo"), (2, 1), (3, 6))
    >>> lists = draw_block_lists(scheme, 12, 4, np.random.default_rng(1))
    >>> lists.shape, set(np.unique(lists).tolist()) <= {0, 1}
    ((4, 12), True)
    """
    if n_subjects < 0 or n_lists < 0:
        raise AllocationError(f"n_subjects ({n_subjects}) and n_lists ({n_lists}) must be >= 0")
    try:
        lists, probs = list_distribution(scheme, n_subjects)
    except TooManyListsError:
        return _draw_by_assembly(scheme, n_subjects, n_lists, rng)
    cumulative = np.cumsum(probs)
    index = np.searchsorted(cumulative, rng.random(n_lists) * cumulative[-1], side="right")
    return lists[np.minimum(index, len(lists) - 1)]


def _draw_by_assembly(
    scheme: BlockScheme, n_subjects: int, n_lists: int, rng: np.random.Generator
) -> np.ndarray:
    sizes = np.asarray(scheme.block_sizes)
    n_blocks = max(1, math.ceil(n_subjects / sizes.min()))
    which = np.searchsorted(
        np.cumsum(scheme.probabilities)[:-1], rng.random((n_lists, n_blocks)), side="right"
    )
    table, counts = scheme._pattern_table
    pattern = np.minimum(
        (rng.random(which.shape) * counts[which]).astype(np.int64), counts[which] - 1
    )
    return assemble_lists(table, sizes[which], which, pattern, n_subjects)


class TooManyListsError(AllocationError):
    """The exact list distribution of a stratum is too large to tabulate."""


def list_distribution(
    scheme: BlockScheme, n_subjects: int, max_lists: int = MAX_TABULATED_LISTS
) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct allocation list of one stratum with its probability.

    Parameters
    ----------
    scheme : BlockScheme
        Arms, ratio and block sizes.
    n_subjects : int
        Subjects in the stratum.
    max_lists : int
        Refuse (``TooManyListsError``) when more candidate lists than this would be built.

    Returns
    -------
    lists : numpy.ndarray
        Distinct lists, shape ``(m, n_subjects)``, arm indices (int8), sorted.
    probs : numpy.ndarray
        Probability of each list, summing to 1.

    Examples
    --------
    Three subjects, blocks of 3 or 6 at 2:1: a list of three active subjects happens only
    with a block of 6 whose first three places are active (3 of its 15 arrangements).

    >>> scheme = BlockScheme(("dupilumab", "placebo"), (2, 1), (3, 6))
    >>> lists, probs = list_distribution(scheme, 3)
    >>> [(row.tolist(), round(float(p), 4)) for row, p in zip(lists, probs)][0]
    ([0, 0, 0], 0.1)
    """
    table = _list_distribution(scheme, int(n_subjects), int(max_lists))
    return table[0].copy(), table[1].copy()


@lru_cache(maxsize=64)
def _list_distribution(
    scheme: BlockScheme, n_subjects: int, max_lists: int
) -> tuple[np.ndarray, np.ndarray]:
    prefixes = {b: _prefix_distribution(scheme.patterns(b)) for b in scheme.block_sizes}
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    budget = [max_lists]

    def extend(lists: np.ndarray, probs: np.ndarray, filled: int) -> None:
        for size, p_size in zip(scheme.block_sizes, scheme.probabilities, strict=True):
            if p_size == 0:
                continue
            take = min(size, n_subjects - filled)
            block_lists, block_probs = prefixes[size][take]
            budget[0] -= len(lists) * len(block_lists)
            if budget[0] < 0:
                raise TooManyListsError(
                    f"more than {max_lists} candidate lists for {n_subjects} subjects"
                )
            joined = np.concatenate(
                [np.repeat(lists, len(block_lists), axis=0), np.tile(block_lists, (len(lists), 1))],
                axis=1,
            )
            joined_probs = np.outer(probs * p_size, block_probs).ravel()
            if filled + take == n_subjects:
                parts.append((joined, joined_probs))
            else:
                extend(joined, joined_probs, filled + take)

    if n_subjects == 0:
        return np.zeros((1, 0), np.int8), np.ones(1)
    extend(np.zeros((1, 0), np.int8), np.ones(1), 0)
    lists = np.concatenate([p[0] for p in parts])
    probs = np.concatenate([p[1] for p in parts])
    unique, inverse = np.unique(lists, axis=0, return_inverse=True)
    merged = np.bincount(inverse.ravel(), weights=probs, minlength=len(unique))
    return unique.astype(np.int8), merged / merged.sum()


def _prefix_distribution(patterns: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Distinct prefixes of every length of equally likely patterns, with probabilities."""
    out = {}
    for length in range(1, patterns.shape[1] + 1):
        unique, counts = np.unique(patterns[:, :length], axis=0, return_counts=True)
        out[length] = (unique, counts / counts.sum())
    return out


def assemble_lists(
    table: np.ndarray,
    block_len: np.ndarray,
    which: np.ndarray,
    pattern: np.ndarray,
    n_subjects: int,
) -> np.ndarray:
    """Lay chosen blocks end to end and cut at ``n_subjects`` (deterministic step).

    Parameters
    ----------
    table : numpy.ndarray
        ``table[size index, pattern, position]`` = arm index.
    block_len, which, pattern : numpy.ndarray
        Per list and block slot: block length, size index and pattern index,
        shape ``(n_lists, n_blocks)``.
    n_subjects : int
        List length; the blocks must cover it.

    Examples
    --------
    >>> table = np.array([[[0, 1, 0, 0], [1, 0, 0, 0]], [[0, 0, 1, 1], [1, 1, 0, 0]]])
    >>> assemble_lists(table, np.array([[2, 4]]), np.array([[0, 1]]), np.array([[1, 0]]), 5)
    array([[1, 0, 0, 0, 1]], dtype=int8)
    """
    ends = np.cumsum(block_len, axis=1)
    if ends.size and ends[:, -1].min() < n_subjects:
        raise AllocationError(f"blocks do not cover {n_subjects} subjects")
    starts = ends - block_len
    position = np.arange(n_subjects)
    block_of = (ends[:, None, :] <= position[None, :, None]).sum(axis=2)
    offset = position[None, :] - np.take_along_axis(starts, block_of, axis=1)
    size_index = np.take_along_axis(which, block_of, axis=1)
    pattern_index = np.take_along_axis(pattern, block_of, axis=1)
    return table[size_index, pattern_index, offset].astype(np.int8)


def draw_stratified_lists(
    scheme: BlockScheme,
    stratum_sizes: Sequence[int],
    n_lists: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw lists for every stratum (each with its own blocks) and join them.

    Parameters
    ----------
    scheme : BlockScheme
        Arms, ratio and block sizes, the same in every stratum.
    stratum_sizes : sequence of int
        Subjects per stratum; columns of the result follow this order.
    n_lists : int
        Number of (whole-trial) lists.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        Arm indices, shape ``(n_lists, sum(stratum_sizes))``; columns ``0 .. n_1 - 1`` are
        the first stratum in randomization order, and so on.

    Examples
    --------
    >>> scheme = BlockScheme(("dupilumab", "placebo"), (2, 1), (3, 6))
    >>> lists = draw_stratified_lists(scheme, [12, 12], 1000, np.random.default_rng(0))
    >>> placebo = (lists == 1).sum(axis=1)
    >>> lists.shape, int(placebo.min()) >= 6, int(placebo.max()) <= 10
    ((1000, 24), True, True)
    """
    parts = [draw_block_lists(scheme, int(n), n_lists, rng) for n in stratum_sizes]
    if not parts:
        raise AllocationError("stratum_sizes is empty")
    return np.concatenate(parts, axis=1)
