"""Pure numerical statistics: numpy/scipy/pandas/formulaic/statsmodels, no Django.

Nothing here imports Django or any other part of trialdesk (an import-linter contract checks
it), so the package can be used on its own, e.g. from a notebook.
"""

from trialdesk.stats.allocation import BlockScheme, draw_block_lists, draw_stratified_lists
from trialdesk.stats.ancova import AncovaResult, DoseResponseResult, dose_response, fit_ancova
from trialdesk.stats.bayes import NormalPosterior, NormalPrior, normal_posterior
from trialdesk.stats.counts import RateModelResult, fit_rate_model
from trialdesk.stats.exact import (
    FisherResult,
    PermutationTestResult,
    RankSumResult,
    fisher_exact,
    permutation_test,
    rerandomization_test,
    wilcoxon_rank_sum,
)
from trialdesk.stats.linear import LinearModelFit, fit_linear_model
from trialdesk.stats.mmrm import (
    DuplicateVisitError,
    EmptyVisitError,
    MmrmDataError,
    MmrmError,
    MmrmFit,
    MmrmInferenceError,
    MmrmSpec,
    MmrmSpecError,
    NonPositiveDefiniteStartError,
    fit_mmrm,
    fit_mmrm_spec,
)
from trialdesk.stats.multiple_imputation import (
    ImputationError,
    PooledEstimate,
    ReferenceImputationResult,
    jump_to_reference,
    rubin_rules,
)
from trialdesk.stats.power import (
    AnalysisPlan,
    Scenario,
    SimulationResult,
    TrialDesign,
    simulate_trials,
)

__all__ = [
    "AnalysisPlan",
    "AncovaResult",
    "BlockScheme",
    "DoseResponseResult",
    "DuplicateVisitError",
    "EmptyVisitError",
    "FisherResult",
    "ImputationError",
    "LinearModelFit",
    "MmrmDataError",
    "MmrmError",
    "MmrmFit",
    "MmrmInferenceError",
    "MmrmSpec",
    "MmrmSpecError",
    "NonPositiveDefiniteStartError",
    "NormalPosterior",
    "NormalPrior",
    "PermutationTestResult",
    "PooledEstimate",
    "RankSumResult",
    "RateModelResult",
    "ReferenceImputationResult",
    "Scenario",
    "SimulationResult",
    "TrialDesign",
    "dose_response",
    "draw_block_lists",
    "draw_stratified_lists",
    "fisher_exact",
    "fit_ancova",
    "fit_linear_model",
    "fit_mmrm",
    "fit_mmrm_spec",
    "fit_rate_model",
    "jump_to_reference",
    "normal_posterior",
    "permutation_test",
    "rerandomization_test",
    "rubin_rules",
    "simulate_trials",
    "wilcoxon_rank_sum",
]
