"""Mixed models for repeated measures (MMRM), validated against R mmrm and SAS PROC MIXED.

Layers, each usable and testable alone:

* :mod:`.spec` -- the frozen :class:`MmrmSpec`, validated when built;
* :mod:`.data` -- data validation and design matrix (formulaic);
* :mod:`.patterns` -- the data reduced to sufficient statistics per missingness pattern;
* :mod:`.covariance` -- covariance structures (``us``, ``cs``, ``csh``, ``ar1``, ``ar1h``,
  ``toep``, ``toeph``) with analytic derivatives;
* :mod:`.likelihood` -- REML/ML criterion, analytic gradient and Hessian;
* :mod:`.optimizers` -- optimizers tried in order, with every attempt reported;
* :mod:`.state` and :mod:`.df` -- degrees-of-freedom methods (residual, Satterthwaite,
  Kenward-Roger), one module each behind one dispatcher;
* :mod:`.inference` -- LS means, contrasts, Type III tests;
* :mod:`.result` -- the frozen :class:`MmrmFit`.

Examples
--------
>>> from trialdesk.stats.mmrm import example_data, fit_mmrm
>>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
>>> fit.contrasts("arm", by="visit")["contrast"].tolist()
['TRT - PBO', 'TRT - PBO', 'TRT - PBO']
"""

from __future__ import annotations

from .covariance import COVARIANCE_STRUCTURES
from .df import DF_METHODS
from .errors import (
    ConvergenceError,
    DuplicateVisitError,
    EmptyVisitError,
    MmrmDataError,
    MmrmError,
    MmrmInferenceError,
    MmrmSpecError,
    NonPositiveDefiniteStartError,
    SingularDesignError,
    UnknownMethodError,
)
from .example import example_data
from .fit import FallbackOptimizerWarning, fit_mmrm, fit_mmrm_spec
from .optimizers import Optimizer, OptimizerAttempt, OptimizerOutcome
from .result import MmrmFit
from .spec import MmrmSpec

__all__ = [
    "COVARIANCE_STRUCTURES",
    "DF_METHODS",
    "ConvergenceError",
    "DuplicateVisitError",
    "EmptyVisitError",
    "FallbackOptimizerWarning",
    "MmrmDataError",
    "MmrmError",
    "MmrmFit",
    "MmrmInferenceError",
    "MmrmSpec",
    "MmrmSpecError",
    "NonPositiveDefiniteStartError",
    "Optimizer",
    "OptimizerAttempt",
    "OptimizerOutcome",
    "SingularDesignError",
    "UnknownMethodError",
    "example_data",
    "fit_mmrm",
    "fit_mmrm_spec",
]
