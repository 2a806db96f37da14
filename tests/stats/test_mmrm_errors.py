"""MMRM failures are explicit and name their cause; fallbacks are tried and reported."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from trialdesk.stats import (
    DuplicateVisitError,
    EmptyVisitError,
    MmrmDataError,
    MmrmInferenceError,
    MmrmSpec,
    MmrmSpecError,
    NonPositiveDefiniteStartError,
    fit_mmrm,
)
from trialdesk.stats.mmrm import (
    ConvergenceError,
    FallbackOptimizerWarning,
    OptimizerOutcome,
    SingularDesignError,
    UnknownMethodError,
    example_data,
)
from trialdesk.stats.mmrm.df import build_df_engine
from trialdesk.stats.mmrm.optimizers import ScipyOptimizer

FORMULA = "y ~ arm * visit"


@pytest.fixture
def data() -> pd.DataFrame:
    return example_data()


def fit(data: pd.DataFrame, formula: str = FORMULA, **kwargs):
    return fit_mmrm(data, formula, subject="id", visit="visit", **kwargs)


# -- specification ----------------------------------------------------------------------


def test_spec_reports_every_problem_at_once() -> None:
    with pytest.raises(MmrmSpecError) as info:
        MmrmSpec(
            "y ~ arm",
            subject="id",
            visit="id",
            covariance="banded",
            df_method="containment",
            method="bayes",
            conf_level=1.5,
            optimizers=("simplex",),
        )
    problems = info.value.problems
    assert len(problems) == 6
    for word in ("'id'", "'banded'", "'containment'", "'bayes'", "1.5", "'simplex'"):
        assert any(word in p for p in problems), word


@pytest.mark.parametrize(
    ("formula", "fragment"),
    [("y + arm", "outcome ~ terms"), ("log(y) ~ arm", "single column name"),
     ("y ~ arm +", "does not parse")],
)  # fmt: skip
def test_bad_formula_is_named(formula: str, fragment: str) -> None:
    with pytest.raises(MmrmSpecError, match=fragment):
        MmrmSpec(formula, subject="id", visit="visit")


def test_kenward_roger_needs_reml() -> None:
    with pytest.raises(MmrmSpecError, match="needs method='reml'"):
        MmrmSpec(FORMULA, subject="id", visit="visit", method="ML", df_method="kenward_roger")


def test_spec_is_frozen_and_normalises_names() -> None:
    spec = MmrmSpec(FORMULA, subject="id", visit="visit", covariance=" AR1H ", method="REML")
    assert (spec.covariance, spec.method) == ("ar1h", "reml")
    with pytest.raises(AttributeError):
        spec.covariance = "us"  # type: ignore[misc]


def test_unknown_df_method_in_the_dispatcher_is_named() -> None:
    with pytest.raises(UnknownMethodError, match="'between-within'.*known: residual"):
        build_df_engine("between-within", None)


# -- data -------------------------------------------------------------------------------


def test_formula_naming_a_missing_column_is_named(data: pd.DataFrame) -> None:
    with pytest.raises(MmrmDataError, match="'site'.*not in the data"):
        fit(data, "y ~ arm + site")


def test_all_data_problems_are_reported_together(data: pd.DataFrame) -> None:
    bad = data.assign(y=data["y"].astype(str), visit="V1")
    with pytest.raises(MmrmDataError) as info:
        fit(bad, "y ~ arm + site")
    text = str(info.value)
    assert "'site'" in text
    assert "outcome 'y' must be numeric" in text
    assert "visit 'visit' has 1 level(s)" in text


def test_non_numeric_outcome_is_named(data: pd.DataFrame) -> None:
    with pytest.raises(MmrmDataError, match="outcome 'y' must be numeric, got dtype"):
        fit(data.assign(y=np.where(data["y"].isna(), None, "high")))


def test_visit_with_one_level_is_named(data: pd.DataFrame) -> None:
    one = data[data["visit"] == "V1"].assign(visit=lambda d: d["visit"].astype(str))
    with pytest.raises(MmrmDataError, match=r"visit 'visit' has 1 level\(s\) \['V1'\]"):
        fit(one, "y ~ arm")


def test_data_must_be_a_dataframe(data: pd.DataFrame) -> None:
    with pytest.raises(MmrmDataError, match="pandas DataFrame, got dict"):
        fit(data.to_dict(orient="list"))


def test_missing_subject_in_a_row_with_an_outcome_is_named(data: pd.DataFrame) -> None:
    bad = data.copy()
    bad.loc[bad["y"].notna().idxmax(), "id"] = None
    with pytest.raises(MmrmDataError, match="subject column 'id' has 1 missing"):
        fit(bad)


def test_empty_visit_is_named(data: pd.DataFrame) -> None:
    visits = ["V1", "V2", "V3", "V4"]
    extended = data.assign(visit=pd.Categorical(data["visit"].astype(str), categories=visits))
    with pytest.raises(EmptyVisitError, match="'V4'") as info:
        fit(extended)
    assert info.value.levels == ("V4",)


def test_visit_whose_outcomes_are_all_missing_is_empty(data: pd.DataFrame) -> None:
    bad = data.assign(y=data["y"].where(data["visit"] != "V2"))
    with pytest.raises(EmptyVisitError, match="'V2'"):
        fit(bad)


def test_duplicate_visit_names_subject_and_visit(data: pd.DataFrame) -> None:
    row = data[data["y"].notna()].iloc[[0]]
    with pytest.raises(DuplicateVisitError, match=r"subject 'S000' .* visit 'V1'"):
        fit(pd.concat([data, row]))


def test_singular_design_names_the_aliased_column(data: pd.DataFrame) -> None:
    with pytest.raises(SingularDesignError, match="'base2'"):
        fit(data.assign(base2=2 * data["base"]), "y ~ base + base2 + visit")


def test_empty_cell_of_an_interaction_is_singular(data: pd.DataFrame) -> None:
    bad = data.assign(y=data["y"].where(~((data["arm"] == "TRT") & (data["visit"] == "V3"))))
    with pytest.raises(SingularDesignError, match=r"arm\[T.TRT\]:visit\[T.V3\]"):
        fit(bad)


def test_rows_with_missing_outcome_or_covariate_are_dropped_and_reported(
    data: pd.DataFrame,
) -> None:
    holes = data.assign(base=data["base"].where(data.index % 17 != 0))
    result = fit(holes, "y ~ base + arm * visit")
    n_missing = int(data["y"].isna().sum())
    n_incomplete = int((holes["base"].isna() & holes["y"].notna()).sum())
    assert result.n_obs == len(data) - n_missing - n_incomplete
    assert result.messages[0] == f"{n_missing} row(s) with a missing outcome dropped"
    assert result.messages[1] == f"{n_incomplete} row(s) with a missing covariate dropped"


# -- start values and optimizers ---------------------------------------------------------


def test_non_positive_definite_start_is_named(data: pd.DataFrame) -> None:
    start = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(NonPositiveDefiniteStartError, match="given starting covariance") as info:
        fit(data, start=start)
    assert info.value.smallest_eigenvalue == pytest.approx(-1.0)


def test_start_of_the_wrong_size_is_named(data: pd.DataFrame) -> None:
    with pytest.raises(MmrmDataError, match="start must be 3 x 3"):
        fit(data, start=np.eye(2))


def test_a_given_start_reaches_the_same_optimum(data: pd.DataFrame) -> None:
    default = fit(data)
    started = fit(data, start=np.diag([1.0, 2.0, 3.0]))
    assert started.loglik == pytest.approx(default.loglik, abs=1e-8)


class FailingOptimizer:
    """A deliberately failing optimizer: gives up at the start."""

    name = "always-fails"

    def __init__(self) -> None:
        self.calls = 0

    def minimize(self, objective, start: np.ndarray) -> OptimizerOutcome:
        self.calls += 1
        return OptimizerOutcome(np.asarray(start), False, 0, "gave up on purpose")


class RaisingOptimizer:
    name = "raises"

    def minimize(self, objective, start: np.ndarray) -> OptimizerOutcome:
        raise FloatingPointError("overflow on purpose")


def test_fallback_optimizer_is_tried_and_reported(data: pd.DataFrame) -> None:
    failing = FailingOptimizer()
    with pytest.warns(FallbackOptimizerWarning, match="always-fails: failed"):
        result = fit(data, optimizers=(failing, "l-bfgs-b"))
    assert failing.calls == 1
    assert result.fallback_used and result.optimizer == "l-bfgs-b" and result.converged
    assert [a.optimizer for a in result.attempts] == ["always-fails", "l-bfgs-b"]
    assert not result.attempts[0].converged
    assert any("gave up on purpose" in m for m in result.messages)
    assert result.loglik == pytest.approx(fit(data).loglik, abs=1e-6)


def test_an_optimizer_that_raises_is_reported_and_skipped(data: pd.DataFrame) -> None:
    with pytest.warns(FallbackOptimizerWarning, match="overflow on purpose"):
        result = fit(data, optimizers=(RaisingOptimizer(), "bfgs"))
    assert result.optimizer == "bfgs"


def test_no_fallback_warning_when_the_first_optimizer_converges(data: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fit(data)
    assert not result.fallback_used and result.optimizer == "trust-exact"


def test_non_convergence_raises_and_lists_every_attempt(data: pd.DataFrame) -> None:
    one_step = ScipyOptimizer("bfgs-one-step", "BFGS", options={"maxiter": 1})
    with pytest.raises(ConvergenceError) as info:
        fit(data, optimizers=(FailingOptimizer(), one_step))
    text = str(info.value)
    assert "always-fails: failed" in text and "bfgs-one-step: failed" in text
    assert len(info.value.attempts) == 2


# -- inference requests -------------------------------------------------------------------


def test_lsmeans_of_a_non_factor_is_named(data: pd.DataFrame) -> None:
    result = fit(data, "y ~ base + arm * visit")
    with pytest.raises(MmrmInferenceError, match=r"\['base'\] are not factors"):
        result.lsmeans("base")


def test_contrast_reference_must_be_a_level(data: pd.DataFrame) -> None:
    with pytest.raises(MmrmInferenceError, match="reference 'ACTIVE' is not a level of 'arm'"):
        fit(data).contrasts("arm", by="visit", reference="ACTIVE")


def test_kenward_roger_on_an_ml_fit_is_refused(data: pd.DataFrame) -> None:
    with pytest.raises(MmrmSpecError, match="needs method='reml'"):
        fit(data, method="ml").with_df_method("kenward-roger")


def test_type3_with_a_covariate_undefined_at_zero_is_refused(data: pd.DataFrame) -> None:
    result = fit(data, "y ~ np.log(base) + arm * visit")
    assert result.lsmeans("arm")["estimate"].notna().all()  # LS means use the covariate mean
    with pytest.raises(MmrmInferenceError, match=r"covariates \['base'\] to 0"):
        result.type3()
