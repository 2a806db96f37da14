"""The statistical analysis plan as data: ``studies/<id>/analysis_plan.yaml``.

The study file (``docs/study_files.md``) names each endpoint and describes its analysis in free
text; it has no place for models, covariates, populations or sensitivity analyses. The plan file
beside it declares them, one :class:`Analysis` per estimate, and is validated here (pydantic,
unknown keys refused). Its SHA-256 (of the canonical JSON of its content) is recorded with every
run. See ``docs/analysis_datasets.md`` ("The analysis plan file").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML, YAMLError

from trialdesk.lib.hashing import canonical_json, sha256_hex

PLAN_FILE = "analysis_plan.yaml"

Method = Literal[
    "ancova",
    "rerandomization",
    "hodges_lehmann",
    "bayes_posterior",
    "mmrm",
    "rate_model",
    "tipping_point",
    "jump_to_reference",
]
Population = Literal["ITT", "PP", "SAF"]


class PlanError(ValueError):
    """An analysis plan file that cannot be read or is invalid; names the file and the key."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MajorDeviation(_Frozen):
    """A protocol deviation that excludes from the per-protocol population."""

    kind: str
    visits: list[str] = Field(default_factory=list, description="Empty: at any visit.")


class PerProtocolRule(_Frozen):
    """What the per-protocol population requires beyond randomization."""

    min_dosing_visits: int = Field(ge=0)
    required_dataset: str
    required_param: str
    required_visit: str
    major_deviations: list[MajorDeviation] = Field(default_factory=list)


class Prior(_Frozen):
    """Normal prior of the effect; ``sd: null`` is the flat prior."""

    mean: float = 0.0
    sd: float | None = Field(default=None, gt=0)


class Analysis(_Frozen):
    """One declared analysis: what data, which population, which model, which method."""

    id: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    label: str
    endpoint: str | None = None
    kind: Literal["primary", "secondary", "sensitivity", "exploratory"]
    dataset: str
    param: str
    population: Population = "ITT"
    visits: list[str] = Field(min_length=1)
    response: Literal["AVAL", "CHG"] = "CHG"
    covariates: list[str] = Field(default_factory=list)
    method: Method
    covariance: str = "us"
    df_method: str = "kenward-roger"
    family: Literal["poisson", "negative-binomial"] = "poisson"
    exposure: str | None = None
    threshold: float | None = None
    prior: Prior = Field(default_factory=Prior)
    deltas: list[float] = Field(default_factory=list)
    imputations: int | None = Field(default=None, ge=2, le=100_000)
    pooling_df: Literal["barnard-rubin", "rubin"] = "barnard-rubin"
    alpha: float = Field(default=0.05, gt=0, lt=1)

    @model_validator(mode="after")
    def _method_needs(self) -> Analysis:
        if self.method == "rate_model" and not self.exposure:
            raise ValueError(f"{self.id}: method rate_model needs exposure")
        if self.method == "bayes_posterior" and self.threshold is None:
            raise ValueError(f"{self.id}: method bayes_posterior needs threshold")
        if self.method == "tipping_point" and not self.deltas:
            raise ValueError(f"{self.id}: method tipping_point needs deltas")
        if self.method == "jump_to_reference" and self.imputations is None:
            raise ValueError(f"{self.id}: method jump_to_reference needs imputations")
        if self.method != "mmrm" and len(self.visits) != 1:
            raise ValueError(f"{self.id}: method {self.method} analyses one visit")
        return self


class AnalysisPlanFile(_Frozen):
    """The whole plan of a study."""

    study: str
    version: str
    control_arm: str
    per_protocol: PerProtocolRule
    #: Adverse events starting up to this many days after the last dose are treatment-emergent.
    treatment_emergent_days: int = Field(default=98, ge=0, le=3650)
    analyses: list[Analysis] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> AnalysisPlanFile:
        seen: set[str] = set()
        for analysis in self.analyses:
            if analysis.id in seen:
                raise ValueError(f"analysis id {analysis.id!r} is declared twice")
            seen.add(analysis.id)
        return self

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of the plan's content."""
        return sha256_hex(canonical_json(self.model_dump(mode="json")))

    def analysis(self, analysis_id: str) -> Analysis:
        for analysis in self.analyses:
            if analysis.id == analysis_id:
                return analysis
        raise PlanError("analyses", f"no analysis {analysis_id!r}")


def load_plan(path: Path | str) -> AnalysisPlanFile:
    """Read and validate a plan file, or ``analysis_plan.yaml`` of a study directory.

    Raises
    ------
    PlanError
        The file is missing, is not YAML, or breaks the schema (every problem listed).
    """
    path = Path(path)
    if path.is_dir():
        path = path / PLAN_FILE
    if not path.is_file():
        raise PlanError(str(path), "no analysis plan file")
    try:
        content = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except YAMLError as error:
        raise PlanError(str(path), f"not valid YAML: {error}") from None
    try:
        return AnalysisPlanFile.model_validate(content)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'plan'}: {e['msg']}" for e in error.errors()
        )
        raise PlanError(str(path), problems) from None
