"""Numba kernels: one virtual patient per loop iteration, no I/O, no Python objects.

Everything here takes and returns plain numbers and arrays. The friendly API
(:mod:`simulator.model.simulation`) converts validated configuration into the arrays
described below, once, and wraps the per-patient records into an
:class:`xarray.Dataset`.

Time runs in days from the first dose (day 1 of cycle 1 is time 0). Rates in the
parameter vector are per month (``MONTH`` days).

Random numbers come from a counter-based generator: every draw is a hash of
(seed, patient id, stream id), so a patient's draws do not depend on thread
count, chunking, or on what other patients did, and the same patient draws the
same numbers under every dosing strategy (common random numbers).

A patient is a sequence of phases (:func:`simulate_patient`), each a small jitted
function whose docstring gives the equations it computes; state passes between them
in named tuples, which numba keeps in registers:

1. :func:`covariates` -> :class:`Patient`: covariates, linear predictors and the
   natural-history clocks (refractory progression, death from other causes);
2. the treatment -> :class:`Course`, chosen by the cohort's ``REG_TREATMENT`` code. For InO,
   :func:`ino_induction` runs one :func:`ino_cycle` after another: doses, adverse events,
   response and MRD (:func:`response_and_mrd`), the transplant-bound rule
   (:func:`transplant_bound`); standard chemotherapy is :func:`chemo_induction`;
3. :func:`after_treatment` -> :class:`Outcome`: transplant in remission
   (:func:`transplant_in_remission`), relapse on the relapse clock, progression, and
   further therapy, salvage transplant and death after them (:func:`after_progression`);
4. :func:`after_transplant`: SOS, non-relapse mortality and relapse after HSCT;
5. :func:`write_record`: administrative censoring and the record.

A sequence (the cohort's ``REG_THEN``) replaces the further therapy after the first
progression or relapse with :func:`next_line`: the next treatment's course and the phases
after it, for the same patient on a clock restarted there, with draws from a key derived
from the patient's.

The :class:`Course` is the whole interface between a treatment and what follows it:
the day it ended, its :class:`Exposure` (InO dose and cycles, which post-transplant SOS
and NRM depend on), the :class:`Remission` with its relapse clock (threshold and hazard
accrued), its :class:`Harms`, and any death, progression or transplant it decided. A
treatment module (standard chemotherapy, blinatumomab, CAR-T) is therefore one more
phase, not a copy: a jitted function that returns a :class:`Course` (zero InO exposure if
it gives none), called by :func:`simulate_patient` in place of :func:`ino_induction`
between the same :func:`covariates`, :func:`after_treatment`, :func:`after_transplant` and
:func:`write_record`; its parameters are the comparator vector ``tpar``
(``COMPARATOR_PARAMETER_NAMES``) and its own draws come from its own stream block
(``CHEMO_STREAM_BASE``), so the InO path's draws are untouched. Its patients keep their
covariates and natural-history clocks (patient-level streams), so treatments compare on
common random numbers; the events that follow every treatment (relapse threshold,
transplant wait, the post-transplant course) share their patient-level streams too.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit, prange

MONTH = 30.4375  # days per month
REFERENCE_CYCLE_DOSE = 1.8  # mg/m2: dose effects are log(cycle dose / 1.8)
REFERENCE_AGE = 47.0  # years: age effects are per decade from 47
DOSE_EPS = 1e-9  # mg/m2: tolerance when comparing a dose with the cap
NRM_REFERENCE_DOSE = 3.3  # mg/m2: the NRM dose effect is per mg/m2 from 3.3
NRM_REFERENCE_CYCLES = 2  # InO cycles: the NRM cycles effect is per cycle before HSCT from 2
NRM_REFERENCE_MONTHS = 3.0  # months: the NRM time effect is per month from first dose to HSCT from 3

# --- parameter vector layout: names in this order, see configs/parameters/default.yaml
PARAMETER_NAMES = (
    "resp_intercept_cycle1",
    "resp_intercept_cycle2",
    "resp_intercept_cycle3plus",
    "resp_dose_slope",
    "resp_sensitivity_sd",
    "resp_blasts_over_90",
    "resp_salvage2",
    "resp_ph_positive",
    "mrd_intercept",
    "mrd_dose_slope",
    "progression_rate_refractory",
    "progression_blasts_over_90",
    "progression_resistance",
    "death_rate_after_progression",
    "death_after_progression_disease_share",
    "death_rate_other",
    "relapse_rate_remission",
    "relapse_mrd_positive",
    "relapse_on_treatment",
    "g3ae_intercept_cycle1",
    "g3ae_intercept_later",
    "g3ae_dose_slope",
    "sae_intercept_cycle1",
    "sae_intercept_later",
    "sae_not_in_remission",
    "sae_dose_slope",
    "fatal_toxicity_given_sae",
    "discontinue_intercept",
    "discontinue_cumulative_slope",
    "dose_omission_prob",
    "dose_reduction_given_g3ae",
    "cycle_delay_mean_days",
    "sos_intercept_treatment",
    "sos_intercept_post_hsct",
    "sos_cumulative_dose_slope",
    "sos_age_per_decade",
    "sos_prior_hsct",
    "sos_bilirubin_high",
    "sos_salvage2",
    "sos_short_interval",
    "sos_dual_alkylator",
    "sos_severe_prob",
    "sos_fatal_prob",
    "sos_onset_median_days",
    "sos_onset_spread",
    "sos_death_mean_days",
    "eligibility_log_odds_shift",
    "hsct_proceed_prob",
    "hsct_wait_mean_days",
    "hsct_late_rate",
    "hsct_salvage_prob",
    "hsct_salvage_mean_days",
    "nrm_rate",
    "nrm_shape",
    "nrm_age_per_decade",
    "nrm_cumulative_dose_slope",
    "nrm_prior_hsct",
    "nrm_after_sos",
    "relapse_rate_post_hsct",
    "relapse_post_hsct_shape",
    "relapse_post_hsct_mrd_positive",
    "relapse_post_hsct_not_in_remission",
    # model-structure parameters (see simulator.model.structure): zero unless the structure uses them
    "nrm_cycles_slope",
    "nrm_time_to_hsct_slope",
    "nrm_salvage2",
    "nrm_dual_alkylator",
    "hsct_prior_hsct",
    # durability of remission (docs/evidence.md)
    "relapse_shape",
)
(
    P_RESP_C1, P_RESP_C2, P_RESP_C3, P_RESP_DOSE, P_RESP_SD, P_RESP_BLASTS, P_RESP_SALV,
    P_RESP_PH, P_MRD_INT, P_MRD_DOSE, P_PD_RATE, P_PD_BLASTS, P_PD_RESIST, P_DEATH_PROG,
    P_DEATH_PROG_SHARE,
    P_DEATH_OTHER,
    P_REL_RATE, P_REL_MRDPOS, P_REL_ON, P_G3_C1, P_G3_LATER, P_G3_DOSE, P_SAE_C1, P_SAE_LATER, P_SAE_NOCR,
    P_SAE_DOSE, P_FATAL_TOX, P_DISC_INT, P_DISC_CUM, P_OMIT, P_REDUCE, P_DELAY,
    P_SOS_TX, P_SOS_POST, P_SOS_DOSE, P_SOS_AGE, P_SOS_PRIOR, P_SOS_BILI, P_SOS_SALV,
    P_SOS_GAP, P_SOS_DUAL, P_SOS_SEVERE, P_SOS_FATAL, P_SOS_ONSET, P_SOS_SPREAD,
    P_SOS_DEATH, P_ELIG_SHIFT, P_HSCT_GO, P_HSCT_WAIT, P_HSCT_LATE, P_HSCT_SALV, P_HSCT_SALV_DAYS,
    P_NRM_RATE, P_NRM_SHAPE, P_NRM_AGE, P_NRM_DOSE, P_NRM_PRIOR, P_NRM_SOS,
    P_RELH_RATE, P_RELH_SHAPE, P_RELH_MRDPOS, P_RELH_NOCR,
    P_NRM_CYCLES, P_NRM_TIME, P_NRM_SALV, P_NRM_DUAL, P_HSCT_PRIOR, P_REL_SHAPE,
) = range(len(PARAMETER_NAMES))

# --- population row layout (one row per cohort); the age quantile table is separate
(
    POP_WEIGHT_CUM, POP_SALVAGE2, POP_PRIOR_HSCT, POP_PH, POP_BLASTS_LT50, POP_BLASTS_50_90,
    POP_BILI, POP_ELIG_LOGIT40, POP_ELIG_SLOPE,
) = range(9)
N_POP = 9

# --- regimen row layout (one row per cohort); dose tables are separate arrays
(
    REG_LEN_C1, REG_LEN_LATER, REG_MAX_CYCLES, REG_CAP, REG_HSCT_CYCLES, REG_HSCT_EXTRA_MRD,
    REG_STOP_AFTER, REG_REDUCTION, REG_DUAL_ALKYLATOR, REG_C1_EXTENSION, REG_TREATMENT, REG_THEN,
) = range(12)
N_REG = 12
NO_TREATMENT = -1  # REG_THEN without a next treatment
# treatment codes (``REG_TREATMENT``), in the order of TREATMENTS (the scenario's ``treatment`` names)
TREATMENTS = ("inotuzumab", "soc_chemotherapy", "blinatumomab", "brexucabtagene")
TREAT_INO, TREAT_CHEMO, TREAT_BLINA, TREAT_CART = range(4)

# --- comparator parameter vector (``tpar``): the treatment modules' own parameters, in this
# order; see configs/parameters/comparators.yaml for their meaning and source
COMPARATOR_PARAMETER_NAMES = (
    # standard chemotherapy (INO-VATE's control arm)
    "chemo_course_days",
    "chemo_response_intercept",
    "chemo_mrd_intercept",
    "chemo_fatal_toxicity",
    "chemo_progression_log_hr",
    "chemo_relapse_log_hr",
    "chemo_hsct_prob",
    # blinatumomab (TOWER)
    "blina_response_intercept",
    "blina_blasts_per_10",
    "blina_mrd_intercept",
    "blina_fatal_toxicity",
    "blina_progression_log_hr",
    "blina_relapse_log_hr",
    "blina_hsct_prob",
    "blina_crs_prob",
    "blina_crs_severe_share",
    "blina_neurologic_prob",
    # brexucabtagene autoleucel (ZUMA-3)
    "cart_manufacturing_failure",
    "cart_vein_to_vein_days",
    "cart_dropout",
    "cart_dropout_after_progression",
    "cart_response_intercept",
    "cart_response_days",
    "cart_mrd_intercept",
    "cart_fatal_toxicity",
    "cart_durable_prob",
    "cart_relapse_log_hr",
    "cart_hsct_prob",
    "cart_crs_prob",
    "cart_crs_severe_share",
    "cart_neurologic_prob",
    # sequences: the next treatment's response after each prior treatment (log-OR, in TREATMENTS order)
    "next_response_after_inotuzumab",
    "next_response_after_soc_chemotherapy",
    "next_response_after_blinatumomab",
    "next_response_after_brexucabtagene",
)
(
    C_COURSE_DAYS, C_RESP_INT, C_MRD_INT, C_FATAL_TOX, C_PD_LOG_HR, C_REL_LOG_HR, C_HSCT_GO,
    B_RESP_INT, B_BLASTS, B_MRD_INT, B_FATAL_TOX, B_PD_LOG_HR, B_REL_LOG_HR, B_HSCT_GO, B_CRS, B_CRS_SEVERE,
    B_NEURO,
    T_MANUF_FAIL, T_VEIN_TO_VEIN, T_DROPOUT, T_DROPOUT_PD, T_RESP_INT, T_RESP_DAYS, T_MRD_INT, T_FATAL_TOX,
    T_DURABLE, T_REL_LOG_HR, T_HSCT_GO, T_CRS, T_CRS_SEVERE, T_NEURO,
    N_AFTER_FIRST,
) = range(len(COMPARATOR_PARAMETER_NAMES) - 3)  # N_AFTER_FIRST + treatment code: after that treatment
CART_TOXICITY_DAYS = 30.0  # fatal CAR-T toxicity (CRS, neurologic events, infection) within this many days of infusion
# blinatumomab's schedule (label): 28 days of continuous infusion and 14 off per cycle; two
# induction cycles, up to three consolidation cycles in remission (maintenance not modelled)
BLINA_CYCLE_DAYS = 42.0
BLINA_INFUSION_DAYS = 28.0
BLINA_INDUCTION_CYCLES = 2
BLINA_MAX_CYCLES = 5

# dose-table kinds (first axis of the dose tables)
KIND_CYCLE1, KIND_IN_CR, KIND_NOT_IN_CR = 0, 1, 2

# --- output layout. Float fields (NaN = did not happen before censoring):
(
    F_CUM_DOSE, F_STARTING_DOSE, F_RESPONSE_DAY, F_HSCT_DAY, F_PROGRESSION_DAY, F_DEATH_DAY,
    F_PFS_MONTHS, F_OS_MONTHS, F_AGE, F_BLASTS, F_CENSOR_DAY, F_RELAPSE_POST_HSCT_DAY,
    F_LAST_DOSE_DAY, F_TREATMENT_END_DAY, F_THEN_START_DAY,
) = range(15)
N_FLOAT = 15
# Integer fields:
(
    I_COHORT, I_CYCLES, I_DOSES, I_BEST_RESPONSE, I_RESPONSE_CYCLE, I_MRD_NEG, I_G3AE, I_SAE,
    I_DISC_AE, I_HSCT, I_SOS, I_SOS_GRADE, I_SOS_POST, I_DEATH_CAUSE, I_PFS_EVENT, I_OS_EVENT,
    I_SALVAGE, I_PRIOR_HSCT, I_PH, I_BILI, I_ELIGIBLE, I_HSCT_IN_REMISSION, I_SOS_POST_GRADE, I_TREATMENT,
    I_CRS_GRADE, I_NEUROLOGIC, I_CART_STAGE, I_THEN_RESPONSE,
) = range(28)
N_INT = 28

# death causes (the `death_cause` variable)
CAUSE_NONE, CAUSE_PROGRESSION, CAUSE_NRM_POST_HSCT, CAUSE_TOXICITY, CAUSE_OTHER = range(5)
# SOS grades stored in `sos_grade`: 0 none, 1 grade 1-2, 3 grade 3-4, 5 fatal
SOS_MILD, SOS_SEVERE, SOS_FATAL = 1, 3, 5
# the key of a patient's next line of treatment: a hash of the patient's key and this constant,
# so the next line's draws are fresh but the same under every first treatment
NEXT_LINE_SALT = 0x5EC0D11E5EC0D11E
# CRS grades stored in `crs_grade`: 0 none, 1 grade 1-2, 3 grade >= 3
GRADE_MILD, GRADE_SEVERE = 1, 3

# --- random-number streams: patient-level ids, then per-cycle blocks
(
    S_COHORT, S_AGE, S_SALVAGE, S_PRIOR, S_PH, S_BLAST_CAT, S_BLAST_VAL, S_BILI, S_ELIG,
    S_SENS, S_PD, S_OTHER, S_RELAPSE, S_HSCT_LATE, S_SALV_HSCT, S_SALV_HSCT_T, S_DEATH_PROG,
    S_DUAL, S_SOS_POST, S_SOS_POST_GRADE, S_SOS_ONSET, S_SOS_DEATH, S_NRM, S_RELAPSE_HSCT,
    S_CENSOR, S_HSCT_WAIT, S_DEATH_PROG_HSCT, S_DEATH_CAUSE,
) = range(28)
CYCLE_STREAM_BASE = 64
CYCLE_STREAM_STRIDE = 32
MAX_DOSES_PER_CYCLE = 8  # per-dose omission streams 0..7
(
    K_G3, K_SAE, K_FATAL, K_FATAL_T, K_SOS, K_SOS_GRADE, K_RESPONSE, K_MRD, K_DISC, K_REDUCE,
    K_DELAY, K_HSCT_GO, K_EXTENSION, K_SOS_DEATH,
) = range(MAX_DOSES_PER_CYCLE, MAX_DOSES_PER_CYCLE + 14)
MAX_CYCLES = 12
# streams of the other treatments: one block each, above every InO stream (the last InO
# cycle's block ends below CYCLE_STREAM_BASE + (MAX_CYCLES + 1) * CYCLE_STREAM_STRIDE = 480)
CHEMO_STREAM_BASE = 512
(
    CH_FATAL, CH_FATAL_T, CH_RESPONSE, CH_MRD, CH_HSCT_GO,
) = range(CHEMO_STREAM_BASE, CHEMO_STREAM_BASE + 5)
BLINA_STREAM_BASE = 544  # patient-level ids, then BLINA_MAX_CYCLES blocks of BLINA_CYCLE_STREAMS
(BL_CRS, BL_CRS_GRADE, BL_NEURO, BL_MRD, BL_HSCT_GO) = range(BLINA_STREAM_BASE, BLINA_STREAM_BASE + 5)
BLINA_CYCLE_STREAMS = 4
BL_RESPONSE, BL_FATAL, BL_FATAL_T = range(3)  # within a cycle's block
CART_STREAM_BASE = 608
(
    CT_MANUFACTURED, CT_DROPOUT, CT_DROPOUT_PD, CT_CRS, CT_CRS_GRADE, CT_NEURO, CT_FATAL, CT_FATAL_T, CT_RESPONSE,
    CT_MRD, CT_DURABLE, CT_HSCT_GO,
) = range(CART_STREAM_BASE, CART_STREAM_BASE + 12)
# the CAR-T path (`cart_stage`): 0 not CAR-T, else how far the patient got
CART_APHERESIS, CART_MANUFACTURED, CART_INFUSED = 1, 2, 3

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


@njit(cache=True, inline="always")
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def patient_key(seed, patient):
    """The generator key of one patient: a hash of (seed, patient id).

    Parameters
    ----------
    seed, patient : int
        Non-negative integers below 2**63.
    """
    g = np.uint64(_GOLDEN)
    z = _mix64(np.uint64(seed) * g + np.uint64(1))
    return _mix64(z ^ (np.uint64(patient) * g + np.uint64(2)))


@njit(cache=True, inline="always")
def draw(key, stream):
    """Counter-based uniform in (0, 1) for one patient key and stream id.

    The draw is a splitmix64 hash of the key and the stream id, so it depends on
    nothing else: not on other patients, thread, chunk or earlier draws.
    """
    z = _mix64(key ^ (np.uint64(stream) * np.uint64(_GOLDEN) + np.uint64(3)))
    return ((z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def uniform(seed, patient, stream):
    """Uniform draw in (0, 1) keyed by (seed, patient id, stream id).

    Returns
    -------
    float
        A 53-bit uniform strictly between 0 and 1; equal to
        ``draw(patient_key(seed, patient), stream)``.
    """
    return draw(patient_key(seed, patient), stream)


@njit(cache=True, inline="always")
def _expit(x):
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=True, inline="always")
def _exp1(u):
    """Unit exponential from a uniform."""
    return -math.log(u)


@njit(cache=True, inline="always")
def _wait(u, rate_per_month):
    """Exponential waiting time in days for a rate per month (inf if the rate is 0)."""
    return -math.log(u) / (rate_per_month / MONTH) if rate_per_month > 0.0 else math.inf


@njit(cache=True, inline="always")
def _weibull(u, rate, shape):
    """Weibull time in days with cumulative hazard rate * months**shape (inf if rate is 0)."""
    return MONTH * (-math.log(u) / rate) ** (1.0 / shape) if rate > 0.0 else math.inf


@njit(cache=True, inline="always")
def _weibull_step(u, rate, shape, change_months, factor):
    """Days until an event whose Weibull hazard is multiplied by ``factor`` after ``change_months``.

    Cumulative hazard rate * t**shape (t in months) up to the change, then
    rate * (change**shape + factor * (t**shape - change**shape)); inf if the rate is 0.
    """
    if rate <= 0.0:
        return math.inf
    e = -math.log(u)
    h_change = rate * change_months**shape if change_months < math.inf else math.inf
    if e <= h_change:
        return MONTH * (e / rate) ** (1.0 / shape)
    return MONTH * (change_months**shape + (e - h_change) / (rate * factor)) ** (1.0 / shape)


@njit(cache=True, inline="always")
def _relapse_days(hazard, rate_per_month, since_months, shape):
    """Days until ``hazard`` more accrues on the relapse clock, now ``since_months`` after the response.

    The clock's cumulative hazard is ``rate * t**shape`` (t months since CR/CRi), so it
    reaches ``H(since) + hazard`` at ``t = (hazard / rate + since**shape)**(1 / shape)``;
    inf if the rate is 0. ``shape`` 1 is a constant hazard; above 1 residual disease takes
    time to regrow into a relapse.
    """
    if rate_per_month <= 0.0:
        return math.inf
    return MONTH * ((hazard / rate_per_month + since_months**shape) ** (1.0 / shape) - since_months)


@njit(cache=True, inline="always")
def _relapse_hazard(rate_per_month, start, end, response_day, shape):
    """Relapse hazard accrued from day ``start`` to ``end``: ``rate (t_end**shape - t_start**shape)``,
    t in months since the response on ``response_day``."""
    return rate_per_month * (((end - response_day) / MONTH) ** shape - ((start - response_day) / MONTH) ** shape)


@njit(cache=True, inline="always")
def _relapse_rate(par, mrd_neg):
    """Relapse rate per month in remission without HSCT, off treatment:
    ``relapse_rate_remission * exp(relapse_mrd_positive [MRD-positive])``."""
    return par[P_REL_RATE] * (1.0 if mrd_neg else math.exp(par[P_REL_MRDPOS]))


@njit(cache=True, inline="always")
def _cycle_stream(cycle, k):
    return CYCLE_STREAM_BASE + cycle * CYCLE_STREAM_STRIDE + k


@njit(cache=True, inline="always")
def _sos_grade(u, par):
    """SOS grade from a uniform: fatal if ``u < sos_fatal_prob``, else grade 3-4 if
    ``u < sos_severe_prob``, else grade 1-2."""
    return SOS_FATAL if u < par[P_SOS_FATAL] else (SOS_SEVERE if u < par[P_SOS_SEVERE] else SOS_MILD)


@njit(cache=True, inline="always")
def _cause_after_progression(key, par):
    """Recorded cause of a death after progression or relapse.

    Trials attribute some of these deaths to the disease and the rest to infections
    or toxicity of later therapy ("other"); the share is a parameter.
    """
    if draw(key, S_DEATH_CAUSE) < par[P_DEATH_PROG_SHARE]:
        return CAUSE_PROGRESSION
    return CAUSE_OTHER


@njit(cache=True, inline="always")
def _death_after_progression(key, t_death, t_other, par):
    """``(day, cause)`` of death after progression or relapse: the earlier of death from other
    causes and ``t_death`` (its cause from :func:`_cause_after_progression`)."""
    if t_other < t_death:
        return t_other, CAUSE_OTHER
    return t_death, _cause_after_progression(key, par)


# ---- the state that flows between phases: named tuples, which numba keeps in registers
Patient = namedtuple("Patient", (
    "cohort",  # row of the population and regimen tables
    "age",  # years
    "salvage2",  # second salvage (else first)
    "prior_hsct",
    "ph_positive",
    "blasts",  # marrow blasts, %
    "bilirubin_high",
    "eligible",  # transplant-eligible
    "censor",  # day of administrative censoring
    "decades",  # (age - REFERENCE_AGE) / 10
    "response_lp",  # the patient's part of the response logit
    "sos_lp",  # the patient's part of the SOS logits (on treatment and after HSCT)
    "t_progression",  # day refractory disease progresses
    "t_other",  # day of death from other causes
    "progression_rate",  # per month, of refractory disease (the clock of t_progression)
))
Patient.__doc__ = "The patient at baseline: covariates, linear predictors and natural-history clocks."

Exposure = namedtuple("Exposure", (
    "cum_dose",  # InO given, mg/m2
    "doses",  # doses given
    "last_dose",  # day of the last dose given (0 if none)
    "cycles",  # cycles in which a dose was given
))
Exposure.__doc__ = "InO exposure of a treatment (what SOS and NRM after HSCT depend on)."

Remission = namedtuple("Remission", (
    "in_cr",  # in CR/CRi
    "mrd_neg",  # MRD-negative
    "cycle",  # cycle of the response (0: none)
    "day",  # day of the response (inf: none)
    "threshold",  # Exp(1) threshold of the relapse clock, drawn at response
    "hazard",  # relapse hazard accrued on treatment since the response
))
Remission.__doc__ = "Response, MRD and the relapse clock (relapse when the accrued hazard reaches the threshold)."

Harms = namedtuple("Harms", (
    "g3",  # any grade >= 3 adverse event
    "sae",  # any serious adverse event
    "discontinued",  # discontinued for an adverse event
    "sos_grade",  # SOS on treatment: 0 none, else SOS_MILD, SOS_SEVERE or SOS_FATAL
    "crs_grade",  # cytokine release syndrome: 0 none, else GRADE_MILD (1-2) or GRADE_SEVERE (>= 3)
    "neurologic",  # grade >= 3 neurologic event
))
Harms.__doc__ = "Adverse events of a treatment, as recorded."

Course = namedtuple("Course", (
    "end",  # day the treatment ended
    "exposure",  # Exposure
    "remission",  # Remission
    "harms",  # Harms
    "death",  # day of death during treatment (inf: none)
    "cause",  # its cause (CAUSE_*)
    "progression",  # day of progression or relapse during treatment (inf: none)
    "hsct_day",  # day of a transplant decided during treatment (inf: none)
))
Course.__doc__ = "What a treatment phase hands to the phases after it."

Outcome = namedtuple("Outcome", (
    "death",  # day of death (inf: none)
    "cause",  # CAUSE_*
    "progression",  # day of the first progression or relapse (inf: none)
    "hsct_day",  # day of the transplant (inf: none)
    "hsct_in_cr",  # transplanted in remission
    "relapse_post_hsct",  # day of relapse after the transplant (inf: none)
    "sos_post_grade",  # SOS after HSCT seen before death and censoring: its grade (0: none)
))
Outcome.__doc__ = "The patient's course after treatment, before censoring."


# ---- phase 1: the patient at baseline
@njit(cache=True, inline="always")
def covariates(key, pop, age_table, par, fu):
    """The patient at baseline, from patient-level streams (identical under every strategy).

    With ``u`` a fresh uniform each time and ``k`` the cohort:

    * cohort: the first ``k`` with ``u < POP_WEIGHT_CUM[k]`` (the last if none);
    * age: the cohort's quantile table interpolated linearly at ``u``;
    * second salvage, prior HSCT, Ph+, high bilirubin: ``u < prevalence``;
    * marrow blasts: uniform on 5-50, 50-90 or 90-100 %, the interval drawn with the
      cohort's shares;
    * transplant eligibility: ``u < expit(logit40 + slope (age - 40) / 10
      + eligibility_log_odds_shift + hsct_prior_hsct prior)``;
    * chemosensitivity ``z = log(u / (1 - u)) sqrt(3) / pi`` (logistic, unit variance);
    * censoring day ``(minimum follow-up + accrual u) MONTH``.

    With ``H = [blasts > 90]`` and ``decades = (age - 47) / 10``, the linear predictors::

        response_lp = resp_sensitivity_sd z + resp_blasts_over_90 H
                      + resp_salvage2 salvage2 + resp_ph_positive ph
        sos_lp = sos_age_per_decade decades + sos_prior_hsct prior
                 + sos_bilirubin_high bili + sos_salvage2 salvage2

    and the natural-history clocks (days, exponential, rates per month): progression of
    refractory disease at ``progression_rate_refractory exp(progression_blasts_over_90 H
    - progression_resistance z)`` (resistant disease progresses faster), death from other
    causes at ``death_rate_other``.

    Returns
    -------
    Patient
    """
    u = draw(key, S_COHORT)
    k = 0
    while k < pop.shape[0] - 1 and u >= pop[k, POP_WEIGHT_CUM]:
        k += 1
    x = draw(key, S_AGE) * (age_table.shape[1] - 1)
    j = min(int(x), age_table.shape[1] - 2)
    age = age_table[k, j] + (x - j) * (age_table[k, j + 1] - age_table[k, j])
    salvage2 = draw(key, S_SALVAGE) < pop[k, POP_SALVAGE2]
    prior = draw(key, S_PRIOR) < pop[k, POP_PRIOR_HSCT]
    ph = draw(key, S_PH) < pop[k, POP_PH]
    u = draw(key, S_BLAST_CAT)
    v = draw(key, S_BLAST_VAL)
    if u < pop[k, POP_BLASTS_LT50]:
        blasts = 5.0 + 45.0 * v
    elif u < pop[k, POP_BLASTS_LT50] + pop[k, POP_BLASTS_50_90]:
        blasts = 50.0 + 40.0 * v
    else:
        blasts = 90.0 + 10.0 * v
    high_blasts = blasts > 90.0
    bili = draw(key, S_BILI) < pop[k, POP_BILI]
    elig_logit = (pop[k, POP_ELIG_LOGIT40] + pop[k, POP_ELIG_SLOPE] * (age - 40.0) / 10.0
                  + par[P_ELIG_SHIFT] + par[P_HSCT_PRIOR] * prior)
    eligible = draw(key, S_ELIG) < _expit(elig_logit)
    u = draw(key, S_SENS)
    sensitivity = math.log(u / (1.0 - u)) * (math.sqrt(3.0) / math.pi)  # unit variance
    censor = (fu[k, 0] + fu[k, 1] * draw(key, S_CENSOR)) * MONTH
    decades = (age - REFERENCE_AGE) / 10.0
    resp_lp = (par[P_RESP_SD] * sensitivity + par[P_RESP_BLASTS] * high_blasts
               + par[P_RESP_SALV] * salvage2 + par[P_RESP_PH] * ph)
    sos_lp = (par[P_SOS_AGE] * decades + par[P_SOS_PRIOR] * prior
              + par[P_SOS_BILI] * bili + par[P_SOS_SALV] * salvage2)
    pd_rate = par[P_PD_RATE] * math.exp(par[P_PD_BLASTS] * high_blasts - par[P_PD_RESIST] * sensitivity)
    t_pd = _wait(draw(key, S_PD), pd_rate)
    t_other = _wait(draw(key, S_OTHER), par[P_DEATH_OTHER])
    return Patient(k, age, salvage2, prior, ph, blasts, bili, eligible, censor, decades, resp_lp, sos_lp,
                   t_pd, t_other, pd_rate)


# ---- phase 2: the treatment. InO, cycle by cycle and dose by dose
@njit(cache=True, inline="always")
def _disease_day(start, remission, t_progression, par):
    """``(day, rate_on)``: the disease event of a cycle starting on ``start`` and the relapse
    rate on treatment (per month; 0 if refractory).

    In remission the relapse clock runs at ``rate_on = relapse rate * exp(relapse_on_treatment)``
    (InO changes it), so relapse comes when ``threshold - hazard`` more has accrued
    (:func:`_relapse_days`); refractory disease progresses on its baseline day.
    """
    if remission.in_cr:
        rate_on = _relapse_rate(par, remission.mrd_neg) * math.exp(par[P_REL_ON])
        since = (start - remission.day) / MONTH
        return start + _relapse_days(remission.threshold - remission.hazard, rate_on, since,
                                     par[P_REL_SHAPE]), rate_on
    return t_progression, 0.0


@njit(cache=True, inline="always")
def _ino_doses(key, c, k, kind, scale, start, t_other, t_disease, exposure, reg, doses, days, n_doses, par):
    """The doses of InO cycle ``c`` given: the planned doses of ``kind``, times ``scale``.

    Dose ``q`` falls on day ``start + day_q - 1``. Zero doses are skipped; dosing stops at
    death from other causes or the disease event; a dose after the cycle's first is held
    for toxicity and omitted with probability ``dose_omission_prob``; dosing stops for good
    when a dose would take the cumulative dose over the cap (``DOSE_EPS`` tolerance).

    Returns
    -------
    cum_dose, doses, last_dose
        ``exposure``'s fields with the cycle's doses added.
    given : float
        The cycle's dose ``D_c``, mg/m2.
    capped : bool
        The cap stopped dosing.
    """
    cap = reg[k, REG_CAP]
    cum = exposure.cum_dose
    n_given = exposure.doses
    last_dose = exposure.last_dose
    given = 0.0
    capped = False
    for q in range(n_doses[k, kind]):
        d = doses[k, kind, q] * scale
        day = start + days[k, kind, q] - 1.0
        if d <= 0.0:
            continue
        if day >= t_other or day >= t_disease:
            break
        if q > 0 and draw(key, _cycle_stream(c, q)) < par[P_OMIT]:
            continue  # held for toxicity and omitted
        if cum + d > cap + DOSE_EPS:
            capped = True
            break
        cum += d
        given += d
        n_given += 1
        last_dose = day
    return cum, n_given, last_dose, given, capped


@njit(cache=True, inline="always")
def _responds(key, c, rel_dose, response_lp, par):
    """CR/CRi in cycle ``c`` of a patient not in remission: ``u < expit(resp_intercept_cycle{1,2,3plus}
    + resp_dose_slope log(D_c / 1.8) + response_lp)``."""
    p = _expit((par[P_RESP_C1] if c == 1 else (par[P_RESP_C2] if c == 2 else par[P_RESP_C3]))
               + par[P_RESP_DOSE] * rel_dose + response_lp)
    return draw(key, _cycle_stream(c, K_RESPONSE)) < p


@njit(cache=True, inline="always")
def _mrd_negative(key, c, rel_dose, par):
    """MRD-negative at the end of cycle ``c``: ``u < expit(mrd_intercept + mrd_dose_slope log(D_c / 1.8))``."""
    return draw(key, _cycle_stream(c, K_MRD)) < _expit(par[P_MRD_INT] + par[P_MRD_DOSE] * rel_dose)


@njit(cache=True, inline="always")
def response_and_mrd(key, c, remission, responds, rate_on, start, end, rel_dose, par):
    """Remission after cycle ``c`` (days ``start`` to ``end``), which no terminal event cut short.

    A patient in remission before the cycle accrues relapse hazard ``rate_on (t_end**k - t_start**k)``
    (t months since the response, k ``relapse_shape``: :func:`_relapse_hazard`)
    and, if MRD-positive, may become MRD-negative (:func:`_mrd_negative`). A new response
    (``responds``) is dated at the cycle end, has its MRD status drawn, and starts the
    relapse clock afresh: threshold ``-log(u) ~ Exp(1)``, hazard 0.

    Returns
    -------
    Remission
    """
    in_cr, mrd_neg, cycle, day, threshold, hazard = remission
    if in_cr:
        hazard += _relapse_hazard(rate_on, start, end, day, par[P_REL_SHAPE])
    if responds:
        in_cr = True
        cycle = c
        day = end
        mrd_neg = _mrd_negative(key, c, rel_dose, par)
        threshold = _exp1(draw(key, S_RELAPSE))
        hazard = 0.0
    elif in_cr and not mrd_neg:
        mrd_neg = _mrd_negative(key, c, rel_dose, par)
    return Remission(in_cr, mrd_neg, cycle, day, threshold, hazard)


@njit(cache=True, inline="always")
def transplant_bound(key, c, end, remission, eligible, k, reg, par):
    """Day of a transplant decided at the end of cycle ``c`` (inf if none): the transplant-bound rule.

    An eligible patient in remission after at least ``REG_HSCT_CYCLES`` cycles (one more if
    ``REG_HSCT_EXTRA_MRD`` and MRD-positive) proceeds with probability ``hsct_proceed_prob``,
    after ``hsct_wait_mean_days Exp(1)`` days.
    """
    if remission.in_cr and eligible:
        needed = reg[k, REG_HSCT_CYCLES] + (
            1.0 if reg[k, REG_HSCT_EXTRA_MRD] > 0 and not remission.mrd_neg else 0.0)
        if c >= needed and draw(key, _cycle_stream(c, K_HSCT_GO)) < par[P_HSCT_GO]:
            return end + par[P_HSCT_WAIT] * _exp1(draw(key, S_HSCT_WAIT))
    return math.inf


@njit(cache=True, inline="always")
def ino_cycle(key, c, start, reduced, course, pt, reg, doses, days, n_doses, par):
    """InO cycle ``c`` from day ``start``: doses, adverse events, response and MRD, transplant.

    The planned doses are cycle 1's, then those for patients in or not in remission, times
    ``1 - REG_REDUCTION`` after a reduction. With ``D_c`` the dose given (:func:`_ino_doses`;
    none given ends treatment on ``start``) and ``x = log(D_c / 1.8)``:

    * grade >= 3 AE: ``u < expit(g3ae_intercept_{cycle1,later} + g3ae_dose_slope x)``; it
      delays the cycle end by ``2 cycle_delay_mean_days u`` days;
    * SAE: ``u < expit(sae_intercept_{cycle1,later} + sae_not_in_remission [not in CR]
      + sae_dose_slope x)``, fatal with probability ``fatal_toxicity_given_sae`` on a uniform
      day between the cycle's last dose and its end;
    * response (:func:`_responds`), assessed at the cycle end, which cycle 1 extends by
      ``REG_C1_EXTENSION u`` days when CR/CRi is documented;
    * the first of death from other causes, the disease event (:func:`_disease_day`) and
      fatal toxicity ends treatment if it comes before the cycle end (a response then
      does not count);
    * else remission and MRD are updated (:func:`response_and_mrd`); SOS on treatment,
      ``u < expit(sos_intercept_treatment + sos_cumulative_dose_slope cum + sos_lp)``,
      discontinues treatment (fatal SOS: death ``sos_death_mean_days Exp(1)`` days after the
      cycle end); after a grade >= 3 AE the patient discontinues with probability
      ``expit(discontinue_intercept + discontinue_cumulative_slope (cum - 1.8))`` and has later
      doses reduced with probability ``dose_reduction_given_g3ae``;
    * treatment ends with a transplant (:func:`transplant_bound`), a discontinuation, the
      cap, or refractory disease after ``REG_STOP_AFTER`` cycles.

    Returns
    -------
    course : Course
        After the cycle; ``end`` is the cycle's end or the day treatment ended in it.
    reduced : bool
        Doses are reduced by ``REG_REDUCTION`` from the next cycle on.
    more : bool
        Treatment goes on with cycle ``c + 1`` from ``course.end``.
    """
    k = pt.cohort
    remission = course.remission
    kind = KIND_CYCLE1 if c == 1 else (KIND_IN_CR if remission.in_cr else KIND_NOT_IN_CR)
    scale = 1.0 - reg[k, REG_REDUCTION] if reduced else 1.0
    t_disease, rate_on = _disease_day(start, remission, pt.t_progression, par)
    cum, n_given, last_dose, given, capped = _ino_doses(key, c, k, kind, scale, start, pt.t_other, t_disease,
                                                        course.exposure, reg, doses, days, n_doses, par)
    if given <= 0.0:
        return Course(start, course.exposure, remission, course.harms, course.death, course.cause,
                      course.progression, course.hsct_day), reduced, False
    exposure = Exposure(cum, n_given, last_dose, c)
    rel_dose = math.log(given / REFERENCE_CYCLE_DOSE)
    g3_int = par[P_G3_C1] if c == 1 else par[P_G3_LATER]
    g3 = draw(key, _cycle_stream(c, K_G3)) < _expit(g3_int + par[P_G3_DOSE] * rel_dose)
    length = reg[k, REG_LEN_C1] if c == 1 else reg[k, REG_LEN_LATER]
    if g3:
        length += 2.0 * par[P_DELAY] * draw(key, _cycle_stream(c, K_DELAY))
    end = start + length
    sae = draw(key, _cycle_stream(c, K_SAE)) < _expit(
        (par[P_SAE_C1] if c == 1 else par[P_SAE_LATER]) + par[P_SAE_NOCR] * (not remission.in_cr)
        + par[P_SAE_DOSE] * rel_dose)
    responds = False
    if not remission.in_cr:
        responds = _responds(key, c, rel_dose, pt.response_lp, par)
        if responds and c == 1:
            end += reg[k, REG_C1_EXTENSION] * draw(key, _cycle_stream(c, K_EXTENSION))
    t_fatal = math.inf
    if sae and draw(key, _cycle_stream(c, K_FATAL)) < par[P_FATAL_TOX]:
        # toxicity of the doses given: death between the cycle's last dose and its end
        t_fatal = last_dose + (end - last_dose) * draw(key, _cycle_stream(c, K_FATAL_T))
    any_g3 = course.harms.g3 or g3
    any_sae = course.harms.sae or sae
    t_first = min(pt.t_other, t_disease, t_fatal)
    if t_first < end:  # the first terminal event inside the cycle ends treatment
        death, cause, progression = course.death, course.cause, course.progression
        if t_first == t_fatal:
            death, cause = t_fatal, CAUSE_TOXICITY
        elif t_first == pt.t_other:
            death, cause = pt.t_other, CAUSE_OTHER
        else:
            progression = t_disease
        harms = Harms(any_g3, any_sae, course.harms.discontinued, course.harms.sos_grade, 0, False)
        return Course(t_first, exposure, remission, harms, death, cause, progression, course.hsct_day), reduced, False
    remission = response_and_mrd(key, c, remission, responds, rate_on, start, end, rel_dose, par)
    # toxicity at the cycle end: SOS on treatment, discontinuation, dose reduction
    discontinued = course.harms.discontinued
    sos_grade = course.harms.sos_grade
    stop = False
    if draw(key, _cycle_stream(c, K_SOS)) < _expit(par[P_SOS_TX] + par[P_SOS_DOSE] * cum + pt.sos_lp):
        discontinued = True
        stop = True
        sos_grade = _sos_grade(draw(key, _cycle_stream(c, K_SOS_GRADE)), par)
        if sos_grade == SOS_FATAL:  # SOS found at the cycle end, death after it
            death = end + par[P_SOS_DEATH] * _exp1(draw(key, _cycle_stream(c, K_SOS_DEATH)))
            harms = Harms(any_g3, any_sae, discontinued, sos_grade, 0, False)
            return Course(end, exposure, remission, harms, death, CAUSE_TOXICITY, course.progression,
                          course.hsct_day), reduced, False
    if g3:
        if draw(key, _cycle_stream(c, K_DISC)) < _expit(
                par[P_DISC_INT] + par[P_DISC_CUM] * (cum - REFERENCE_CYCLE_DOSE)):
            discontinued = True
            stop = True
        if draw(key, _cycle_stream(c, K_REDUCE)) < par[P_REDUCE]:
            reduced = True
    hsct_day = transplant_bound(key, c, end, remission, pt.eligible, k, reg, par)
    more = not (hsct_day < math.inf or stop or capped or (not remission.in_cr and c >= reg[k, REG_STOP_AFTER]))
    harms = Harms(any_g3, any_sae, discontinued, sos_grade, 0, False)
    return Course(end, exposure, remission, harms, course.death, course.cause, course.progression,
                  hsct_day), reduced, more


@njit(cache=True, inline="always")
def ino_induction(key, pt, reg, doses, days, n_doses, par):
    """InO from day 0, one :func:`ino_cycle` after another, at most ``REG_MAX_CYCLES``.

    Returns
    -------
    Course
    """
    course = Course(0.0, Exposure(0.0, 0, 0.0, 0), Remission(False, False, 0, math.inf, 0.0, 0.0),
                    Harms(False, False, False, 0, 0, False), math.inf, CAUSE_NONE, math.inf, math.inf)
    start = 0.0
    reduced = False
    for c in range(1, int(reg[pt.cohort, REG_MAX_CYCLES]) + 1):
        course, reduced, more = ino_cycle(key, c, start, reduced, course, pt, reg, doses, days, n_doses, par)
        if not more:
            break
        start = course.end
    return course


# ---- phase 2, another treatment: standard chemotherapy (INO-VATE's control arm)
@njit(cache=True, inline="always")
def _refractory_end(pt, t_progression):
    """``(death, cause, progression)`` of a patient alive and refractory when treatment ends:
    progression on ``t_progression``, unless death from other causes comes first."""
    if pt.t_other < t_progression:
        return pt.t_other, CAUSE_OTHER, math.inf
    return math.inf, CAUSE_NONE, t_progression


@njit(cache=True, inline="always")
def _cut_short(t_first, t_fatal, t_other, t_disease, exposure, remission, harms):
    """The course of another treatment ended inside its treatment window by its first event ``t_first``:
    death from toxicity, death from other causes, or progression (relapse) of the disease."""
    if t_first == t_fatal:
        return Course(t_first, exposure, remission, harms, t_fatal, CAUSE_TOXICITY, math.inf, math.inf)
    if t_first == t_other:
        return Course(t_first, exposure, remission, harms, t_other, CAUSE_OTHER, math.inf, math.inf)
    return Course(t_first, exposure, remission, harms, math.inf, CAUSE_NONE, t_disease, math.inf)


@njit(cache=True)
def chemo_induction(key, pt, tpar, par):
    """Standard salvage chemotherapy from day 0: one induction course (FLAG, mitoxantrone with
    cytarabine, or high-dose cytarabine), as in INO-VATE's control arm.

    With ``L = chemo_course_days`` (the response is assessed at count recovery):

    * refractory disease progresses on ``t_progression exp(-chemo_progression_log_hr)``: the
      patient's own natural-history clock, at the rate after failed chemotherapy;
    * fatal toxicity if ``u < chemo_fatal_toxicity``, on day ``L u``;
    * CR/CRi at the course end if ``u < expit(chemo_response_intercept + response_lp)``: the
      same chemosensitivity and covariate effects as InO's response;
    * the first of death from other causes, fatal toxicity and progression before day ``L``
      ends the course (a response then does not count);
    * a responder is MRD-negative if ``u < expit(chemo_mrd_intercept)``; its relapse clock
      starts with threshold ``Exp(1) exp(-chemo_relapse_log_hr)`` (the relapse hazard of an
      InO remission times ``exp(chemo_relapse_log_hr)``); an eligible responder proceeds to
      HSCT with probability ``chemo_hsct_prob``, ``hsct_wait_mean_days Exp(1)`` days later;
    * a non-responder alive at day ``L`` progresses on the progression day above
      (:func:`_refractory_end`).

    The course gives no InO: zero dose, last dose ``-inf`` (no SOS interval effect), one cycle.

    Returns
    -------
    Course
    """
    end = tpar[C_COURSE_DAYS]
    t_progression = pt.t_progression * math.exp(-tpar[C_PD_LOG_HR])
    fatal = draw(key, CH_FATAL) < tpar[C_FATAL_TOX]
    t_fatal = end * draw(key, CH_FATAL_T) if fatal else math.inf
    responds = draw(key, CH_RESPONSE) < _expit(tpar[C_RESP_INT] + pt.response_lp)
    exposure = Exposure(0.0, 0, -math.inf, 1)
    harms = Harms(False, fatal, False, 0, 0, False)
    remission = Remission(False, False, 0, math.inf, 0.0, 0.0)
    t_first = min(pt.t_other, t_progression, t_fatal)
    if t_first < end:
        return _cut_short(t_first, t_fatal, pt.t_other, t_progression, exposure, remission, harms)
    if not responds:
        death, cause, progression = _refractory_end(pt, t_progression)
        return Course(end, exposure, remission, harms, death, cause, progression, math.inf)
    mrd_neg = draw(key, CH_MRD) < _expit(tpar[C_MRD_INT])
    threshold = _exp1(draw(key, S_RELAPSE)) * math.exp(-tpar[C_REL_LOG_HR])
    remission = Remission(True, mrd_neg, 1, end, threshold, 0.0)
    hsct_day = math.inf
    if pt.eligible and draw(key, CH_HSCT_GO) < tpar[C_HSCT_GO]:
        hsct_day = end + par[P_HSCT_WAIT] * _exp1(draw(key, S_HSCT_WAIT))
    return Course(end, exposure, remission, harms, math.inf, CAUSE_NONE, math.inf, hsct_day)


# ---- phase 2, another treatment: blinatumomab (TOWER)
@njit(cache=True, inline="always")
def _blina_stream(c, k):
    return BLINA_STREAM_BASE + 8 + (c - 1) * BLINA_CYCLE_STREAMS + k


@njit(cache=True)
def blina_induction(key, pt, tpar, par):
    """Blinatumomab from day 0, as in TOWER: ``BLINA_CYCLE_DAYS``-day cycles (continuous infusion
    for ``BLINA_INFUSION_DAYS``), two induction cycles, up to ``BLINA_MAX_CYCLES`` in remission.

    * cytokine release syndrome with probability ``blina_crs_prob`` (in cycle 1), grade >= 3 with
      probability ``blina_crs_severe_share`` of those; a grade >= 3 neurologic event with
      probability ``blina_neurologic_prob`` (recorded harms);
    * refractory disease progresses on ``t_progression exp(-blina_progression_log_hr)``;
    * in cycle ``c``, fatal toxicity if ``u < blina_fatal_toxicity``, on day ``BLINA_INFUSION_DAYS u``
      of the cycle;
    * a patient not in remission after induction cycle ``c`` (1 or 2) responds if
      ``u < expit(blina_response_intercept + blina_blasts_per_10 (blasts - 50) / 10 + response_lp)``:
      the response falls with the marrow blast burden, beside the shared covariate effects;
    * a responder is MRD-negative if ``u < expit(blina_mrd_intercept)``; its relapse clock starts
      with threshold ``Exp(1) exp(-blina_relapse_log_hr)`` and runs at the off-treatment rate
      through consolidation; an eligible responder proceeds to HSCT with probability
      ``blina_hsct_prob``, ``hsct_wait_mean_days Exp(1)`` days after the response, which ends
      blinatumomab;
    * the first of death from other causes, the disease event (progression, or relapse on the
      clock) and fatal toxicity inside a cycle ends treatment; a patient without a response
      after the two induction cycles stops and progresses on the day above
      (:func:`_refractory_end`).

    No InO: zero dose, last dose ``-inf``, the cycles given.

    Returns
    -------
    Course
    """
    t_progression = pt.t_progression * math.exp(-tpar[B_PD_LOG_HR])
    crs = 0
    if draw(key, BL_CRS) < tpar[B_CRS]:
        crs = GRADE_SEVERE if draw(key, BL_CRS_GRADE) < tpar[B_CRS_SEVERE] else GRADE_MILD
    harms = Harms(False, False, False, 0, crs, draw(key, BL_NEURO) < tpar[B_NEURO])
    remission = Remission(False, False, 0, math.inf, 0.0, 0.0)
    p_response = _expit(tpar[B_RESP_INT] + tpar[B_BLASTS] * (pt.blasts - 50.0) / 10.0 + pt.response_lp)
    rate = 0.0
    t_relapse = math.inf
    start = 0.0
    for c in range(1, BLINA_MAX_CYCLES + 1):
        end = start + BLINA_CYCLE_DAYS
        exposure = Exposure(0.0, 0, -math.inf, c)
        t_fatal = math.inf
        if draw(key, _blina_stream(c, BL_FATAL)) < tpar[B_FATAL_TOX]:
            t_fatal = start + BLINA_INFUSION_DAYS * draw(key, _blina_stream(c, BL_FATAL_T))
            harms = Harms(False, True, False, 0, harms.crs_grade, harms.neurologic)
        t_disease = t_relapse if remission.in_cr else t_progression
        t_first = min(pt.t_other, t_disease, t_fatal)
        if t_first < end:
            return _cut_short(t_first, t_fatal, pt.t_other, t_disease, exposure, remission, harms)
        if not remission.in_cr:
            if draw(key, _blina_stream(c, BL_RESPONSE)) < p_response:
                mrd_neg = draw(key, BL_MRD) < _expit(tpar[B_MRD_INT])
                threshold = _exp1(draw(key, S_RELAPSE)) * math.exp(-tpar[B_REL_LOG_HR])
                remission = Remission(True, mrd_neg, c, end, threshold, 0.0)
                rate = _relapse_rate(par, mrd_neg)
                t_relapse = end + _relapse_days(threshold, rate, 0.0, par[P_REL_SHAPE])
                if pt.eligible and draw(key, BL_HSCT_GO) < tpar[B_HSCT_GO]:
                    hsct_day = end + par[P_HSCT_WAIT] * _exp1(draw(key, S_HSCT_WAIT))
                    return Course(end, exposure, remission, harms, math.inf, CAUSE_NONE, math.inf, hsct_day)
            elif c == BLINA_INDUCTION_CYCLES:
                death, cause, progression = _refractory_end(pt, t_progression)
                return Course(end, exposure, remission, harms, death, cause, progression, math.inf)
        start = end
    # consolidation over: the relapse clock has run since the response at the off-treatment rate
    remission = Remission(True, remission.mrd_neg, remission.cycle, remission.day, remission.threshold,
                          _relapse_hazard(rate, remission.day, start, remission.day, par[P_REL_SHAPE]))
    return Course(start, Exposure(0.0, 0, -math.inf, BLINA_MAX_CYCLES), remission, harms, math.inf, CAUSE_NONE,
                  math.inf, math.inf)


# ---- phase 2, another treatment: brexucabtagene autoleucel (ZUMA-3)
@njit(cache=True)
def cart_course(key, pt, tpar, par):
    """Brexucabtagene autoleucel from leukapheresis on day 0, as in ZUMA-3.

    With ``V = cart_vein_to_vein_days`` (manufacturing, bridging and conditioning):

    * the product is manufactured unless ``u < cart_manufacturing_failure``;
    * a manufactured product is infused on day ``V`` unless the patient dies of other causes
      before, or drops out: for any reason with probability ``cart_dropout``, or, when the
      disease progresses while waiting (``t_progression < V``), with probability
      ``cart_dropout_after_progression``; a patient not infused stays refractory
      (:func:`_refractory_end`), the course ending on day ``V``;
    * after infusion: cytokine release syndrome with probability ``cart_crs_prob``, grade >= 3
      with probability ``cart_crs_severe_share`` of those; a grade >= 3 neurologic event with
      probability ``cart_neurologic_prob``; fatal toxicity if ``u < cart_fatal_toxicity``, on day
      ``V + CART_TOXICITY_DAYS u``;
    * CR/CRi, assessed on day ``R = V + cart_response_days``, if
      ``u < expit(cart_response_intercept + response_lp)``: the shared covariate effects;
    * death from other causes or fatal toxicity before ``R`` ends the course; a non-responder
      progresses on ``max(t_progression, R)``;
    * a responder is MRD-negative if ``u < expit(cart_mrd_intercept)``; its remission is durable
      (never relapses: the plateau) with probability ``cart_durable_prob``, else its relapse clock
      starts with threshold ``Exp(1) exp(-cart_relapse_log_hr)``; an eligible responder proceeds
      to a consolidative HSCT with probability ``cart_hsct_prob``, ``hsct_wait_mean_days Exp(1)``
      days after the response.

    No InO: zero dose, last dose ``-inf``; one cycle if infused, else none.

    Returns
    -------
    course : Course
    stage : int
        ``CART_APHERESIS``, ``CART_MANUFACTURED`` or ``CART_INFUSED``.
    """
    v = tpar[T_VEIN_TO_VEIN]
    remission = Remission(False, False, 0, math.inf, 0.0, 0.0)
    manufactured = draw(key, CT_MANUFACTURED) >= tpar[T_MANUF_FAIL]
    dropout = draw(key, CT_DROPOUT) < tpar[T_DROPOUT] or (
        pt.t_progression < v and draw(key, CT_DROPOUT_PD) < tpar[T_DROPOUT_PD])
    if not manufactured or dropout or pt.t_other < v:
        stage = CART_MANUFACTURED if manufactured else CART_APHERESIS
        exposure = Exposure(0.0, 0, -math.inf, 0)
        harms = Harms(False, False, False, 0, 0, False)
        death, cause, progression = _refractory_end(pt, pt.t_progression)
        return Course(v, exposure, remission, harms, death, cause, progression, math.inf), stage
    exposure = Exposure(0.0, 0, -math.inf, 1)
    crs = 0
    if draw(key, CT_CRS) < tpar[T_CRS]:
        crs = GRADE_SEVERE if draw(key, CT_CRS_GRADE) < tpar[T_CRS_SEVERE] else GRADE_MILD
    fatal = draw(key, CT_FATAL) < tpar[T_FATAL_TOX]
    harms = Harms(False, fatal, False, 0, crs, draw(key, CT_NEURO) < tpar[T_NEURO])
    t_fatal = v + CART_TOXICITY_DAYS * draw(key, CT_FATAL_T) if fatal else math.inf
    assessed = v + tpar[T_RESP_DAYS]
    if min(pt.t_other, t_fatal) < assessed:
        if t_fatal < pt.t_other:
            return Course(t_fatal, exposure, remission, harms, t_fatal, CAUSE_TOXICITY, math.inf,
                          math.inf), CART_INFUSED
        return Course(pt.t_other, exposure, remission, harms, pt.t_other, CAUSE_OTHER, math.inf,
                      math.inf), CART_INFUSED
    if draw(key, CT_RESPONSE) >= _expit(tpar[T_RESP_INT] + pt.response_lp):
        death, cause, progression = _refractory_end(pt, max(pt.t_progression, assessed))
        return Course(assessed, exposure, remission, harms, death, cause, progression, math.inf), CART_INFUSED
    mrd_neg = draw(key, CT_MRD) < _expit(tpar[T_MRD_INT])
    threshold = math.inf
    if draw(key, CT_DURABLE) >= tpar[T_DURABLE]:
        threshold = _exp1(draw(key, S_RELAPSE)) * math.exp(-tpar[T_REL_LOG_HR])
    remission = Remission(True, mrd_neg, 1, assessed, threshold, 0.0)
    hsct_day = math.inf
    if pt.eligible and draw(key, CT_HSCT_GO) < tpar[T_HSCT_GO]:
        hsct_day = assessed + par[P_HSCT_WAIT] * _exp1(draw(key, S_HSCT_WAIT))
    return Course(assessed, exposure, remission, harms, math.inf, CAUSE_NONE, math.inf, hsct_day), CART_INFUSED


# ---- phase 3: after treatment. Transplant in remission, relapse, progression, death
@njit(cache=True, inline="always")
def transplant_in_remission(key, pt, course, t_relapse, par):
    """Day of the transplant of a patient in remission when treatment ends (inf if none).

    A transplant decided during treatment stands; an eligible patient without one is
    transplanted after ``Exp(hsct_late_rate)`` (rate per month). Either counts only if it
    comes before relapse (``t_relapse``) and death from other causes.
    """
    hsct_day = course.hsct_day
    if hsct_day == math.inf and pt.eligible:
        hsct_day = course.end + _wait(draw(key, S_HSCT_LATE), par[P_HSCT_LATE])
    return hsct_day if hsct_day < min(t_relapse, pt.t_other) else math.inf


@njit(cache=True, inline="always")
def after_progression(key, pt, progression, par):
    """``(hsct_day, death, cause)`` after progression or relapse on day ``progression``.

    Further therapy, then death after ``Exp(death_rate_after_progression)`` (rate per month),
    unless death from other causes comes first (:func:`_death_after_progression`); an
    eligible patient gets a salvage transplant with probability ``hsct_salvage_prob``,
    ``hsct_salvage_mean_days Exp(1)`` days after progression, if it comes before both deaths
    (then ``death`` is inf: :func:`after_transplant` decides it).
    """
    t_dp = progression + _wait(draw(key, S_DEATH_PROG), par[P_DEATH_PROG])
    if pt.eligible and draw(key, S_SALV_HSCT) < par[P_HSCT_SALV]:
        t_sh = progression + par[P_HSCT_SALV_DAYS] * _exp1(draw(key, S_SALV_HSCT_T))
        if t_sh < min(t_dp, pt.t_other):
            return t_sh, math.inf, CAUSE_NONE
    death, cause = _death_after_progression(key, t_dp, pt.t_other, par)
    return math.inf, death, cause


@njit(cache=True, inline="always")
def after_treatment(key, pt, course, par):
    """Relapse, progression, transplant and death after the treatment of ``course`` ends.

    A patient alive and in remission relapses when the relapse clock reaches its threshold,
    now at the off-treatment rate (:func:`_relapse_rate`), when ``threshold - hazard`` more has
    accrued (:func:`_relapse_days`); unless transplanted before
    (:func:`transplant_in_remission`) or dead of other causes before. A patient alive and
    refractory progresses on the baseline day, unless dead of other causes before. After a
    progression or relapse: :func:`after_progression`.

    Returns
    -------
    Outcome
        Without the post-transplant course (see :func:`after_transplant`).
    """
    remission = course.remission
    t_relapse = course.end + _relapse_days(
        remission.threshold - remission.hazard, _relapse_rate(par, remission.mrd_neg),
        (course.end - remission.day) / MONTH, par[P_REL_SHAPE]) if remission.in_cr else math.inf
    death, cause, progression, hsct_day = course.death, course.cause, course.progression, course.hsct_day
    hsct_in_cr = False
    if death == math.inf:
        if remission.in_cr and progression == math.inf:
            hsct_day = transplant_in_remission(key, pt, course, t_relapse, par)
            hsct_in_cr = hsct_day < math.inf
            if not hsct_in_cr:
                if pt.t_other < t_relapse:
                    death, cause = pt.t_other, CAUSE_OTHER
                else:
                    progression = t_relapse
        elif progression == math.inf:  # refractory at treatment end: the disease progresses
            if pt.t_other < pt.t_progression:
                death, cause = pt.t_other, CAUSE_OTHER
            else:
                progression = pt.t_progression
        if progression < math.inf and death == math.inf:
            hsct_day, death, cause = after_progression(key, pt, progression, par)
    return Outcome(death, cause, progression, hsct_day, hsct_in_cr, math.inf, 0)


# ---- phase 4: after transplant. SOS, non-relapse mortality, relapse
@njit(cache=True, inline="always")
def _sos_after_hsct(key, hsct_day, gap, cum, sos_lp, dual, par):
    """``(grade, onset, t_death)`` of SOS after a transplant on ``hsct_day`` (0, inf, inf if none).

    SOS if ``u < expit(sos_intercept_post_hsct + sos_cumulative_dose_slope cum + sos_lp
    + sos_short_interval exp(-gap / MONTH) + sos_dual_alkylator dual)``, ``gap`` the days from
    the last InO dose; graded by :func:`_sos_grade`; onset
    ``hsct_day + sos_onset_median_days exp(sos_onset_spread log(u / (1 - u)))`` (log-logistic);
    a fatal SOS kills ``sos_death_mean_days Exp(1)`` days after its onset.
    """
    p = _expit(par[P_SOS_POST] + par[P_SOS_DOSE] * cum + sos_lp
               + par[P_SOS_GAP] * math.exp(-gap / MONTH) + par[P_SOS_DUAL] * dual)
    if draw(key, S_SOS_POST) >= p:
        return 0, math.inf, math.inf
    grade = _sos_grade(draw(key, S_SOS_POST_GRADE), par)
    u = draw(key, S_SOS_ONSET)
    onset = hsct_day + par[P_SOS_ONSET] * math.exp(par[P_SOS_SPREAD] * math.log(u / (1.0 - u)))
    t_death = onset + par[P_SOS_DEATH] * _exp1(draw(key, S_SOS_DEATH)) if grade == SOS_FATAL else math.inf
    return grade, onset, t_death


@njit(cache=True, inline="always")
def _nrm_day(key, pt, exposure, hsct_day, dual, sos_grade, sos_onset, par):
    """Day of non-relapse death after a transplant on ``hsct_day`` (inf if none).

    Weibull, cumulative hazard ``nrm_rate exp(l) t**nrm_shape`` (t months since HSCT), with
    what raises NRM a model structure (each driver has its own slope, zero unless chosen)::

        l = nrm_age_per_decade decades + nrm_cumulative_dose_slope (cum - 3.3)
            + nrm_prior_hsct prior + nrm_cycles_slope (cycles - 2)
            + nrm_time_to_hsct_slope (hsct_day / MONTH - 3) + nrm_salvage2 salvage2
            + nrm_dual_alkylator dual

    A non-fatal SOS multiplies the hazard by ``exp(nrm_after_sos)`` from its onset on
    (:func:`_weibull_step`).
    """
    nrm_lp = (par[P_NRM_AGE] * pt.decades + par[P_NRM_DOSE] * (exposure.cum_dose - NRM_REFERENCE_DOSE)
              + par[P_NRM_PRIOR] * pt.prior_hsct
              + par[P_NRM_CYCLES] * (exposure.cycles - NRM_REFERENCE_CYCLES)
              + par[P_NRM_TIME] * (hsct_day / MONTH - NRM_REFERENCE_MONTHS)
              + par[P_NRM_SALV] * pt.salvage2 + par[P_NRM_DUAL] * dual)
    change = (sos_onset - hsct_day) / MONTH if sos_grade == SOS_MILD or sos_grade == SOS_SEVERE else math.inf
    return hsct_day + _weibull_step(draw(key, S_NRM), par[P_NRM_RATE] * math.exp(nrm_lp), par[P_NRM_SHAPE],
                                    change, math.exp(par[P_NRM_SOS]))


@njit(cache=True, inline="always")
def _relapse_after_hsct_day(key, hsct_day, in_cr, mrd_neg, par):
    """Day of relapse after a transplant on ``hsct_day``: Weibull, cumulative hazard
    ``relapse_rate_post_hsct exp(relapse_post_hsct_mrd_positive [in CR, MRD+]
    + relapse_post_hsct_not_in_remission [not in CR]) t**relapse_post_hsct_shape`` (t months)."""
    rel_lp = (par[P_RELH_MRDPOS] * (in_cr and not mrd_neg)
              + par[P_RELH_NOCR] * (not in_cr))
    return hsct_day + _weibull(draw(key, S_RELAPSE_HSCT), par[P_RELH_RATE] * math.exp(rel_lp), par[P_RELH_SHAPE])


@njit(cache=True, inline="always")
def after_transplant(key, pt, course, outcome, reg, par):
    """The course after the transplant of ``outcome.hsct_day``: SOS, non-relapse death, relapse.

    The conditioning has a dual alkylator with probability ``REG_DUAL_ALKYLATOR``. Death is
    non-relapse mortality (cause ``CAUSE_NRM_POST_HSCT``) if the first of fatal SOS
    (:func:`_sos_after_hsct`), NRM (:func:`_nrm_day`) and death from other causes comes
    before relapse (:func:`_relapse_after_hsct_day`); after a relapse, death after
    ``Exp(death_rate_after_progression)`` unless of other causes first. SOS is seen if its
    onset comes before death and the data cut-off.

    Returns
    -------
    Outcome
    """
    hsct_day = outcome.hsct_day
    exposure = course.exposure
    dual = draw(key, S_DUAL) < reg[pt.cohort, REG_DUAL_ALKYLATOR]
    grade, onset, t_sos_death = _sos_after_hsct(key, hsct_day, hsct_day - exposure.last_dose, exposure.cum_dose,
                                                pt.sos_lp, dual, par)
    t_nrm = _nrm_day(key, pt, exposure, hsct_day, dual, grade, onset, par)
    t_rh = _relapse_after_hsct_day(key, hsct_day, outcome.hsct_in_cr, course.remission.mrd_neg, par)
    t_nr = min(t_sos_death, t_nrm, pt.t_other)
    relapse = math.inf
    progression = outcome.progression
    if t_nr < t_rh:
        death, cause = t_nr, CAUSE_NRM_POST_HSCT
    else:
        relapse = t_rh
        progression = min(progression, t_rh)
        t_dp = t_rh + _wait(draw(key, S_DEATH_PROG_HSCT), par[P_DEATH_PROG])
        death, cause = _death_after_progression(key, t_dp, pt.t_other, par)
    seen = grade if grade > 0 and onset <= min(death, pt.censor) else 0
    return Outcome(death, cause, progression, hsct_day, outcome.hsct_in_cr, relapse, seen)


# ---- a sequence: the next treatment at relapse or refractoriness
@njit(cache=True, inline="always")
def treatment_course(key, pt, treatment, reg, doses, days, n_doses, par, tpar):
    """``(course, stage)``: the course of ``treatment`` (a ``TREAT_*`` code) from day 0 of ``pt``."""
    stage = 0
    if treatment == TREAT_CHEMO:
        course = chemo_induction(key, pt, tpar, par)
    elif treatment == TREAT_BLINA:
        course = blina_induction(key, pt, tpar, par)
    elif treatment == TREAT_CART:
        course, stage = cart_course(key, pt, tpar, par)
    else:
        course = ino_induction(key, pt, reg, doses, days, n_doses, par)
    return course, stage


@njit(cache=True)
def next_line(key, pt, first, then, progression, reg, doses, days, n_doses, par, tpar):
    """``(outcome, responded)``: the next treatment ``then`` from the first progression or relapse on
    day ``progression`` after treatment ``first``, and whether it brought a CR/CRi.

    The patient of the next line is the same patient on a clock restarted at ``progression``:
    the same covariates and chemosensitivity, now in second (or later) salvage; its response
    logit adds ``resp_salvage2`` if it was in first salvage and the prior-therapy effect
    ``next_response_after_<first>``; refractory disease progresses after a fresh wait at the
    patient's own rate; death from other causes keeps its day. Its draws come from the key
    ``mix(key ^ NEXT_LINE_SALT)`` (the same next-line draws whatever the first treatment). The
    next line's course, transplant and post-transplant course are the phases every treatment
    uses; the outcome's days are from the first treatment's day 0 and its progression stays the
    first one.
    """
    key2 = _mix64(key ^ np.uint64(NEXT_LINE_SALT))
    response_lp = (pt.response_lp + (0.0 if pt.salvage2 else par[P_RESP_SALV])
                   + tpar[N_AFTER_FIRST + first])
    pt2 = Patient(pt.cohort, pt.age, True, pt.prior_hsct, pt.ph_positive, pt.blasts, pt.bilirubin_high,
                  pt.eligible, pt.censor - progression, pt.decades, response_lp, pt.sos_lp,
                  _wait(draw(key2, S_PD), pt.progression_rate), pt.t_other - progression, pt.progression_rate)
    course, stage = treatment_course(key2, pt2, then, reg, doses, days, n_doses, par, tpar)
    outcome = after_treatment(key2, pt2, course, par)
    if outcome.hsct_day < math.inf:
        outcome = after_transplant(key2, pt2, course, outcome, reg, par)
    responded = course.remission.in_cr and course.remission.day <= pt2.censor
    return Outcome(progression + outcome.death, outcome.cause, progression, progression + outcome.hsct_day,
                   outcome.hsct_in_cr, progression + outcome.relapse_post_hsct, outcome.sos_post_grade), responded


# ---- phase 5: administrative censoring and the record
@njit(cache=True, inline="always")
def write_record(of, oi, pt, treatment, stage, course, outcome, doses, n_doses, then_start, then_response):
    """Write the patient's record: events after the censoring day are NaN (floats) or 0 (ints).

    PFS ends at the first of progression, death and censoring, OS at the first of death and
    censoring (months). A response counts only if seen by the censoring day.
    """
    nan = math.nan
    censor = pt.censor
    k = pt.cohort
    exposure = course.exposure
    remission = course.remission
    harms = course.harms
    death = outcome.death
    progression = outcome.progression
    hsct = outcome.hsct_day <= censor
    starting_dose = 0.0
    for q in range(n_doses[k, KIND_CYCLE1]):
        starting_dose += doses[k, KIND_CYCLE1, q]
    of[F_CUM_DOSE] = exposure.cum_dose
    of[F_STARTING_DOSE] = starting_dose
    of[F_RESPONSE_DAY] = remission.day if remission.day <= censor else nan
    of[F_HSCT_DAY] = outcome.hsct_day if hsct else nan
    of[F_PROGRESSION_DAY] = progression if progression <= censor else nan
    of[F_DEATH_DAY] = death if death <= censor else nan
    of[F_PFS_MONTHS] = min(progression, death, censor) / MONTH
    of[F_OS_MONTHS] = min(death, censor) / MONTH
    of[F_AGE] = pt.age
    of[F_BLASTS] = pt.blasts
    of[F_CENSOR_DAY] = censor
    of[F_LAST_DOSE_DAY] = exposure.last_dose if exposure.doses > 0 else nan
    of[F_RELAPSE_POST_HSCT_DAY] = outcome.relapse_post_hsct if outcome.relapse_post_hsct <= censor else nan
    of[F_TREATMENT_END_DAY] = course.end if course.end <= censor else nan
    of[F_THEN_START_DAY] = then_start if then_start <= censor else nan
    observed_cr = remission.in_cr and remission.day <= censor
    sos_grade = max(harms.sos_grade, outcome.sos_post_grade)
    oi[I_COHORT] = k
    oi[I_CYCLES] = exposure.cycles
    oi[I_DOSES] = exposure.doses
    oi[I_BEST_RESPONSE] = observed_cr
    oi[I_RESPONSE_CYCLE] = remission.cycle if observed_cr else 0
    oi[I_MRD_NEG] = remission.mrd_neg and observed_cr
    oi[I_G3AE] = harms.g3
    oi[I_SAE] = harms.sae
    oi[I_DISC_AE] = harms.discontinued
    oi[I_HSCT] = hsct
    oi[I_SOS] = sos_grade > 0
    oi[I_SOS_GRADE] = sos_grade
    oi[I_SOS_POST] = outcome.sos_post_grade > 0
    oi[I_SOS_POST_GRADE] = outcome.sos_post_grade
    oi[I_DEATH_CAUSE] = outcome.cause if death <= censor else CAUSE_NONE
    oi[I_PFS_EVENT] = min(progression, death) <= censor
    oi[I_OS_EVENT] = death <= censor
    oi[I_SALVAGE] = 2 if pt.salvage2 else 1
    oi[I_PRIOR_HSCT] = pt.prior_hsct
    oi[I_PH] = pt.ph_positive
    oi[I_BILI] = pt.bilirubin_high
    oi[I_ELIGIBLE] = pt.eligible
    oi[I_HSCT_IN_REMISSION] = hsct and outcome.hsct_in_cr
    oi[I_TREATMENT] = treatment
    oi[I_CRS_GRADE] = harms.crs_grade
    oi[I_NEUROLOGIC] = harms.neurologic
    oi[I_CART_STAGE] = stage
    oi[I_THEN_RESPONSE] = then_response


# Without the runtime's reference counting (``_nrt=False``; this function allocates nothing):
# numba copies every array an inlined phase receives and counts the copy up and down with
# atomic operations, about 20 per cycle, which would make the phases 15-20% slower than
# one long function; without them the kernel is faster than that function was.
@njit(cache=True, _nrt=False)
def simulate_patient(seed, pid, pop, age_table, reg, doses, days, n_doses, par, tpar, fu, of, oi):
    """Simulate one patient and write its record into ``of`` and ``oi``: the phases in turn.

    Parameters
    ----------
    seed, pid : int
        Generator key: run seed and global patient id.
    pop : ndarray, shape (n_cohorts, N_POP)
        Population rows (``POP_*`` columns); ``POP_WEIGHT_CUM`` is cumulative.
    age_table : ndarray, shape (n_cohorts, G)
        Age quantiles (years) at G equally spaced probabilities 0..1.
    reg : ndarray, shape (n_cohorts, N_REG)
        Regimen rows (``REG_*`` columns); lengths in days, cap in mg/m2 (inf: none).
    doses, days : ndarray, shape (n_cohorts, 3, MAX_DOSES_PER_CYCLE)
        Dose (mg/m2) and day-in-cycle of each planned dose, by kind ``KIND_*``.
    n_doses : ndarray of int, shape (n_cohorts, 3)
        Number of planned doses by kind.
    par : ndarray, shape (len(PARAMETER_NAMES),)
        Model parameters (``P_*`` indices).
    tpar : ndarray, shape (len(COMPARATOR_PARAMETER_NAMES),)
        The other treatments' parameters (``C_*`` indices).
    fu : ndarray, shape (n_cohorts, 2)
        Minimum follow-up and accrual period by cohort, months.
    of : ndarray, shape (N_FLOAT,)
        Float record (``F_*`` fields), written.
    oi : ndarray of int, shape (N_INT,)
        Integer record (``I_*`` fields), written.
    """
    key = patient_key(seed, pid)
    pt = covariates(key, pop, age_table, par, fu)
    treatment = int(reg[pt.cohort, REG_TREATMENT])
    then = int(reg[pt.cohort, REG_THEN])
    course, stage = treatment_course(key, pt, treatment, reg, doses, days, n_doses, par, tpar)
    outcome = after_treatment(key, pt, course, par)
    then_start = math.inf
    then_response = False
    if then != NO_TREATMENT and outcome.progression < math.inf and course.death == math.inf \
            and not outcome.hsct_in_cr and pt.t_other > outcome.progression:
        then_start = outcome.progression
        outcome, then_response = next_line(key, pt, treatment, then, then_start, reg, doses, days, n_doses,
                                           par, tpar)
    elif outcome.hsct_day < math.inf:
        outcome = after_transplant(key, pt, course, outcome, reg, par)
    write_record(of, oi, pt, treatment, stage, course, outcome, doses, n_doses, then_start, then_response)


@njit(cache=True, parallel=True)
def simulate_patients(seed, first_patient, pop, age_table, reg, doses, days, n_doses, par, tpar, fu,
                      out_float, out_int):
    """Simulate patients ``first_patient .. first_patient + n - 1`` in parallel.

    Parameters
    ----------
    seed : int
        Run seed (non-negative).
    first_patient : int
        Global id of the first patient; a chunk of a larger run passes its offset,
        which makes results independent of chunking.
    pop, age_table, reg, doses, days, n_doses, par, tpar, fu
        See :func:`simulate_patient`.
    out_float : ndarray, shape (N_FLOAT, n)
        Float records, written.
    out_int : ndarray of int32, shape (N_INT, n)
        Integer records, written.
    """
    for i in prange(out_float.shape[1]):
        simulate_patient(seed, first_patient + i, pop, age_table, reg, doses, days, n_doses,
                         par, tpar, fu, out_float[:, i], out_int[:, i])


# ---- parameter sets (issue 6)
@njit(cache=True, parallel=True)
def simulate_parameter_sets(seed, first_patients, pop, age_table, reg, doses, days, n_doses, par_sets,
                            tpar, fu, out_float, out_int):
    """Simulate patients under each of several parameter vectors, in one parallel loop.

    The workload of probabilistic sensitivity analysis: patients x parameter sets are
    one flat ``prange``, so threads stay busy however few patients or sets there are.
    Set ``s`` simulates patients ``first_patients[s] .. first_patients[s] + n - 1`` and
    gets exactly the records :func:`simulate_patients` gives with ``par = par_sets[s]``
    and that first patient: sets with the same first patient differ only through their
    parameters (common random numbers); sets with disjoint blocks have independent patients.

    Parameters
    ----------
    seed : int
        Run seed (non-negative).
    first_patients : ndarray of int64, shape (n_sets,)
        Global id of each set's first patient (see :func:`simulate_patients`).
    pop, age_table, reg, doses, days, n_doses, tpar, fu
        See :func:`simulate_patient`.
    par_sets : ndarray, shape (n_sets, len(PARAMETER_NAMES))
        One parameter vector per row (``P_*`` columns).
    out_float : ndarray, shape (N_FLOAT, n_sets, n)
        Float records (``F_*`` fields) of patient ``i`` under set ``s`` at ``[:, s, i]``, written.
    out_int : ndarray of int32, shape (N_INT, n_sets, n)
        Integer records (``I_*`` fields), same layout, written.
    """
    n = out_float.shape[2]
    for j in prange(par_sets.shape[0] * n):
        s = j // n
        i = j - s * n
        simulate_patient(seed, first_patients[s] + i, pop, age_table, reg, doses, days, n_doses,
                         par_sets[s], tpar, fu, out_float[:, s, i], out_int[:, s, i])


# ---- randomised trials (issue 11)
@njit(cache=True, parallel=True)
def simulate_patient_ids(seed, ids, pop, age_table, reg, doses, days, n_doses, par, tpar, fu, out_float,
                         out_int):
    """Simulate the patients whose global ids are listed in ``ids``, in parallel.

    A trial simulates each patient only under the arm it is randomised to: the ids of one
    arm's patients need not be contiguous. Patient ``ids[i]`` gets exactly the record
    :func:`simulate_patients` gives it.

    Parameters
    ----------
    seed : int
        Run seed (non-negative).
    ids : ndarray of int64, shape (n,)
        Global patient ids (non-negative, below 2**63).
    pop, age_table, reg, doses, days, n_doses, par, tpar, fu
        See :func:`simulate_patient`.
    out_float : ndarray, shape (N_FLOAT, n)
        Float records of patient ``ids[i]`` at ``[:, i]``, written.
    out_int : ndarray of int32, shape (N_INT, n)
        Integer records, same layout, written.
    """
    for i in prange(ids.shape[0]):
        simulate_patient(seed, ids[i], pop, age_table, reg, doses, days, n_doses, par, tpar, fu,
                         out_float[:, i], out_int[:, i])
