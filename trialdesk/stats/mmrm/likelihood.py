"""The (restricted) log-likelihood of the MMRM with its analytic gradient and Hessian.

With V = blockdiag(Sigma_p) (Sigma restricted to the visits of each subject's pattern),
``Phi = (X' V^-1 X)^-1``, ``beta = Phi X' V^-1 y`` and ``P = V^-1 - V^-1 X Phi X' V^-1``,
the criterion minimised is

    f = -2 log L = c + log|V| + [log|X' V^-1 X|]_REML + y' P y,

with ``c = (n - k) log(2 pi)`` for REML and ``n log(2 pi)`` for ML (beta profiled out in
both). Every term is a sum over patterns of statistics from :mod:`.patterns`.

Derivatives are taken first with respect to the entries of Sigma (a (T, T) gradient ``G``
and a (T, T, T, T) Hessian ``H``, as bilinear forms on symmetric perturbations), then
mapped to any parametrization with the matrix derivatives ``D1`` (n, T, T) and ``D2``:

    df/dtheta_k = <G, D1_k>,
    d2f/dtheta_k dtheta_l = D1_k : H : D1_l + <G, D2_kl>.

For unit perturbations ``E_a = e_s e_t'``, ``E_b = e_u e_v'``:
``d2f/dE_a dE_b = -tr(K E_a K E_b) + 2 y'P E_a P E_b P y`` with K = P (REML) or V^-1 (ML).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .covariance import CovarianceDerivatives, CovarianceStructure
from .patterns import PatternStatistics

__all__ = [
    "Evaluation",
    "LikelihoodObjective",
    "NotPositiveDefiniteError",
    "evaluate",
    "hessian_tensor",
    "parameter_gradient",
    "parameter_hessian",
]

_LOG_2PI = float(np.log(2 * np.pi))


class NotPositiveDefiniteError(ArithmeticError):
    """A covariance (or X' V^-1 X) is not numerically positive definite."""


@dataclass(frozen=True)
class Evaluation:
    """The criterion and the generalised least squares quantities at one Sigma.

    Attributes
    ----------
    sigma : (T, T) covariance.
    u : (P, T, T) inverse of Sigma restricted to each pattern, embedded (zeros elsewhere).
    value : -2 log-likelihood (REML or ML).
    beta : (k,) GLS estimate.
    vcov : (k, k) ``Phi = (X' V^-1 X)^-1``.
    gradient : (T, T) derivative of ``value`` with respect to the entries of Sigma.
    resid_cross : (P, T, T) ``sum_i r_i r_i'`` per pattern (r = y - X beta).
    x_cross : (P, T, T) ``sum_i X_i Phi X_i'`` per pattern (zeros for ML).
    reml : bool.
    """

    sigma: np.ndarray
    u: np.ndarray
    value: float
    beta: np.ndarray
    vcov: np.ndarray
    gradient: np.ndarray
    resid_cross: np.ndarray
    x_cross: np.ndarray
    reml: bool

    @property
    def weights(self) -> np.ndarray:
        """``w = [-beta, 1]`` so that ``r_i = Z_i w``."""
        return np.append(-self.beta, 1.0)


def _pattern_inverses(stats: PatternStatistics, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Embedded inverses (P, T, T) and log-determinants (P,) of Sigma per pattern."""
    pairs = stats.pair_masks
    t = stats.n_visits
    emb = np.where(pairs, sigma, 0.0)
    diag = np.arange(t)
    emb[:, diag, diag] += ~stats.masks
    try:
        chol = np.linalg.cholesky(emb)
    except np.linalg.LinAlgError as exc:
        raise NotPositiveDefiniteError("covariance matrix is not positive definite") from exc
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    return np.linalg.inv(emb) * pairs, logdet


def evaluate(stats: PatternStatistics, sigma: np.ndarray, *, reml: bool) -> Evaluation:
    """The criterion, GLS estimates and gradient in Sigma at ``sigma``.

    Raises
    ------
    NotPositiveDefiniteError
        When ``sigma`` (restricted to some pattern) or ``X' V^-1 X`` is not positive definite.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> ev = evaluate(fit.state.stats, fit.state.sigma, reml=True)
    >>> bool(np.isclose(-0.5 * ev.value, fit.loglik)), ev.gradient.shape
    (True, (3, 3))
    """
    u, logdet = _pattern_inverses(stats, sigma)
    a = stats.quad(u)
    k = a.shape[0] - 1
    try:
        chol_x = np.linalg.cholesky(a[:k, :k])
    except np.linalg.LinAlgError as exc:
        raise NotPositiveDefiniteError("X' V^-1 X is not positive definite") from exc
    chol_inv = np.linalg.inv(chol_x)
    vcov = chol_inv.T @ chol_inv
    beta = vcov @ a[:k, k]
    rss = a[k, k] - a[:k, k] @ beta
    n = stats.n_obs
    value = float(stats.counts @ logdet + rss)
    w = np.append(-beta, 1.0)
    if reml:
        value += 2.0 * float(np.log(np.diag(chol_x)).sum()) + (n - k) * _LOG_2PI
        x_psi = np.zeros((k + 1, k + 1))
        x_psi[:k, :k] = vcov
        cross = stats.contract(np.stack([np.outer(w, w), x_psi]))
        resid_cross, x_cross = cross[0], cross[1]
    else:
        value += n * _LOG_2PI
        resid_cross = stats.contract(np.outer(w, w)[None])[0]
        x_cross = np.zeros_like(resid_cross)
    inner = u @ (resid_cross + x_cross) @ u
    gradient = np.einsum("p,pst->st", stats.counts.astype(float), u) - inner.sum(axis=0)
    return Evaluation(sigma, u, value, beta, vcov, gradient, resid_cross, x_cross, reml)


def hessian_tensor(stats: PatternStatistics, ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Second derivatives of the criterion in the entries of Sigma.

    Returns
    -------
    hessian : numpy.ndarray
        (T, T, T, T), ``H[s, t, u, v] = d2 f / dE_st dE_uv`` for unit matrices ``E``.
    sandwich : numpy.ndarray
        (T, T, K, K), ``sum_i (U_i Z_i)[s] (U_i Z_i)[t]'`` (its X block is
        ``X' V^-1 E_st V^-1 X``), reused by the degrees-of-freedom methods.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> ev = evaluate(fit.state.stats, fit.state.sigma, reml=True)
    >>> [a.shape for a in hessian_tensor(fit.state.stats, ev)]
    [(3, 3, 3, 3), (3, 3, 7, 7)]
    """
    u = ev.u
    k = ev.beta.shape[0]
    t = u.shape[1]
    tt = t * t
    counts = stats.counts.astype(float)
    sandwich = stats.sandwich(u)
    u_flat = u.reshape(-1, tt)
    # -sum_p m_p U[t,u] U[v,s]
    h = -((counts[:, None] * u_flat).T @ u_flat).reshape(t, t, t, t).transpose(3, 0, 1, 2)
    # 2 sum_p U[t,u] (U R U)[s,v]
    rho_cross = (u @ ev.resid_cross @ u).reshape(-1, tt)
    h += 2.0 * (u_flat.T @ rho_cross).reshape(t, t, t, t).transpose(2, 0, 1, 3)
    # -2 g[t,s]' Phi g[u,v] with g[t,s] = X' V^-1 e_t e_s' V^-1 r
    g = (sandwich[:, :, :k, :] @ ev.weights).reshape(tt, k)
    h -= 2.0 * (g @ ev.vcov @ g.T).reshape(t, t, t, t).transpose(1, 0, 2, 3)
    if ev.reml:
        # sum_p U[t,u] C[s,v] + U[v,s] C[u,t], C = U (sum X Phi X') U
        c_cross = (u @ ev.x_cross @ u).reshape(-1, tt)
        both = (u_flat.T @ c_cross).reshape(t, t, t, t)
        h += both.transpose(2, 0, 1, 3) + both.transpose(1, 3, 2, 0)
        # -tr(Phi B_st Phi B_uv), B_st = X' V^-1 E_st V^-1 X
        f = sandwich[:, :, :k, :k] @ ev.vcov
        h -= (f.reshape(tt, k * k) @ f.transpose(0, 1, 3, 2).reshape(tt, k * k).T).reshape(
            t, t, t, t
        )
    return h, sandwich


def parameter_gradient(ev: Evaluation, deriv: CovarianceDerivatives) -> np.ndarray:
    """Gradient (n,) of the criterion in the parameters of ``deriv``.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> ev = evaluate(fit.state.stats, fit.state.sigma, reml=True)
    >>> deriv = fit.structure.theta_derivatives(fit.theta)
    >>> bool(np.abs(parameter_gradient(ev, deriv)).max() < 1e-4)  # at the optimum
    True
    """
    return np.einsum("kst,st->k", deriv.d1, ev.gradient)


def parameter_hessian(
    hessian: np.ndarray, ev: Evaluation, deriv: CovarianceDerivatives
) -> np.ndarray:
    """Hessian (n, n) of the criterion in the parameters of ``deriv``.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> ev = evaluate(fit.state.stats, fit.state.sigma, reml=True)
    >>> h4, _ = hessian_tensor(fit.state.stats, ev)
    >>> h = parameter_hessian(h4, ev, fit.structure.theta_derivatives(fit.theta))
    >>> h.shape, bool(np.linalg.eigvalsh(h)[0] > 0)
    ((6, 6), True)
    """
    n = deriv.d1.shape[0]
    t = ev.sigma.shape[0]
    d1 = deriv.d1.reshape(n, t * t)
    out = d1 @ hessian.reshape(t * t, t * t) @ d1.T
    if deriv.d2 is not None:
        out += np.einsum("st,klst->kl", ev.gradient, deriv.d2)
    return 0.5 * (out + out.T)


class LikelihoodObjective:
    """``-log L`` as a function of the unconstrained parameters, for the optimizers.

    Values, gradients and Hessians at the last point are cached, so an optimizer asking
    for all three at one point pays for one evaluation. Outside the positive definite
    region the value is ``inf`` (optimizers then shorten their step).

    Parameters
    ----------
    stats : PatternStatistics
    structure : CovarianceStructure
    reml : bool
    """

    def __init__(self, stats: PatternStatistics, structure: CovarianceStructure, *, reml: bool):
        self.stats = stats
        self.structure = structure
        self.reml = reml
        self.n_evaluations = 0
        self._theta: np.ndarray | None = None
        self._cache: tuple[Evaluation, CovarianceDerivatives] | None = None

    def evaluation(self, theta: np.ndarray) -> tuple[Evaluation, CovarianceDerivatives]:
        """The evaluation and covariance derivatives at ``theta`` (cached)."""
        theta = np.asarray(theta, dtype=float)
        if self._cache is None or self._theta is None or not np.array_equal(theta, self._theta):
            self.n_evaluations += 1
            deriv = self.structure.theta_derivatives(theta)
            self._theta = theta.copy()
            self._cache = None
            self._cache = (evaluate(self.stats, deriv.sigma, reml=self.reml), deriv)
        return self._cache

    def fun(self, theta: np.ndarray) -> float:
        """``-log L`` (``inf`` where the covariance is not positive definite)."""
        if not np.all(np.isfinite(theta)):
            return np.inf
        try:
            return 0.5 * self.evaluation(theta)[0].value
        except NotPositiveDefiniteError:
            return np.inf

    def jac(self, theta: np.ndarray) -> np.ndarray:
        """Gradient of ``-log L``."""
        ev, deriv = self.evaluation(theta)
        return 0.5 * parameter_gradient(ev, deriv)

    def hess(self, theta: np.ndarray) -> np.ndarray:
        """Hessian of ``-log L``."""
        ev, deriv = self.evaluation(theta)
        h, _ = hessian_tensor(self.stats, ev)
        return 0.5 * parameter_hessian(h, ev, deriv)
