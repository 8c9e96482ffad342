"""The scenario schema: frozen pydantic models, their validation, overrides and cohorts.

Reading files (YAML, ``extends``, parameter files) and building one scenario from
another is :mod:`simulator.model.files`. Every error is raised as
:class:`ConfigError` with one line naming the file and the key path, e.g.
``configs/x.yaml: regimen.max_cycles: input should be less than or equal to 12, got 0``.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulator.model.kernel import (
    COMPARATOR_PARAMETER_NAMES,
    MAX_CYCLES,
    MAX_DOSES_PER_CYCLE,
    PARAMETER_NAMES,
    TREATMENTS,
)
from simulator.model.structure import ModelStructure

Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Rate = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
Dose = Annotated[float, Field(ge=0.0, le=10.0)]
CycleCount = Annotated[int, Field(ge=1, le=MAX_CYCLES)]


class ConfigError(ValueError):
    """A configuration problem, as one line: ``file: key.path: what is wrong``."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ----------------------------------------------------------------------------- population
class AgeDistribution(_Model):
    """Age in years: a beta distribution stretched over [min, max]."""

    min: Annotated[float, Field(ge=18.0, le=100.0)] = 18.0
    max: Annotated[float, Field(ge=18.0, le=100.0)] = 79.0
    beta_a: Positive = 1.0
    beta_b: Positive = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> AgeDistribution:
        if self.max <= self.min:
            raise ValueError(f"max ({self.max}) must exceed min ({self.min})")
        return self


class MarrowBlasts(_Model):
    """Shares of patients by marrow blast percentage (must sum to 1)."""

    below_50: Prob
    from_50_to_90: Prob
    above_90: Prob

    @model_validator(mode="after")
    def _sums_to_one(self) -> MarrowBlasts:
        total = self.below_50 + self.from_50_to_90 + self.above_90
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"shares must sum to 1, got {total:g}")
        return self


class TransplantEligibility(_Model):
    """Latent transplant eligibility (donor available and fit), logistic in age."""

    at_age_40: Prob = Field(description="probability of eligibility at age 40")
    odds_ratio_per_decade: Positive = Field(description="odds ratio per 10 years of age")


class Population(_Model):
    """Covariate distribution of the virtual patients (shares are probabilities)."""

    age: AgeDistribution = AgeDistribution()
    salvage2: Prob = Field(description="share in second salvage")
    prior_hsct: Prob = Field(description="share with a prior allogeneic HSCT")
    ph_positive: Prob = Field(description="share Philadelphia-chromosome positive")
    marrow_blasts: MarrowBlasts
    bilirubin_high: Prob = Field(description="share with baseline bilirubin >= ULN")
    transplant_eligibility: TransplantEligibility


# ----------------------------------------------------------------------------- regimen
DoseList = Annotated[list[Dose], Field(min_length=1, max_length=MAX_DOSES_PER_CYCLE)]
DayList = Annotated[list[Annotated[int, Field(ge=1, le=42)]],
                    Field(min_length=1, max_length=MAX_DOSES_PER_CYCLE)]


class Regimen(_Model):
    """A dosing strategy. Doses in mg/m2, days are days of the cycle (day 1 first)."""

    cycle1_doses: DoseList = [0.8, 0.5, 0.5]
    cycle1_days: DayList = [1, 8, 15]
    cycle1_length_days: Annotated[float, Field(ge=7.0, le=42.0)] = 21.0
    later_doses_in_cr: DoseList = [0.5, 0.5, 0.5]
    later_doses_not_in_cr: DoseList = [0.8, 0.5, 0.5]
    later_days: DayList = [1, 8, 15]
    later_length_days: Annotated[float, Field(ge=7.0, le=42.0)] = 28.0
    max_cycles: CycleCount = 6
    cumulative_cap: Annotated[float, Field(ge=0.0)] | None = None
    stop_if_no_response_after: CycleCount = 3
    hsct_cycles: CycleCount = Field(2, description="cycles before a planned HSCT")
    hsct_extra_cycle_if_mrd_positive: bool = True
    dose_reduction: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.25
    dual_alkylator_conditioning: Prob = 0.5
    cycle1_extension_in_cr_days: Annotated[float, Field(ge=0.0, le=21.0)] = Field(
        7.0, description="cycle 1 may extend (uniformly up to this many days) until CR/CRi is documented")

    @model_validator(mode="after")
    def _schedules(self) -> Regimen:
        for doses, days, length, name in (
            (self.cycle1_doses, self.cycle1_days, self.cycle1_length_days, "cycle1"),
            (self.later_doses_in_cr, self.later_days, self.later_length_days, "later_in_cr"),
            (self.later_doses_not_in_cr, self.later_days, self.later_length_days, "later_not_in_cr"),
        ):
            if len(doses) != len(days):
                raise ValueError(f"{name}: {len(doses)} doses but {len(days)} days")
            if any(b <= a for a, b in zip(days, days[1:])):
                raise ValueError(f"{name}: days must increase, got {days}")
            if days[-1] > length:
                raise ValueError(f"{name}: dose on day {days[-1]} after the cycle ends ({length:g} days)")
        if sum(self.cycle1_doses) <= 0.0:
            raise ValueError("cycle1_doses: at least one dose must be positive")
        return self


class Cohort(_Model):
    """A part of the population with its own covariates, regimen or follow-up.

    ``population`` and ``regimen`` hold only the keys that differ from the
    scenario's; they are merged onto it and validated as a whole. Follow-up and
    accrual default to the scenario's ``simulation`` values.
    """

    name: str
    weight: Positive = Field(description="relative size (e.g. number of patients)")
    population: dict[str, Any] = {}
    regimen: dict[str, Any] = {}
    follow_up_months: Annotated[float, Field(gt=0.0, le=240.0)] | None = None
    accrual_months: Annotated[float, Field(ge=0.0, le=240.0)] | None = None


# ----------------------------------------------------------------------------- parameters
class Parameters(_Model):
    """Model parameters; rates are per month, effects are log odds or log hazard ratios.

    Dose effects use log(dose in the cycle / 1.8 mg/m2) or the cumulative dose in
    mg/m2; age effects are per decade from 47 years. See
    ``configs/parameters/default.yaml`` for the meaning and source of each value.
    """

    resp_intercept_cycle1: float
    resp_intercept_cycle2: float
    resp_intercept_cycle3plus: float
    resp_dose_slope: float
    resp_sensitivity_sd: Rate
    resp_blasts_over_90: float
    resp_salvage2: float
    resp_ph_positive: float
    mrd_intercept: float
    mrd_dose_slope: float
    progression_rate_refractory: Rate
    progression_blasts_over_90: float
    progression_resistance: float
    death_rate_after_progression: Rate
    death_after_progression_disease_share: Prob
    death_rate_other: Rate
    relapse_rate_remission: Rate
    relapse_mrd_positive: float
    relapse_on_treatment: float
    g3ae_intercept_cycle1: float
    g3ae_intercept_later: float
    g3ae_dose_slope: float
    sae_intercept_cycle1: float
    sae_intercept_later: float
    sae_not_in_remission: float
    sae_dose_slope: float
    fatal_toxicity_given_sae: Prob
    discontinue_intercept: float
    discontinue_cumulative_slope: float
    dose_omission_prob: Prob
    dose_reduction_given_g3ae: Prob
    cycle_delay_mean_days: Annotated[float, Field(ge=0.0, le=28.0)]
    sos_intercept_treatment: float
    sos_intercept_post_hsct: float
    sos_cumulative_dose_slope: float
    sos_age_per_decade: float
    sos_prior_hsct: float
    sos_bilirubin_high: float
    sos_salvage2: float
    sos_short_interval: float
    sos_dual_alkylator: float
    sos_severe_prob: Prob
    sos_fatal_prob: Prob
    sos_onset_median_days: Positive
    sos_onset_spread: Rate
    sos_death_mean_days: Positive
    eligibility_log_odds_shift: float
    hsct_proceed_prob: Prob
    hsct_wait_mean_days: Rate
    hsct_late_rate: Rate
    hsct_salvage_prob: Prob
    hsct_salvage_mean_days: Rate
    nrm_rate: Rate
    nrm_shape: Annotated[float, Field(gt=0.05, le=5.0)]
    nrm_age_per_decade: float
    nrm_cumulative_dose_slope: float
    nrm_prior_hsct: float
    nrm_after_sos: float
    relapse_rate_post_hsct: Rate
    relapse_post_hsct_shape: Annotated[float, Field(gt=0.05, le=5.0)]
    relapse_post_hsct_mrd_positive: float
    relapse_post_hsct_not_in_remission: float
    nrm_cycles_slope: float
    nrm_time_to_hsct_slope: float
    nrm_salvage2: float
    nrm_dual_alkylator: float
    hsct_prior_hsct: float
    relapse_shape: Annotated[float, Field(gt=0.2, le=5.0)]  # Weibull shape of relapse in remission

    @model_validator(mode="after")
    def _sos_grades(self) -> Parameters:
        if self.sos_fatal_prob > self.sos_severe_prob:
            raise ValueError("sos_fatal_prob must not exceed sos_severe_prob (fatal SOS is severe)")
        return self


assert tuple(Parameters.model_fields) == PARAMETER_NAMES, "Parameters must follow the kernel layout"


class ComparatorParameters(_Model):
    """The other treatments' own parameters (rates per month, effects log odds or log hazard
    ratios). See ``configs/parameters/comparators.yaml`` for the meaning and source of each value
    and ``docs/comparators.md`` for the mechanism."""

    chemo_course_days: Annotated[float, Field(ge=7.0, le=90.0)]
    chemo_response_intercept: float
    chemo_mrd_intercept: float
    chemo_fatal_toxicity: Prob
    chemo_progression_log_hr: float
    chemo_relapse_log_hr: float
    chemo_hsct_prob: Prob
    blina_response_intercept: float
    blina_blasts_per_10: float
    blina_mrd_intercept: float
    blina_fatal_toxicity: Prob
    blina_progression_log_hr: float
    blina_relapse_log_hr: float
    blina_hsct_prob: Prob
    blina_crs_prob: Prob
    blina_crs_severe_share: Prob
    blina_neurologic_prob: Prob
    cart_manufacturing_failure: Prob
    cart_vein_to_vein_days: Annotated[float, Field(ge=0.0, le=180.0)]
    cart_dropout: Prob
    cart_dropout_after_progression: Prob
    cart_response_intercept: float
    cart_response_days: Annotated[float, Field(ge=0.0, le=180.0)]
    cart_mrd_intercept: float
    cart_fatal_toxicity: Prob
    cart_durable_prob: Prob
    cart_relapse_log_hr: float
    cart_hsct_prob: Prob
    cart_crs_prob: Prob
    cart_crs_severe_share: Prob
    cart_neurologic_prob: Prob
    next_response_after_inotuzumab: float
    next_response_after_soc_chemotherapy: float
    next_response_after_blinatumomab: float
    next_response_after_brexucabtagene: float

    def vector(self) -> np.ndarray:
        """The values in the kernel's ``COMPARATOR_PARAMETER_NAMES`` order."""
        return np.array([getattr(self, name) for name in COMPARATOR_PARAMETER_NAMES], dtype=float)


assert tuple(ComparatorParameters.model_fields) == COMPARATOR_PARAMETER_NAMES, \
    "ComparatorParameters must follow the kernel layout"
TreatmentName = Literal[TREATMENTS]


# ----------------------------------------------------------------------------- scenario
class Simulation(_Model):
    """Run size and follow-up."""

    patients: Annotated[int, Field(ge=1, le=100_000_000)] = 100_000
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 2025
    follow_up_months: Annotated[float, Field(gt=0.0, le=240.0)] = 24.0
    accrual_months: Annotated[float, Field(ge=0.0, le=240.0)] = 0.0


class Scenario(_Model):
    """A population, a treatment (InO under a dosing strategy, or another), the model
    parameters and the run size."""

    name: str
    description: str = ""
    treatment: TreatmentName = "inotuzumab"
    then: TreatmentName | None = Field(None, description="the next treatment at relapse or refractoriness")
    population: Population
    regimen: Regimen = Regimen()
    cohorts: list[Cohort] = []
    parameters: Parameters
    comparators: ComparatorParameters
    model: ModelStructure = ModelStructure()
    simulation: Simulation = Simulation()

    @model_validator(mode="after")
    def _structure(self) -> Scenario:
        for name in sorted(self.model.unused):
            if getattr(self.parameters, name) != 0.0:
                raise ValueError(f"parameters.{name}: must be 0 under model structure {self.model.id} "
                                 f"(it does not use it), got {getattr(self.parameters, name)}")
        return self

    @model_validator(mode="after")
    def _cohorts_resolve(self) -> Scenario:
        names = [c.name for c in self.cohorts]
        if len(set(names)) != len(names):
            raise ValueError(f"cohorts: names must be unique, got {names}")
        resolve_cohorts(self)  # raises ValueError naming cohorts.<i>.<section>.<key>
        return self


class ResolvedCohort(BaseModel):
    """A cohort with its full population, regimen and follow-up (the scenario's, overridden)."""

    model_config = ConfigDict(frozen=True)
    name: str
    weight: float
    population: Population
    regimen: Regimen
    follow_up_months: float
    accrual_months: float


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` with ``override`` merged in, recursively for nested dicts."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_cohorts(scenario: Scenario) -> list[ResolvedCohort]:
    """The scenario's cohorts with overrides applied (one cohort if none are given)."""
    sim = scenario.simulation
    if not scenario.cohorts:
        return [ResolvedCohort(name="all", weight=1.0, population=scenario.population,
                               regimen=scenario.regimen, follow_up_months=sim.follow_up_months,
                               accrual_months=sim.accrual_months)]
    base_pop = scenario.population.model_dump()
    base_reg = scenario.regimen.model_dump()
    out = []
    for i, cohort in enumerate(scenario.cohorts):
        parts = {}
        for section, model, base, override in (
            ("population", Population, base_pop, cohort.population),
            ("regimen", Regimen, base_reg, cohort.regimen),
        ):
            try:
                parts[section] = model.model_validate(deep_merge(base, override))
            except ValidationError as exc:
                raise ValueError(f"cohorts.{i}.{section}.{_first_error(exc)}") from None
        out.append(ResolvedCohort(
            name=cohort.name, weight=cohort.weight, **parts,
            follow_up_months=(sim.follow_up_months if cohort.follow_up_months is None
                              else cohort.follow_up_months),
            accrual_months=sim.accrual_months if cohort.accrual_months is None else cohort.accrual_months))
    return out


# ----------------------------------------------------------------------------- validation
def _first_error(exc: ValidationError) -> str:
    """``key.path: message, got value`` for the first error of a validation."""
    err = exc.errors(include_url=False)[0]
    path = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key missing"
    elif err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
        # a model validator reporting a nested path (cohorts) already carries it
        if not path:
            return msg
    else:
        msg = msg[0].lower() + msg[1:]
        if "input" in err and not isinstance(err["input"], dict):
            msg += f", got {err['input']!r}"
    return f"{path}: {msg}" if path else msg


def validate(model: type[BaseModel], doc: dict, source: str | Path) -> Any:
    """Validate ``doc`` as ``model``; raise :class:`ConfigError` naming ``source``."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from None


def default_config_dir() -> Path:
    """The shipped ``configs/`` directory."""
    return Path(str(resources.files("simulator.configs")))
