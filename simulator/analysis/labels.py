"""Display names and units: the one table every figure and printed table reads.

Metrics take their names and units from their specs (:data:`simulator.analysis.trial_metrics.TRIAL_METRICS`);
sweep axes (scenario key paths), model parameters and strategy names get theirs here.
Rates are stored as fractions and shown in %; a difference of two rates is shown in
percentage points (``pp``), never in %. Names not in a table are shown humanised
(``hsct_wait_mean_days`` -> ``Hsct wait mean days``), so a new key still reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.analysis.trial_metrics import TRIAL_METRICS

PERCENT = "%"
POINTS = "pp"  # percentage points: the unit of a difference of two rates
FRACTION_UNITS = ("%", "1")  # a metric's unit in its spec ("%") and in files ("1")
UNIT_DISPLAY = {"mg/m2": "mg/m²", "1": PERCENT}
NO_LIMIT = "none"  # how a null (no cap, no limit) value of an axis is labelled


@dataclass(frozen=True)
class Label:
    """A display name and a display unit (empty when the value has none)."""

    name: str
    unit: str = ""

    def text(self) -> str:
        """``Name (unit)``, or the name alone."""
        return f"{self.name} ({self.unit})" if self.unit else self.name


MG = "mg/m²"
DAYS = "days"
LOG_OR, LOG_HR = "log-OR", "log-HR"
PER_MONTH = "per month"

# Scenario key paths that can be sweep axes. A null value reads as NO_LIMIT.
AXES = {
    "strategy": Label("Strategy"),
    "regimen.cumulative_cap": Label("Cumulative dose cap", MG),
    "regimen.max_cycles": Label("Maximum cycles"),
    "regimen.cycle1_doses": Label("Cycle-1 doses", MG),
    "regimen.cycle1_days": Label("Cycle-1 dosing days", "day of cycle"),
    "regimen.cycle1_length_days": Label("Cycle-1 length", DAYS),
    "regimen.later_doses_in_cr": Label("Later-cycle doses in CR/CRi", MG),
    "regimen.later_doses_not_in_cr": Label("Later-cycle doses without CR/CRi", MG),
    "regimen.later_days": Label("Later-cycle dosing days", "day of cycle"),
    "regimen.later_length_days": Label("Later-cycle length", DAYS),
    "regimen.stop_if_no_response_after": Label("Cycles without CR/CRi before stopping"),
    "regimen.hsct_cycles": Label("Cycles before a planned HSCT"),
    "regimen.hsct_extra_cycle_if_mrd_positive": Label("Extra cycle before HSCT if MRD-positive"),
    "regimen.dose_reduction": Label("Dose reduction after grade >=3 AE", "fraction"),
    "regimen.dual_alkylator_conditioning": Label("Dual-alkylator conditioning", "share"),
    "regimen.cycle1_extension_in_cr_days": Label("Cycle-1 extension in CR/CRi", DAYS),
    "simulation.follow_up_months": Label("Follow-up", "months"),
    "simulation.accrual_months": Label("Accrual", "months"),
    "population.salvage2": Label("Second salvage", "share"),
    "population.prior_hsct": Label("Prior allogeneic HSCT", "share"),
    "population.ph_positive": Label("Ph-positive", "share"),
    "population.bilirubin_high": Label("Bilirubin above ULN", "share"),
}

# Model parameters (configs/parameters/default.yaml says what each means and where it comes from).
PARAMETERS = {
    "resp_intercept_cycle1": Label("CR/CRi in cycle 1 at 1.8 mg/m²", "log-odds"),
    "resp_intercept_cycle2": Label("CR/CRi in cycle 2, not yet responding", "log-odds"),
    "resp_intercept_cycle3plus": Label("CR/CRi in cycle 3 or later", "log-odds"),
    "resp_dose_slope": Label("Response per log cycle dose", LOG_OR),
    "resp_sensitivity_sd": Label("Spread of latent chemosensitivity", "SD, log-odds"),
    "resp_blasts_over_90": Label("Response, marrow blasts > 90%", LOG_OR),
    "resp_salvage2": Label("Response, second salvage", LOG_OR),
    "resp_ph_positive": Label("Response, Ph-positive", LOG_OR),
    "mrd_intercept": Label("MRD negativity at CR/CRi", "log-odds"),
    "mrd_dose_slope": Label("MRD negativity per log cycle dose", LOG_OR),
    "progression_rate_refractory": Label("Progression rate, not in CR/CRi", PER_MONTH),
    "progression_blasts_over_90": Label("Progression, marrow blasts > 90%", LOG_HR),
    "progression_resistance": Label("Progression per SD of resistance", LOG_HR),
    "death_rate_after_progression": Label("Death rate after progression", PER_MONTH),
    "death_after_progression_disease_share": Label("Deaths after progression recorded as progression",
                                                   "share"),
    "death_rate_other": Label("Death rate, other causes", PER_MONTH),
    "relapse_rate_remission": Label("Relapse rate in MRD-negative remission (Weibull)", "per month^shape"),
    "relapse_mrd_positive": Label("Relapse, MRD-positive remission", LOG_HR),
    "relapse_on_treatment": Label("Relapse while still on InO", LOG_HR),
    "relapse_shape": Label("Relapse in remission, Weibull shape in time since CR/CRi", ""),
    "g3ae_intercept_cycle1": Label("Grade >=3 AE in cycle 1", "log-odds"),
    "g3ae_intercept_later": Label("Grade >=3 AE in later cycles", "log-odds"),
    "g3ae_dose_slope": Label("Grade >=3 AE per log cycle dose", LOG_OR),
    "sae_intercept_cycle1": Label("Serious AE in cycle 1", "log-odds"),
    "sae_intercept_later": Label("Serious AE in later cycles", "log-odds"),
    "sae_not_in_remission": Label("Serious AE when not in CR/CRi", LOG_OR),
    "sae_dose_slope": Label("Serious AE per log cycle dose", LOG_OR),
    "fatal_toxicity_given_sae": Label("Fatal serious AE", "probability"),
    "discontinue_intercept": Label("Stopping for AE after a grade >=3 AE", "log-odds"),
    "discontinue_cumulative_slope": Label("Stopping for AE per cumulative mg/m²", LOG_OR),
    "dose_omission_prob": Label("Day-8/15 dose omitted", "probability"),
    "dose_reduction_given_g3ae": Label("Dose reduced after a grade >=3 AE", "probability"),
    "cycle_delay_mean_days": Label("Cycle delay after a grade >=3 AE", "mean days"),
    "sos_intercept_treatment": Label("Baseline SOS risk per cycle on treatment", "log-odds"),
    "sos_intercept_post_hsct": Label("Baseline SOS risk after HSCT", "log-odds"),
    "sos_cumulative_dose_slope": Label("SOS per cumulative mg/m²", LOG_OR),
    "sos_age_per_decade": Label("SOS per decade of age", LOG_OR),
    "sos_prior_hsct": Label("SOS, prior HSCT", LOG_OR),
    "sos_bilirubin_high": Label("SOS, bilirubin above ULN", LOG_OR),
    "sos_salvage2": Label("SOS, second salvage", LOG_OR),
    "sos_short_interval": Label("SOS, short last-dose-to-HSCT interval", LOG_OR),
    "sos_dual_alkylator": Label("SOS, dual-alkylator conditioning", LOG_OR),
    "sos_severe_prob": Label("Grade >=3 given SOS", "probability"),
    "sos_fatal_prob": Label("Fatal given SOS", "probability"),
    "sos_onset_median_days": Label("SOS onset after HSCT", "median days"),
    "sos_onset_spread": Label("Spread of SOS onset", "log-logistic scale"),
    "sos_death_mean_days": Label("Onset to death, fatal SOS", "mean days"),
    "eligibility_log_odds_shift": Label("Transplant eligibility shift", "log-odds"),
    "hsct_proceed_prob": Label("Eligible responder proceeds to HSCT", "probability"),
    "hsct_wait_mean_days": Label("Wait from last cycle to HSCT", "mean days"),
    "hsct_late_rate": Label("Late HSCT rate after InO", PER_MONTH),
    "hsct_salvage_prob": Label("HSCT after further therapy", "probability"),
    "hsct_salvage_mean_days": Label("Progression to salvage HSCT", "mean days"),
    "nrm_rate": Label("Post-HSCT NRM, Weibull rate", "per month^shape"),
    "nrm_shape": Label("Post-HSCT NRM, Weibull shape", ""),
    "nrm_age_per_decade": Label("Post-HSCT NRM per decade of age", LOG_HR),
    "nrm_cumulative_dose_slope": Label("Post-HSCT NRM per mg/m² above 3.3", LOG_HR),
    "nrm_prior_hsct": Label("Post-HSCT NRM, second transplant", LOG_HR),
    "nrm_after_sos": Label("Post-HSCT NRM after non-fatal SOS", LOG_HR),
    "relapse_rate_post_hsct": Label("Post-HSCT relapse, Weibull rate", "per month^shape"),
    "relapse_post_hsct_shape": Label("Post-HSCT relapse, Weibull shape", ""),
    "relapse_post_hsct_mrd_positive": Label("Post-HSCT relapse, MRD-positive", LOG_HR),
    "relapse_post_hsct_not_in_remission": Label("Post-HSCT relapse, not in remission", LOG_HR),
    "nrm_cycles_slope": Label("Post-HSCT NRM per InO cycle above 2", LOG_HR),
    "nrm_time_to_hsct_slope": Label("Post-HSCT NRM per month from first dose to HSCT above 3", LOG_HR),
    "nrm_salvage2": Label("Post-HSCT NRM, second salvage", LOG_HR),
    "nrm_dual_alkylator": Label("Post-HSCT NRM, dual-alkylator conditioning", LOG_HR),
    "hsct_prior_hsct": Label("Transplant eligibility after a prior HSCT", "log-OR"),
}

# Strategy names: the shipped scenarios' and those of the shipped experiment files.
STRATEGIES = {
    "label_dosing": "Label dosing",
    "pooled_analysis": "Pooled-analysis cohorts, label dosing",
    "two_cycles_then_stop": "Two cycles, then stop",
    "two_cycles": "Two cycles, then stop",
    "cap_3p3": "Cumulative cap 3.3 mg/m²",
    "low_start_1p2": "Cycle 1 at 1.2 mg/m²",
    "base": "Base scenario",
    "soc_inovate": "Standard chemotherapy (INO-VATE control)",
    "blinatumomab_tower": "Blinatumomab (TOWER)",
    "brexucabtagene_zuma3": "Brexucabtagene autoleucel (ZUMA-3)",
    "ino_then_car_t": "InO, then CAR-T at relapse",
}


NRM_DRIVER_TITLES = {
    "cumulative_dose": "NRM ~ cumulative dose",
    "cycles_before_hsct": "NRM ~ cycles before HSCT",
    "time_to_hsct": "NRM ~ time to HSCT",
    "pretransplant_state": "NRM ~ pre-HSCT state only",
}


def structure_title(structure_id: str) -> str:
    """A model structure by its mechanisms, e.g. ``NRM ~ cumulative dose; InO holds CR``.

    Parameters
    ----------
    structure_id : str
        ``<nrm driver>-<relapse on treatment>-<prior HSCT transplant>``
        (see :class:`simulator.model.structure.ModelStructure`): what post-HSCT NRM rises
        with; whether continued InO holds remissions (lowers the relapse hazard); whether
        a prior HSCT makes a second one less likely.
    """
    driver, relapse, prior = structure_id.split("-")
    parts = [NRM_DRIVER_TITLES[driver]]
    if relapse == "effect":
        parts.append("InO holds CR")
    if prior == "lowers":
        parts.append("fewer 2nd HSCT")
    return "; ".join(parts)


def humanise(name: str) -> str:
    """``hsct_wait_mean_days`` -> ``Hsct wait mean days``: the fallback for names not in a table."""
    text = name.rsplit(".", 1)[-1].replace("_", " ")
    return text[:1].upper() + text[1:]


def axis_label(key: str) -> Label:
    """Display name and unit of a sweep axis, by scenario key path (or ``strategy``)."""
    if key.startswith("parameters."):
        return parameter_label(key.split(".", 1)[1])
    return AXES.get(key, Label(humanise(key)))


def parameter_label(name: str) -> Label:
    """Display name and unit of a model parameter."""
    return PARAMETERS.get(name, Label(humanise(name)))


def strategy_title(name: str) -> str:
    """A readable title for a strategy or scenario name."""
    return STRATEGIES.get(name, humanise(name))


def display_unit(unit: str, difference: bool = False) -> str:
    """The unit shown for a metric's values (``difference``: of a paired difference)."""
    if unit in FRACTION_UNITS:
        return POINTS if difference else PERCENT
    return UNIT_DISPLAY.get(unit, unit)


def scale(unit: str) -> float:
    """Factor from stored values to shown ones: fractions are shown in % (or pp)."""
    return 100.0 if unit in FRACTION_UNITS else 1.0


def format_value(value: float, unit: str) -> str:
    """A metric value as shown: rates in % with one decimal, others with two; NaN as ``NA``."""
    if value != value:
        return "NA"
    return f"{100 * value:.1f}" if unit in FRACTION_UNITS else f"{value:.2f}"


def format_interval(estimate: float, lower: float, upper: float, unit: str) -> str:
    """``estimate (lower, upper)`` as shown by :func:`format_value`."""
    return f"{format_value(estimate, unit)} ({format_value(lower, unit)}, {format_value(upper, unit)})"


def metric_label(metric_id: str, difference: bool = False) -> Label:
    """Display name (capitalised, from the metric's spec) and unit of a metric or of its difference."""
    spec = next(m for m in TRIAL_METRICS if m.id == metric_id)
    return Label(spec.label[:1].upper() + spec.label[1:], display_unit(spec.unit, difference))
