"""What every degrees-of-freedom method provides: t tests of contrasts and F tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["DfEngine", "FTest", "TTests", "wald_f"]


@dataclass(frozen=True)
class TTests:
    """Estimates, standard errors and degrees of freedom of the rows of a contrast matrix."""

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray


@dataclass(frozen=True)
class FTest:
    """A multi-degree-of-freedom Wald F test of ``L beta = 0``.

    ``f`` is the statistic referred to F(num_df, den_df) (for Kenward-Roger already scaled
    by lambda).
    """

    num_df: int
    den_df: float
    f: float


class DfEngine(Protocol):
    """Inference of a fitted MMRM with one degrees-of-freedom method."""

    name: str
    beta: np.ndarray
    vcov: np.ndarray

    def t_tests(self, contrasts: np.ndarray) -> TTests:
        """One-dimensional tests of each row of ``contrasts`` (r, k)."""
        ...

    def f_test(self, contrast: np.ndarray) -> FTest:
        """The joint test of all rows of ``contrast`` (q, k), full row rank."""
        ...


def wald_f(beta: np.ndarray, vcov: np.ndarray, contrast: np.ndarray) -> float:
    """``(L b)' (L V L')^-1 (L b) / q``.

    Examples
    --------
    >>> round(wald_f(np.array([1.0, 2.0]), np.eye(2), np.eye(2)), 6)
    2.5
    """
    est = contrast @ beta
    return float(est @ np.linalg.solve(contrast @ vcov @ contrast.T, est)) / contrast.shape[0]
