"""Covariance structures of the within-subject (visit by visit) covariance matrix.

Each structure has two parametrizations:

* the *unconstrained* parameters ``theta`` the optimizer moves freely in (log variances,
  correlations through a smooth map onto their admissible interval, the log-Cholesky
  factor for ``us``); every ``theta`` gives a positive definite matrix;
* the *natural* parameters SAS PROC MIXED reports and differentiates for the
  Kenward-Roger adjustment (covariances for ``us``, ``CS`` and residual for ``cs``,
  variances and correlations for the heterogeneous structures).

For both, a structure gives the matrix with its first and second derivatives
(:class:`CovarianceDerivatives`). The unconstrained derivatives follow from the natural
ones by the chain rule through the map ``natural(theta)``, which is differentiated with
second-order jets (:mod:`.jet`).

========  =========================================  ==========================================
name      matrix                                     natural parameters (SAS ``type=``)
========  =========================================  ==========================================
``us``    unstructured                               all covariances (``un``)
``cs``    ``s1 * J + s2 * I``                        common covariance, residual (``cs``)
``csh``   ``sd_i sd_j rho`` off the diagonal         variances, correlation (``csh``)
``ar1``   ``s2 * rho**|i-j|``                        variance, correlation (``ar(1)``)
``ar1h``  ``sd_i sd_j rho**|i-j|``                   variances, correlation (``arh(1)``)
``toep``  ``s_|i-j|``                                covariance per lag (``toep``)
``toeph`` ``sd_i sd_j rho_|i-j|``                    variances, correlation per lag (``toeph``)
========  =========================================  ==========================================

Autoregressive and Toeplitz structures use the visit order, not visit times.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .errors import UnknownMethodError
from .jet import Jet, stack_jets

__all__ = [
    "COVARIANCE_STRUCTURES",
    "CovarianceDerivatives",
    "CovarianceStructure",
    "NaturalParameters",
    "make_structure",
]


@dataclass(frozen=True)
class CovarianceDerivatives:
    """A covariance matrix and its derivatives in some parametrization.

    Attributes
    ----------
    sigma : numpy.ndarray
        The (T, T) covariance matrix.
    d1 : numpy.ndarray
        (n, T, T): derivative with respect to each of the n parameters.
    d2 : numpy.ndarray or None
        (n, n, T, T) second derivatives; ``None`` when the matrix is linear in the
        parameters (all second derivatives zero).
    """

    sigma: np.ndarray
    d1: np.ndarray
    d2: np.ndarray | None


@dataclass(frozen=True)
class NaturalParameters:
    """The natural parameters of a structure at some ``theta``, with derivatives."""

    names: tuple[str, ...]
    values: np.ndarray
    derivatives: CovarianceDerivatives


# -- scalar maps onto admissible intervals, as (value, first, second derivative) ----------


def _exp(x: float) -> tuple[float, float, float]:
    e = float(np.exp(x))
    return e, e, e


def _algebraic(x: float) -> tuple[float, float, float]:
    """``x / sqrt(1 + x^2)``: the real line onto (-1, 1) without early saturation."""
    q = 1.0 + x * x
    return x / np.sqrt(q), q**-1.5, -3.0 * x * q**-2.5


def _algebraic_inverse(rho: float) -> float:
    return rho / np.sqrt(1.0 - rho * rho)


def _scaled_logistic(lower: float) -> Callable[[float], tuple[float, float, float]]:
    """The real line onto (lower, 1) by a logistic curve."""

    def f(x: float) -> tuple[float, float, float]:
        s = 1.0 / (1.0 + np.exp(-x))
        width = 1.0 - lower
        return lower + width * s, width * s * (1 - s), width * s * (1 - s) * (1 - 2 * s)

    return f


def _scaled_logistic_inverse(rho: float, lower: float) -> float:
    s = (rho - lower) / (1.0 - lower)
    return float(np.log(s / (1.0 - s)))


def _durbin_levinson(partials: Sequence[Jet]) -> list[Jet]:
    """Autocorrelations at lags 1..m from partial autocorrelations in (-1, 1).

    Any partial autocorrelations in (-1, 1) give a positive definite Toeplitz correlation.
    """
    rho: list[Jet] = []
    phi: list[Jet] = []
    for k, pk in enumerate(partials, start=1):
        if k == 1:
            rho.append(pk)
            phi = [pk]
            continue
        s1 = sum((phi[j] * rho[k - 2 - j] for j in range(k - 1)), start=pk * 0.0)
        s2 = sum((phi[j] * rho[j] for j in range(k - 1)), start=pk * 0.0)
        rho.append(s1 + pk * (1.0 - s2))
        phi = [phi[j] - pk * phi[k - 2 - j] for j in range(k - 1)] + [pk]
    return rho


def _partial_autocorrelations(rho: Sequence[float]) -> np.ndarray:
    """Inverse of :func:`_durbin_levinson` (floats); NaN when not positive definite."""
    partials = []
    phi: list[float] = []
    v = 1.0
    for k, rk in enumerate(rho, start=1):
        pk = (rk - sum(phi[j] * rho[k - 2 - j] for j in range(k - 1))) / v
        partials.append(pk)
        phi = [phi[j] - pk * phi[k - 2 - j] for j in range(k - 1)] + [pk]
        v *= 1.0 - pk * pk
        if v <= 0:
            return np.full(len(rho), np.nan)
    return np.array(partials)


# -- helpers for matrices ---------------------------------------------------------------


def _lag_bands(n: int) -> np.ndarray:
    """(n, n, n): band k has ones where ``|i - j| == k``."""
    idx = np.arange(n)
    lag = np.abs(idx[:, None] - idx[None, :])
    return (lag[None, :, :] == np.arange(n)[:, None, None]).astype(float)


def _heterogeneous(
    variances: np.ndarray, corr: np.ndarray, dcorr: np.ndarray, d2corr: np.ndarray | None
) -> CovarianceDerivatives:
    """``sd_i sd_j C_ij`` differentiated in (variances, correlation parameters)."""
    t = variances.shape[0]
    r = dcorr.shape[0]
    s = np.sqrt(variances)
    a = 0.5 / s  # d sd / d variance
    b = -0.25 / s**3  # d2 sd / d variance2
    ss = np.outer(s, s)
    n = t + r
    d1 = np.zeros((n, t, t))
    d2 = np.zeros((n, n, t, t))
    for k in range(t):
        m = np.zeros((t, t))
        m[k, :] += a[k] * s
        m[:, k] += a[k] * s
        d1[k] = m * corr
        mm = np.zeros((t, t))
        mm[k, :] += b[k] * s
        mm[:, k] += b[k] * s
        mm[k, k] = 0.0  # the variance itself is linear in itself
        d2[k, k] = mm * corr
        for j in range(t):
            if j != k:
                d2[k, j, k, j] = d2[k, j, j, k] = a[k] * a[j] * corr[k, j]
        for m_idx in range(r):
            d2[k, t + m_idx] = d2[t + m_idx, k] = m * dcorr[m_idx]
    for m_idx in range(r):
        d1[t + m_idx] = ss * dcorr[m_idx]
        if d2corr is not None:
            for n_idx in range(r):
                d2[t + m_idx, t + n_idx] = ss * d2corr[m_idx, n_idx]
    return CovarianceDerivatives(ss * corr, d1, d2)


def _ar1_correlation(rho: float, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rho**|i-j|`` with first and second derivatives in rho, each (T, T)."""
    idx = np.arange(t)
    lag = np.abs(idx[:, None] - idx[None, :]).astype(float)
    corr = rho**lag
    d1 = np.where(lag >= 1, lag * rho ** np.maximum(lag - 1, 0), 0.0)
    d2 = np.where(lag >= 2, lag * (lag - 1) * rho ** np.maximum(lag - 2, 0), 0.0)
    return corr, d1, d2


def _correlation(sigma: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(sigma))
    return sigma / np.outer(sd, sd)


def _mean_lag_correlation(sigma: np.ndarray, lag: int) -> float:
    return float(np.mean(np.diag(_correlation(sigma), lag)))


# -- structures -----------------------------------------------------------------------


class CovarianceStructure(ABC):
    """A family of T x T covariance matrices over the visits.

    Parameters
    ----------
    visits : sequence of str
        Visit labels, in visit order (used for parameter names only).
    """

    name: ClassVar[str]
    description: ClassVar[str]

    def __init__(self, visits: Sequence[str]) -> None:
        self.visits = tuple(str(v) for v in visits)
        self.n_visits = len(self.visits)

    @property
    @abstractmethod
    def n_theta(self) -> int:
        """Number of parameters."""

    @property
    @abstractmethod
    def natural_names(self) -> tuple[str, ...]:
        """Names of the natural parameters."""

    @abstractmethod
    def natural_jets(self, theta: np.ndarray) -> list[Jet]:
        """The natural parameters as jets in ``theta``."""

    @abstractmethod
    def natural_matrices(self, values: np.ndarray) -> CovarianceDerivatives:
        """The matrix and its derivatives in the natural parameters."""

    @abstractmethod
    def theta_from_covariance(self, sigma: np.ndarray) -> np.ndarray:
        """Unconstrained parameters of the member of the family closest to ``sigma``.

        A moment-type projection used for starting values, not a fit.
        """

    def _jets(self, theta: np.ndarray) -> list[Jet]:
        n = self.n_theta
        return [Jet.variable(x, i, n) for i, x in enumerate(np.asarray(theta, dtype=float))]

    def natural(self, theta: np.ndarray) -> NaturalParameters:
        """Natural parameter values and matrix derivatives at ``theta``."""
        values, _, _ = stack_jets(self.natural_jets(theta))
        return NaturalParameters(self.natural_names, values, self.natural_matrices(values))

    def theta_derivatives(self, theta: np.ndarray) -> CovarianceDerivatives:
        """The matrix and its derivatives in the unconstrained parameters (chain rule)."""
        values, jac, hess = stack_jets(self.natural_jets(theta))
        nat = self.natural_matrices(values)
        d1 = np.einsum("ak,ast->kst", jac, nat.d1)
        d2 = np.einsum("akl,ast->klst", hess, nat.d1)
        if nat.d2 is not None:
            d2 = d2 + np.einsum("ak,bl,abst->klst", jac, jac, nat.d2)
        return CovarianceDerivatives(nat.sigma, d1, d2)

    def covariance(self, theta: np.ndarray) -> np.ndarray:
        """The covariance matrix at ``theta``."""
        return self.theta_derivatives(theta).sigma

    def _var_names(self) -> tuple[str, ...]:
        return tuple(f"var({v})" for v in self.visits)


class Unstructured(CovarianceStructure):
    """``us``: every variance and covariance free.

    ``theta`` is mmrm's: the covariance is ``L L'`` with ``L[i, i] = exp(theta_i)`` and
    ``L[i, j] = exp(theta_i) * theta_ij`` below the diagonal (``theta_ij`` after the T
    log-diagonal entries, row by row).
    """

    name = "us"
    description = "unstructured"

    def __init__(self, visits: Sequence[str]) -> None:
        super().__init__(visits)
        t = self.n_visits
        self._rows, self._cols = np.tril_indices(t, -1)
        self._vech_rows, self._vech_cols = np.tril_indices(t)
        basis = np.zeros((self._vech_rows.size, t, t))
        idx = np.arange(self._vech_rows.size)
        basis[idx, self._vech_rows, self._vech_cols] = 1.0
        basis[idx, self._vech_cols, self._vech_rows] = 1.0
        self._basis = basis

    @property
    def n_theta(self) -> int:
        return self.n_visits * (self.n_visits + 1) // 2

    @property
    def natural_names(self) -> tuple[str, ...]:
        v = self.visits
        return tuple(
            f"var({v[i]})" if i == j else f"cov({v[i]},{v[j]})"
            for i, j in zip(self._vech_rows, self._vech_cols, strict=True)
        )

    def natural_jets(self, theta: np.ndarray) -> list[Jet]:
        raise NotImplementedError("us differentiates its Cholesky factor directly")

    def _factor(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """L, dL (n, T, T) and d2L (n, n, T, T)."""
        t = self.n_visits
        n = self.n_theta
        theta = np.asarray(theta, dtype=float)
        scale = np.exp(theta[:t])
        unit = np.eye(t)
        unit[self._rows, self._cols] = theta[t:]
        chol = scale[:, None] * unit
        d1 = np.zeros((n, t, t))
        d2 = np.zeros((n, n, t, t))
        for i in range(t):
            d1[i, i, :] = chol[i, :]
            d2[i, i, i, :] = chol[i, :]
        for q, (i, j) in enumerate(zip(self._rows, self._cols, strict=True), start=t):
            d1[q, i, j] = scale[i]
            d2[i, q, i, j] = d2[q, i, i, j] = scale[i]
        return chol, d1, d2

    def theta_derivatives(self, theta: np.ndarray) -> CovarianceDerivatives:
        chol, d1l, d2l = self._factor(theta)
        d1 = np.einsum("kab,cb->kac", d1l, chol)
        d1 = d1 + d1.transpose(0, 2, 1)
        x1 = np.einsum("klab,cb->klac", d2l, chol)
        x2 = np.einsum("kab,lcb->klac", d1l, d1l)
        d2 = x1 + x1.transpose(0, 1, 3, 2) + x2 + x2.transpose(0, 1, 3, 2)
        return CovarianceDerivatives(chol @ chol.T, d1, d2)

    def covariance(self, theta: np.ndarray) -> np.ndarray:
        t = self.n_visits
        theta = np.asarray(theta, dtype=float)
        unit = np.eye(t)
        unit[self._rows, self._cols] = theta[t:]
        chol = np.exp(theta[:t])[:, None] * unit
        return chol @ chol.T

    def natural(self, theta: np.ndarray) -> NaturalParameters:
        sigma = self.covariance(theta)
        values = sigma[self._vech_rows, self._vech_cols]
        return NaturalParameters(
            self.natural_names, values, CovarianceDerivatives(sigma, self._basis, None)
        )

    def natural_matrices(self, values: np.ndarray) -> CovarianceDerivatives:
        t = self.n_visits
        sigma = np.zeros((t, t))
        sigma[self._vech_rows, self._vech_cols] = values
        sigma[self._vech_cols, self._vech_rows] = values
        return CovarianceDerivatives(sigma, self._basis, None)

    def theta_from_covariance(self, sigma: np.ndarray) -> np.ndarray:
        chol = np.linalg.cholesky(sigma)
        diag = np.diag(chol)
        return np.concatenate([np.log(diag), (chol / diag[:, None])[self._rows, self._cols]])


class CompoundSymmetry(CovarianceStructure):
    """``cs``: common variance and common correlation.

    Natural parameters are SAS's ``CS`` (common covariance) and residual variance, in which
    the matrix is linear; ``theta`` is (log total variance, correlation on the logistic
    scale of its admissible interval (-1/(T-1), 1)).
    """

    name = "cs"
    description = "compound symmetry"

    @property
    def n_theta(self) -> int:
        return 2

    @property
    def natural_names(self) -> tuple[str, ...]:
        return ("covariance", "residual")

    @property
    def _lower(self) -> float:
        return -1.0 / (self.n_visits - 1)

    def natural_jets(self, theta: np.ndarray) -> list[Jet]:
        log_var, z = self._jets(theta)
        var = log_var.map(_exp)
        rho = z.map(_scaled_logistic(self._lower))
        return [var * rho, var * (1.0 - rho)]

    def natural_matrices(self, values: np.ndarray) -> CovarianceDerivatives:
        t = self.n_visits
        ones, eye = np.ones((t, t)), np.eye(t)
        return CovarianceDerivatives(
            values[0] * ones + values[1] * eye, np.stack([ones, eye]), None
        )

    def theta_from_covariance(self, sigma: np.ndarray) -> np.ndarray:
        t = self.n_visits
        var = float(np.mean(np.diag(sigma)))
        off = (sigma.sum() - np.trace(sigma)) / (t * (t - 1))
        rho = float(np.clip(off / var, self._lower + 0.05, 0.95))
        return np.array([np.log(var), _scaled_logistic_inverse(rho, self._lower)])


class HeterogeneousCompoundSymmetry(CovarianceStructure):
    """``csh``: a variance per visit and a common correlation."""

    name = "csh"
    description = "heterogeneous compound symmetry"

    @property
    def n_theta(self) -> int:
        return self.n_visits + 1

    @property
    def natural_names(self) -> tuple[str, ...]:
        return (*self._var_names(), "rho")

    @property
    def _lower(self) -> float:
        return -1.0 / (self.n_visits - 1)

    def natural_jets(self, theta: np.ndarray) -> list[Jet]:
        jets = self._jets(theta)
        return [j.map(_exp) for j in jets[:-1]] + [jets[-1].map(_scaled_logistic(self._lower))]

    def natural_matrices(self, values: np.ndarray) -> CovarianceDerivatives:
        t = self.n_visits
        rho = values[-1]
        ones, eye = np.ones((t, t)), np.eye(t)
        corr = (1 - rho) * eye + rho * ones
        return _heterogeneous(values[:-1], corr, (ones - eye)[None], None)

    def theta_from_covariance(self, sigma: np.ndarray) -> np.ndarray:
        t = self.n_visits
        corr = _correlation(sigma)
        rho = float(np.clip((corr.sum() - t) / (t * (t - 1)), self._lower + 0.05, 0.95))
        return np.append(np.log(np.diag(sigma)), _scaled_logistic_inverse(rho, self._lower))


class Autoregressive(CovarianceStructure):
    """``ar1``: common variance, correlation ``rho**|i-j|``."""

    name = "ar1"
    description = "first-order autoregressive"

    @property
    def n_theta(self) -> int:
        return 2

    @property
    def natural_names(self) -> tuple[str, ...]:
        return ("variance", "rho")

    def natural_jets(self, theta: np.ndarray) -> list[Jet]:
        log_var, z = self._jets(theta)
        return [log_var.map(_exp), z.map(_algebraic)]

    def natural_matrices(self, values: np.ndarray) -> CovarianceDerivatives:
        var, rho = values
        corr, dc, d2c = _ar1_correlation(rho, self.n_visits)
        d1 = np.stack([corr, var * dc])
        d2 = np.zeros((2, 2, self.n_visits, self.n_visits))
        d2[0, 1] = d2[1, 0] = dc
        d2[1, 1] = var * d2c
        return CovarianceDerivatives(var * corr, d1, d2)

    def theta_from_covariance(self, sigma: np.ndarray) -> np.ndarray:
        rho = float(np.clip(_mean_lag_correlation(sigma, 1), -0.9, 0.9))
        return np.array([np.log(np.mean(np.diag(sigma))), _algebraic_inverse(rho)])


class HeterogeneousAutoregressive(CovarianceStructure):
    """``ar1h``: a variance per visit, correlation ``rho**|i-j|``."""

    name = "ar1h"
    description = "heterogeneous first-order autoregressive"

    @property
    def n_theta(self) -> int:
        return self.n_visits + 1

    @property
    def natural_names(self) -> tuple[str, ...]:
        return (*self._var_names(), "rho")

    def natural_jets(self, theta: np.ndarray) -> list[Jet]:
        jets = self._jets(theta)
        return [j.map(_exp) for j in jets[:-1]] + [jets[-1].map(_algebraic)]

    def natural_matrices(self, values: np.ndarray) -> CovarianceDerivatives:
        corr, dc, d2c = _ar1_correlation(values[-1], self.n_visits)
        return _heterogeneous(values[:-1], corr, dc[None], d2c[None, None])

    def theta_from_covariance(self, sigma: np.ndarray) -> np.ndarray:
        rho = float(np.clip(_mean_lag_correlation(sigma, 1), -0.9, 0.9))
        return np.append(np.log(np.diag(sigma)), _algebraic_inverse(rho))


def _toeplitz_start(sigma: np.ndarray) -> np.ndarray:
    """Partial autocorrelations (unconstrained) of the mean lag correlations, shrunk to PD."""
    t = sigma.shape[0]
    rho = [_mean_lag_correlation(sigma, k) for k in range(1, t)]
    for shrink in (1.0, 0.8, 0.6, 0.4, 0.2, 0.0):
        partials = _partial_autocorrelations([r * shrink**k for k, r in enumerate(rho, 1)])
        if np.all(np.isfinite(partials)) and np.all(np.abs(partials) < 0.95):
            return np.array([_algebraic_inverse(p) for p in partials])
    return np.zeros(t - 1)  # pragma: no cover - shrink 0 always succeeds


class Toeplitz(CovarianceStructure):
    """``toep``: a covariance per lag ``|i-j|`` (banded, homogeneous)."""

    name = "toep"
    description = "Toeplitz"

    @property
    def n_theta(self) -> int:
        return self.n_visits

    @property
    def natural_names(self) -> tuple[str, ...]:
        return tuple(f"cov(lag {k})" for k in range(self.n_visits))

    def natural_jets(self, theta: np.ndarray) -> list[Jet]:
        jets = self._jets(theta)
        var = jets[0].map(_exp)
        rho = _durbin_levinson([j.map(_algebraic) for j in jets[1:]])
        return [var] + [var * r for r in rho]

    def natural_matrices(self, values: np.ndarray) -> CovarianceDerivatives:
        bands = _lag_bands(self.n_visits)
        return CovarianceDerivatives(np.einsum("k,kst->st", values, bands), bands, None)

    def theta_from_covariance(self, sigma: np.ndarray) -> np.ndarray:
        return np.append(np.log(np.mean(np.diag(sigma))), _toeplitz_start(sigma))


class HeterogeneousToeplitz(CovarianceStructure):
    """``toeph``: a variance per visit and a correlation per lag."""

    name = "toeph"
    description = "heterogeneous Toeplitz"

    @property
    def n_theta(self) -> int:
        return 2 * self.n_visits - 1

    @property
    def natural_names(self) -> tuple[str, ...]:
        return (*self._var_names(), *(f"rho(lag {k})" for k in range(1, self.n_visits)))

    def natural_jets(self, theta: np.ndarray) -> list[Jet]:
        jets = self._jets(theta)
        t = self.n_visits
        variances = [j.map(_exp) for j in jets[:t]]
        return variances + _durbin_levinson([j.map(_algebraic) for j in jets[t:]])

    def natural_matrices(self, values: np.ndarray) -> CovarianceDerivatives:
        t = self.n_visits
        bands = _lag_bands(t)
        corr = bands[0] + np.einsum("k,kst->st", values[t:], bands[1:])
        return _heterogeneous(values[:t], corr, bands[1:], None)

    def theta_from_covariance(self, sigma: np.ndarray) -> np.ndarray:
        return np.append(np.log(np.diag(sigma)), _toeplitz_start(sigma))


#: The covariance structures by name.
COVARIANCE_STRUCTURES: dict[str, type[CovarianceStructure]] = {
    cls.name: cls
    for cls in (
        Unstructured,
        CompoundSymmetry,
        HeterogeneousCompoundSymmetry,
        Autoregressive,
        HeterogeneousAutoregressive,
        Toeplitz,
        HeterogeneousToeplitz,
    )
}


def make_structure(name: str, visits: Sequence[str]) -> CovarianceStructure:
    """The covariance structure called ``name`` over ``visits``.

    Examples
    --------
    >>> s = make_structure("ar1", ["V1", "V2", "V3"])
    >>> s.covariance([0.0, 0.0]).round(3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    >>> make_structure("banded", ["V1", "V2"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    trialdesk.stats.mmrm.errors.UnknownMethodError: unknown covariance structure 'banded'; ...
    """
    try:
        cls = COVARIANCE_STRUCTURES[name]
    except KeyError:
        raise UnknownMethodError(
            "covariance structure", name, list(COVARIANCE_STRUCTURES)
        ) from None
    return cls(visits)
