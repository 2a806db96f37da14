"""Degrees-of-freedom methods, one module each, behind one dispatcher.

========================  ===============================================================
name                      method
========================  ===============================================================
``residual``              ``n_obs - rank(X)`` (:mod:`.residual`)
``satterthwaite``         Satterthwaite, SAS/mmrm multi-df rule (:mod:`.satterthwaite`)
``kenward-roger``         Kenward-Roger as SAS ``ddfm=kr`` (:mod:`.kenward_roger`)
``kenward-roger-linear``  Kenward-Roger without second derivatives, SAS ``ddfm=kr(linear)``,
                          mmrm "Kenward-Roger-Linear"
========================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UnknownMethodError
from ..state import ModelState
from . import kenward_roger, residual, satterthwaite
from .base import DfEngine, FTest, TTests

__all__ = ["DF_METHODS", "DfEngine", "FTest", "TTests", "build_df_engine"]

#: Engine builders by method name.
DF_METHODS: dict[str, Callable[[ModelState], DfEngine]] = {
    "residual": residual.build,
    "satterthwaite": satterthwaite.build,
    "kenward-roger": kenward_roger.build,
    "kenward-roger-linear": kenward_roger.build_linear,
}


def build_df_engine(name: str, state: ModelState) -> DfEngine:
    """The inference engine of ``state`` for the degrees-of-freedom method ``name``.

    Raises
    ------
    UnknownMethodError
        For a name not in :data:`DF_METHODS`.

    Examples
    --------
    >>> build_df_engine("containment", None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    trialdesk.stats.mmrm.errors.UnknownMethodError: unknown degrees-of-freedom method ...
    """
    try:
        builder = DF_METHODS[name]
    except KeyError:
        raise UnknownMethodError("degrees-of-freedom method", name, list(DF_METHODS)) from None
    return builder(state)
