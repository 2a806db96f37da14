"""Second-order forward-mode differentiation of small scalar maps.

A :class:`Jet` carries a value with its gradient and Hessian with respect to a few input
parameters. The covariance structures use jets to differentiate their maps from the
unconstrained optimizer parameters to the natural parameters (variances, correlations),
which are short chains of sums, products and smooth scalar functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Jet", "stack_jets"]


@dataclass(frozen=True)
class Jet:
    """A scalar ``value`` with its ``grad`` (n,) and ``hess`` (n, n) in n parameters.

    Examples
    --------
    >>> x = Jet.variable(2.0, index=0, size=1)
    >>> y = x * x + 3.0
    >>> float(y.value), y.grad.tolist(), y.hess.tolist()
    (7.0, [4.0], [[2.0]])
    """

    value: float
    grad: np.ndarray
    hess: np.ndarray

    @classmethod
    def variable(cls, value: float, index: int, size: int) -> Jet:
        """The ``index``-th of ``size`` independent parameters, at ``value``."""
        grad = np.zeros(size)
        grad[index] = 1.0
        return cls(float(value), grad, np.zeros((size, size)))

    @classmethod
    def constant(cls, value: float, size: int) -> Jet:
        """A constant (zero derivatives)."""
        return cls(float(value), np.zeros(size), np.zeros((size, size)))

    def _lift(self, other: Jet | float) -> Jet:
        if isinstance(other, Jet):
            return other
        return Jet.constant(other, self.grad.shape[0])

    def __add__(self, other: Jet | float) -> Jet:
        o = self._lift(other)
        return Jet(self.value + o.value, self.grad + o.grad, self.hess + o.hess)

    __radd__ = __add__

    def __neg__(self) -> Jet:
        return Jet(-self.value, -self.grad, -self.hess)

    def __sub__(self, other: Jet | float) -> Jet:
        return self + (-self._lift(other))

    def __rsub__(self, other: Jet | float) -> Jet:
        return self._lift(other) - self

    def __mul__(self, other: Jet | float) -> Jet:
        if not isinstance(other, Jet):
            return Jet(self.value * other, self.grad * other, self.hess * other)
        cross = np.outer(self.grad, other.grad)
        return Jet(
            self.value * other.value,
            self.value * other.grad + other.value * self.grad,
            self.value * other.hess + other.value * self.hess + cross + cross.T,
        )

    __rmul__ = __mul__

    def apply(self, f0: float, f1: float, f2: float) -> Jet:
        """Compose with a scalar function given its value and two derivatives here."""
        return Jet(f0, f1 * self.grad, f1 * self.hess + f2 * np.outer(self.grad, self.grad))

    def map(self, f: Callable[[float], tuple[float, float, float]]) -> Jet:
        """Compose with ``f`` returning ``(f(x), f'(x), f''(x))``."""
        return self.apply(*f(self.value))


def stack_jets(jets: list[Jet]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values (m,), Jacobian (m, n) and Hessians (m, n, n) of a list of jets.

    Examples
    --------
    >>> a = Jet.variable(1.0, 0, 2)
    >>> b = Jet.variable(3.0, 1, 2)
    >>> values, jac, _ = stack_jets([a * b, a + b])
    >>> values.tolist(), jac.tolist()
    ([3.0, 4.0], [[3.0, 1.0], [1.0, 1.0]])
    """
    values = np.array([j.value for j in jets])
    jacobian = np.array([j.grad for j in jets])
    hessians = np.array([j.hess for j in jets])
    return values, jacobian, hessians
