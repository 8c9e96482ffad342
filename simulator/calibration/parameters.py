"""The fitted parameters: which ones, on which scale, with which prior, under each model structure."""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.model.structure import STRUCTURE_PARAMETERS, ModelStructure


# ----------------------------------------------------------------------------- fitted parameters
@dataclass(frozen=True)
class FitParameter:
    """A fitted parameter: its transform to an unbounded scale and its prior SD there."""

    name: str
    transform: str  # "id", "log" or "logit"
    prior_sd: float

    def to_free(self, x: float) -> float:
        if self.transform == "log":
            return math.log(x)
        if self.transform == "logit":
            return math.log(x / (1.0 - x))
        return x

    def from_free(self, z: float) -> float:
        if self.transform == "log":
            return math.exp(z)
        if self.transform == "logit":
            return 1.0 / (1.0 + math.exp(-z))
        return z


FIT_PARAMETERS = (
    FitParameter("resp_intercept_cycle1", "id", 1.5),
    FitParameter("resp_intercept_cycle2", "id", 1.5),
    FitParameter("resp_intercept_cycle3plus", "id", 1.5),
    FitParameter("resp_dose_slope", "id", 1.0),
    FitParameter("resp_sensitivity_sd", "log", 0.7),
    FitParameter("mrd_intercept", "id", 1.0),
    FitParameter("progression_rate_refractory", "log", 1.0),
    FitParameter("progression_resistance", "id", 1.0),
    FitParameter("death_rate_after_progression", "log", 0.7),
    FitParameter("death_after_progression_disease_share", "logit", 1.0),
    FitParameter("relapse_rate_remission", "log", 0.7),
    FitParameter("relapse_on_treatment", "id", 1.0),
    FitParameter("relapse_shape", "log", 0.5),
    FitParameter("g3ae_intercept_cycle1", "id", 1.0),
    FitParameter("g3ae_intercept_later", "id", 1.0),
    FitParameter("sae_intercept_cycle1", "id", 1.0),
    FitParameter("sae_intercept_later", "id", 1.0),
    FitParameter("sae_not_in_remission", "id", 1.0),
    FitParameter("discontinue_intercept", "id", 1.0),
    FitParameter("discontinue_cumulative_slope", "id", 0.5),
    FitParameter("cycle_delay_mean_days", "log", 0.7),
    FitParameter("sos_intercept_treatment", "id", 1.0),
    FitParameter("sos_intercept_post_hsct", "id", 1.0),
    FitParameter("sos_cumulative_dose_slope", "id", 0.5),
    FitParameter("sos_age_per_decade", "id", 0.5),
    FitParameter("sos_prior_hsct", "id", 0.7),
    FitParameter("sos_salvage2", "id", 0.7),
    FitParameter("sos_severe_prob", "logit", 1.0),
    FitParameter("eligibility_log_odds_shift", "id", 1.0),
    FitParameter("hsct_proceed_prob", "logit", 1.0),
    FitParameter("hsct_late_rate", "log", 1.0),
    FitParameter("hsct_salvage_prob", "logit", 1.0),
    FitParameter("nrm_rate", "log", 0.7),
    FitParameter("nrm_shape", "log", 0.5),
    FitParameter("nrm_cumulative_dose_slope", "id", 0.5),
    FitParameter("relapse_rate_post_hsct", "log", 0.7),
    FitParameter("relapse_post_hsct_shape", "log", 0.5),
)
# the model-structure parameters (simulator.model.structure): fitted only under a structure that uses them
STRUCTURE_FIT_PARAMETERS = {
    "nrm_cycles_slope": FitParameter("nrm_cycles_slope", "id", 0.75),  # 0.5 per mg/m2 x 1.5 mg/m2 per cycle
    "nrm_time_to_hsct_slope": FitParameter("nrm_time_to_hsct_slope", "id", 0.8),  # a cycle lasts ~0.9 month
    "nrm_salvage2": FitParameter("nrm_salvage2", "id", 0.5),
    "nrm_dual_alkylator": FitParameter("nrm_dual_alkylator", "id", 0.5),
    "hsct_prior_hsct": FitParameter("hsct_prior_hsct", "id", 0.7),
    **{p.name: p for p in FIT_PARAMETERS if p.name in STRUCTURE_PARAMETERS},
}


DEFAULT_STRUCTURE = ModelStructure()


def fit_parameters(structure: ModelStructure = DEFAULT_STRUCTURE) -> tuple[FitParameter, ...]:
    """The parameters fitted under a model structure: the shared ones and the structure's own."""
    shared = tuple(p for p in FIT_PARAMETERS if p.name not in STRUCTURE_PARAMETERS)
    return shared + tuple(STRUCTURE_FIT_PARAMETERS[n] for n in sorted(structure.used))


FIT_NAMES = tuple(p.name for p in FIT_PARAMETERS)
FREE_BOUND = 6.0  # fitted values stay within +-6 (free scale) of their starting values
FD_STEP = 0.05  # finite-difference step, in prior SDs
