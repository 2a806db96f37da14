"""The data reduced once to sufficient statistics per missingness pattern.

With ``Z_i = [X_i y_i]`` the rows of subject ``i`` (one per observed visit), every quantity
of the MMRM likelihood, its derivatives and the degrees-of-freedom methods is a sum over
subjects of ``Z_i' A Z_i`` for some visit-by-visit matrix ``A`` that depends on the
subject only through its *pattern* (the set of visits observed). Grouping the subjects by
pattern, these sums need only the per-pattern moments
``M_p[s, t] = sum_{i in p} z_i[s] z_i[t]'`` (for visits s, t), so after one pass over the
data the cost of every likelihood, gradient, Hessian or Kenward-Roger evaluation no longer
depends on the number of subjects.

A pattern shared by few subjects is cheaper to keep as its raw rows than as moments
(``T*K`` x ``T*K`` numbers), so patterns with fewer than ``T*K`` subjects stay raw; this also
bounds the memory by the size of the data. Everything is *embedded* in the full visit space:
unobserved visits are zero rows, and per-pattern visit matrices are zero outside the
observed visits.

Shapes: P patterns, T visits, K = k + 1 columns (k fixed-effect columns, then the outcome).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .errors import DuplicateVisitError

__all__ = ["PatternStatistics", "reduce_to_patterns"]


@dataclass(frozen=True)
class PatternStatistics:
    """Per-pattern sufficient statistics of ``Z = [X y]``.

    Attributes
    ----------
    masks : numpy.ndarray
        (P, T) bool, visits observed in each pattern.
    counts : numpy.ndarray
        (P,) number of subjects with each pattern.
    moment_patterns : numpy.ndarray
        (Pm,) indices of the patterns kept as moments.
    moments : numpy.ndarray
        (Pm, T, T, K, K) ``sum_i z_i[s] z_i[t]'`` over the subjects of each such pattern.
    raw_patterns : numpy.ndarray
        (Pr,) indices of the patterns kept as raw rows.
    raw_rows : numpy.ndarray
        (m, T, K) rows of the subjects of those patterns (zeros at unobserved visits),
        grouped by pattern.
    raw_pattern_of_row : numpy.ndarray
        (m,) pattern index of each subject in ``raw_rows``.
    raw_starts : numpy.ndarray
        (Pr,) first subject of each raw pattern in ``raw_rows``.
    """

    masks: np.ndarray
    counts: np.ndarray
    moment_patterns: np.ndarray
    moments: np.ndarray
    raw_patterns: np.ndarray
    raw_rows: np.ndarray
    raw_pattern_of_row: np.ndarray
    raw_starts: np.ndarray

    @property
    def n_patterns(self) -> int:
        return self.masks.shape[0]

    @property
    def n_visits(self) -> int:
        return self.masks.shape[1]

    @property
    def n_columns(self) -> int:
        """K: fixed-effect columns plus the outcome."""
        if self.moments.shape[0]:
            return self.moments.shape[-1]
        return self.raw_rows.shape[-1]

    @property
    def n_subjects(self) -> int:
        return int(self.counts.sum())

    @property
    def n_obs(self) -> int:
        return int(self.counts @ self.masks.sum(axis=1))

    @cached_property
    def pair_masks(self) -> np.ndarray:
        """(P, T, T) bool: both visits observed."""
        return self.masks[:, :, None] & self.masks[:, None, :]

    def quad(self, mats: np.ndarray) -> np.ndarray:
        """``sum_p sum_{i in p} Z_i' A_p Z_i`` for per-pattern matrices ``A`` (P, T, T).

        Returns the (K, K) total.
        """
        k = self.n_columns
        out = np.zeros((k, k))
        if self.moment_patterns.size:
            a = mats[self.moment_patterns].reshape(1, -1)
            out += (a @ self.moments.reshape(-1, k * k)).reshape(k, k)
        if self.raw_rows.shape[0]:
            y = mats[self.raw_pattern_of_row] @ self.raw_rows
            out += self.raw_rows.reshape(-1, k).T @ y.reshape(-1, k)
        return out

    def contract(self, psi: np.ndarray) -> np.ndarray:
        """``sum_{i in p} Z_i Psi_j Z_i'`` per pattern for (J, K, K) matrices ``Psi``.

        Returns (J, P, T, T).
        """
        n_j = psi.shape[0]
        t = self.n_visits
        k = self.n_columns
        out = np.zeros((n_j, self.n_patterns, t, t))
        if self.moment_patterns.size:
            m = self.moments.reshape(-1, k * k)
            out[:, self.moment_patterns] = (m @ psi.reshape(n_j, -1).T).T.reshape(n_j, -1, t, t)
        if self.raw_rows.shape[0]:
            rows = self.raw_rows
            m = rows.shape[0]
            zp = (rows.reshape(m * t, k) @ psi).reshape(n_j, m, t, k)
            per_subject = zp @ rows.transpose(0, 2, 1)
            out[:, self.raw_patterns] = np.add.reduceat(per_subject, self.raw_starts, axis=1)
        return out

    def sandwich(self, u: np.ndarray) -> np.ndarray:
        """``sum_p U_p M_p U_p``: (T, T, K, K) with ``[s, t] = sum_i (U z_i)[s] (U z_i)[t]'``.

        ``u`` holds symmetric per-pattern matrices (P, T, T).
        """
        t = self.n_visits
        k = self.n_columns
        out = np.zeros((t * k * k, t))
        if self.moment_patterns.size:
            um = u[self.moment_patterns]
            p = um.shape[0]
            left = (um.transpose(0, 2, 1) @ self.moments.reshape(p, t, t * k * k)).reshape(
                p, t, t, k, k
            )
            out += left.transpose(1, 3, 4, 0, 2).reshape(t * k * k, p * t) @ um.reshape(p * t, t)
        out = out.reshape(t, k, k, t).transpose(0, 3, 1, 2)
        if self.raw_rows.shape[0]:
            y = (u[self.raw_pattern_of_row] @ self.raw_rows).reshape(-1, t * k)
            out = out + (y.T @ y).reshape(t, k, t, k).transpose(0, 2, 1, 3)
        return out


def reduce_to_patterns(
    subject_codes: np.ndarray,
    visit_codes: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    n_visits: int,
    *,
    subject_labels: np.ndarray | None = None,
    visit_labels: tuple[object, ...] | None = None,
    moment_threshold: int | None = None,
) -> PatternStatistics:
    """Group the subjects by missingness pattern and compute the statistics, in one pass.

    Parameters
    ----------
    subject_codes, visit_codes : numpy.ndarray
        (n,) integer codes, subjects ``0..S-1`` and visits ``0..T-1``, one per observation.
    x : numpy.ndarray
        (n, k) fixed-effects design.
    y : numpy.ndarray
        (n,) outcome.
    n_visits : int
        T.
    subject_labels, visit_labels : optional
        Labels used in the error for a duplicated visit.
    moment_threshold : int, optional
        Patterns with at least this many subjects are kept as moments (default ``T*K``;
        0 keeps every pattern as moments, a huge value keeps every pattern raw).

    Raises
    ------
    DuplicateVisitError
        When a subject has two rows for one visit.

    Examples
    --------
    >>> subj = np.array([0, 0, 1, 2, 2])
    >>> vis = np.array([0, 1, 0, 0, 1])
    >>> x = np.ones((5, 1))
    >>> y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> st = reduce_to_patterns(subj, vis, x, y, 2)
    >>> st.masks.tolist(), st.counts.tolist(), st.n_obs
    ([[True, False], [True, True]], [1, 2], 5)
    """
    n_subjects = int(subject_codes.max()) + 1 if subject_codes.size else 0
    k = x.shape[1] + 1
    t = n_visits
    flat = subject_codes.astype(np.int64) * t + visit_codes.astype(np.int64)
    seen = np.bincount(flat, minlength=n_subjects * t)
    if seen.max(initial=0) > 1:
        subj, vis = divmod(int(np.argmax(seen)), t)
        raise DuplicateVisitError(
            subject_labels[subj] if subject_labels is not None else subj,
            visit_labels[vis] if visit_labels is not None else vis,
        )
    z = np.zeros((n_subjects * t, k))
    z[flat, :-1] = x
    z[flat, -1] = y
    z = z.reshape(n_subjects, t, k)
    observed = (seen > 0).reshape(n_subjects, t)
    codes = observed @ (1 << np.arange(t, dtype=np.int64))
    unique_codes, pattern_of_subject, counts = np.unique(
        codes, return_inverse=True, return_counts=True
    )
    masks = ((unique_codes[:, None] >> np.arange(t)) & 1).astype(bool)
    threshold = t * k if moment_threshold is None else moment_threshold
    is_moment = counts >= threshold
    order = np.argsort(pattern_of_subject, kind="stable")
    sorted_patterns = pattern_of_subject[order]
    starts = np.searchsorted(sorted_patterns, np.arange(len(counts)))

    moment_patterns = np.flatnonzero(is_moment)
    moments = np.empty((moment_patterns.size, t, t, k, k))
    for j, p in enumerate(moment_patterns):
        block = z[order[starts[p] : starts[p] + counts[p]]].reshape(counts[p], t * k)
        moments[j] = (block.T @ block).reshape(t, k, t, k).transpose(0, 2, 1, 3)

    raw_patterns = np.flatnonzero(~is_moment)
    raw_subjects = order[np.isin(sorted_patterns, raw_patterns)]
    raw_pattern_of_row = pattern_of_subject[raw_subjects]
    return PatternStatistics(
        masks=masks,
        counts=counts,
        moment_patterns=moment_patterns,
        moments=moments,
        raw_patterns=raw_patterns,
        raw_rows=z[raw_subjects],
        raw_pattern_of_row=raw_pattern_of_row,
        raw_starts=np.searchsorted(raw_pattern_of_row, raw_patterns),
    )
