"""Bayesian companion of a pilot's primary analysis: a conjugate normal model of the effect.

The model, in closed form (no MCMC):

* likelihood: the frequentist estimate of the treatment effect is normal around the true
  effect, ``estimate ~ N(theta, se**2)``, with its standard error taken as known (the usual
  large-sample approximation; with few residual degrees of freedom it slightly understates
  the uncertainty);
* prior: ``theta ~ N(m0, s0**2)``;
* posterior: ``theta | estimate ~ N(m1, s1**2)`` with precision ``1/s1**2 = 1/s0**2 + 1/se**2``
  and mean ``m1 = s1**2 * (m0/s0**2 + estimate/se**2)``, a precision-weighted average.

Priors (Spiegelhalter, Freedman and Parmar 1994):

* :meth:`NormalPrior.flat`: ``s0 = inf``, the posterior equals the likelihood;
* :meth:`NormalPrior.sceptical`: centred on no effect, with only a small probability
  (``tail``, 5 % by default) that the effect is at least as large as the effect the trial
  hopes for;
* :meth:`NormalPrior.enthusiastic`: centred on that hoped-for effect, with the same small
  probability of no benefit.

The effect's sign follows the ANCOVA difference (active minus control). A fall in NASA is a
negative difference, so "NASA reduced by at least 1 point" is ``prob_below(-1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

__all__ = ["BayesError", "NormalPosterior", "NormalPrior", "normal_posterior"]


class BayesError(ValueError):
    """An invalid prior or likelihood summary."""


@dataclass(frozen=True)
class NormalPrior:
    """Normal prior ``N(mean, sd**2)`` of the treatment effect; ``sd = inf`` is flat.

    Examples
    --------
    >>> NormalPrior(mean=0.0, sd=2.0)
    NormalPrior(mean=0.0, sd=2.0)
    """

    mean: float = 0.0
    sd: float = math.inf

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean):
            raise BayesError(f"prior mean must be finite, got {self.mean}")
        if not self.sd > 0:
            raise BayesError(f"prior sd must be positive, got {self.sd}")

    @classmethod
    def flat(cls) -> NormalPrior:
        """The improper flat prior: the posterior is ``N(estimate, se**2)``.

        Examples
        --------
        >>> NormalPrior.flat().sd
        inf
        """
        return cls(0.0, math.inf)

    @classmethod
    def sceptical(cls, effect: float, tail: float = 0.05) -> NormalPrior:
        """Centred on 0 with probability ``tail`` that the effect reaches ``effect``.

        Parameters
        ----------
        effect : float
            The effect the trial hopes for (e.g. ``-2`` NASA points).
        tail : float
            Prior probability of an effect at least that large.

        Examples
        --------
        >>> prior = NormalPrior.sceptical(-2.0)
        >>> round(prior.sd, 4)
        1.2159
        """
        return cls(0.0, _sd_for_tail(effect, tail))

    @classmethod
    def enthusiastic(cls, effect: float, tail: float = 0.05) -> NormalPrior:
        """Centred on ``effect`` with probability ``tail`` of no benefit at all.

        Examples
        --------
        >>> prior = NormalPrior.enthusiastic(-2.0)
        >>> prior.mean, round(prior.sd, 4)
        (-2.0, 1.2159)
        """
        return cls(float(effect), _sd_for_tail(effect, tail))


def _sd_for_tail(effect: float, tail: float) -> float:
    if effect == 0 or not math.isfinite(effect):
        raise BayesError(f"effect must be finite and non-zero, got {effect}")
    if not 0 < tail < 0.5:
        raise BayesError(f"tail probability must lie in (0, 0.5), got {tail}")
    return abs(effect) / float(stats.norm.isf(tail))


@dataclass(frozen=True)
class NormalPosterior:
    """Posterior ``N(mean, sd**2)`` of the treatment effect.

    Attributes
    ----------
    mean, sd : float
        Posterior mean and standard deviation.
    prior : NormalPrior
        The prior it came from.
    estimate, se : float
        The likelihood summary it came from.
    """

    mean: float
    sd: float
    prior: NormalPrior
    estimate: float
    se: float

    def prob_below(self, threshold: float) -> float:
        """Posterior probability that the effect is below ``threshold``.

        Examples
        --------
        >>> round(normal_posterior(-2.0, 1.0).prob_below(-1.0), 4)
        0.8413
        """
        return float(stats.norm.cdf(threshold, self.mean, self.sd))

    def prob_above(self, threshold: float) -> float:
        """Posterior probability that the effect is above ``threshold``.

        Examples
        --------
        >>> round(normal_posterior(2.0, 1.0).prob_above(0.0), 4)
        0.9772
        """
        return float(stats.norm.sf(threshold, self.mean, self.sd))

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Equal-tailed credible interval.

        Examples
        --------
        >>> [round(x, 3) for x in normal_posterior(0.0, 1.0).interval(0.95)]
        [-1.96, 1.96]
        """
        if not 0 < level < 1:
            raise BayesError(f"level must lie in (0, 1), got {level}")
        lo, hi = stats.norm.interval(level, self.mean, self.sd)
        return float(lo), float(hi)


def normal_posterior(
    estimate: float, se: float, prior: NormalPrior | None = None
) -> NormalPosterior:
    """Combine a normal likelihood summary with a normal prior.

    Parameters
    ----------
    estimate : float
        Estimated treatment effect (e.g. an ANCOVA difference, active minus control).
    se : float
        Its standard error.
    prior : NormalPrior, optional
        Defaults to the flat prior.

    Returns
    -------
    NormalPosterior

    Examples
    --------
    Estimated change in NASA -2.1 (SE 1.0), sceptical prior putting 5 % on a fall of 2
    points or more; probability that dupilumab lowers NASA by at least 1 point:

    >>> post = normal_posterior(-2.1, 1.0, NormalPrior.sceptical(-2.0))
    >>> round(post.mean, 3), round(post.sd, 3), round(post.prob_below(-1.0), 3)
    (-1.253, 0.772, 0.628)
    """
    prior = prior or NormalPrior.flat()
    if not (math.isfinite(estimate) and math.isfinite(se) and se > 0):
        raise BayesError(f"estimate and se must be finite with se > 0, got {estimate}, {se}")
    data_precision = 1.0 / se**2
    prior_precision = 0.0 if math.isinf(prior.sd) else 1.0 / prior.sd**2
    precision = data_precision + prior_precision
    mean = (prior_precision * prior.mean + data_precision * estimate) / precision
    return NormalPosterior(
        mean=float(mean),
        sd=float(math.sqrt(1.0 / precision)),
        prior=prior,
        estimate=float(estimate),
        se=float(se),
    )
