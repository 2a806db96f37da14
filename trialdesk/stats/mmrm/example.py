"""A small simulated trial in the layout :func:`~.fit.fit_mmrm` expects (for examples)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["example_data"]


def example_data(n_subjects: int = 60, seed: int = 20240101) -> pd.DataFrame:
    """Simulated two-arm trial: 3 visits, correlated outcome, about 10% missing outcomes.

    Columns ``id``, ``arm`` (PBO/TRT), ``visit`` (V1-V3, ordered Categorical), ``base``
    and ``y``.

    Examples
    --------
    >>> d = example_data()
    >>> d.shape, d["y"].isna().sum()
    ((180, 5), np.int64(23))
    """
    rng = np.random.default_rng(seed)
    visits = ["V1", "V2", "V3"]
    cov = np.array([[4.0, 2.0, 1.5], [2.0, 5.0, 3.0], [1.5, 3.0, 6.0]])
    arm = np.where(rng.random(n_subjects) < 0.5, "PBO", "TRT")
    base = rng.normal(10.0, 2.0, n_subjects)
    effect = np.where(arm == "TRT", 1.0, 0.0)[:, None] * np.array([0.3, 0.8, 1.2])
    mean = 0.5 * base[:, None] + np.array([5.0, 5.5, 6.0]) + effect
    y = mean + rng.multivariate_normal(np.zeros(3), cov, n_subjects)
    y[rng.random(y.shape) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "id": np.repeat([f"S{i:03d}" for i in range(n_subjects)], 3),
            "arm": np.repeat(arm, 3),
            "visit": pd.Categorical(np.tile(visits, n_subjects), categories=visits),
            "base": np.repeat(base, 3),
            "y": y.ravel(),
        }
    )
