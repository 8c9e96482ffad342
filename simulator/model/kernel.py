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
"""

from __future__ import annotations

import math

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
    P_NRM_CYCLES, P_NRM_TIME, P_NRM_SALV, P_NRM_DUAL, P_HSCT_PRIOR,
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
    REG_STOP_AFTER, REG_REDUCTION, REG_DUAL_ALKYLATOR, REG_C1_EXTENSION,
) = range(10)
N_REG = 10
# dose-table kinds (first axis of the dose tables)
KIND_CYCLE1, KIND_IN_CR, KIND_NOT_IN_CR = 0, 1, 2

# --- output layout. Float fields (NaN = did not happen before censoring):
(
    F_CUM_DOSE, F_STARTING_DOSE, F_RESPONSE_DAY, F_HSCT_DAY, F_PROGRESSION_DAY, F_DEATH_DAY,
    F_PFS_MONTHS, F_OS_MONTHS, F_AGE, F_BLASTS, F_CENSOR_DAY, F_RELAPSE_POST_HSCT_DAY,
    F_LAST_DOSE_DAY,
) = range(13)
N_FLOAT = 13
# Integer fields:
(
    I_COHORT, I_CYCLES, I_DOSES, I_BEST_RESPONSE, I_RESPONSE_CYCLE, I_MRD_NEG, I_G3AE, I_SAE,
    I_DISC_AE, I_HSCT, I_SOS, I_SOS_GRADE, I_SOS_POST, I_DEATH_CAUSE, I_PFS_EVENT, I_OS_EVENT,
    I_SALVAGE, I_PRIOR_HSCT, I_PH, I_BILI, I_ELIGIBLE, I_HSCT_IN_REMISSION, I_SOS_POST_GRADE,
) = range(23)
N_INT = 23

# death causes (the `death_cause` variable)
CAUSE_NONE, CAUSE_PROGRESSION, CAUSE_NRM_POST_HSCT, CAUSE_TOXICITY, CAUSE_OTHER = range(5)
# SOS grades stored in `sos_grade`: 0 none, 1 grade 1-2, 3 grade 3-4, 5 fatal
SOS_MILD, SOS_SEVERE, SOS_FATAL = 1, 3, 5

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
def _remaining(hazard, rate_per_month):
    """Days until ``hazard`` more cumulative hazard accrues at a rate per month (inf if 0)."""
    return hazard / (rate_per_month / MONTH) if rate_per_month > 0.0 else math.inf


@njit(cache=True, inline="always")
def _relapse_rate(par, mrd_neg):
    """Relapse rate per month in remission without HSCT, off treatment."""
    return par[P_REL_RATE] * (1.0 if mrd_neg else math.exp(par[P_REL_MRDPOS]))


@njit(cache=True, inline="always")
def _cycle_stream(cycle, k):
    return CYCLE_STREAM_BASE + cycle * CYCLE_STREAM_STRIDE + k


@njit(cache=True, inline="always")
def _cause_after_progression(key, par):
    """Recorded cause of a death after progression or relapse.

    Trials attribute some of these deaths to the disease and the rest to infections
    or toxicity of later therapy ("other"); the share is a parameter.
    """
    if draw(key, S_DEATH_CAUSE) < par[P_DEATH_PROG_SHARE]:
        return CAUSE_PROGRESSION
    return CAUSE_OTHER


@njit(cache=True)
def simulate_patient(seed, pid, pop, age_table, reg, doses, days, n_doses, par, fu, of, oi):
    """Simulate one patient and write its record into ``of`` and ``oi``.

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
    fu : ndarray, shape (n_cohorts, 2)
        Minimum follow-up and accrual period by cohort, months.
    of : ndarray, shape (N_FLOAT,)
        Float record (``F_*`` fields), written.
    oi : ndarray of int, shape (N_INT,)
        Integer record (``I_*`` fields), written.
    """
    inf = math.inf
    key = patient_key(seed, pid)
    # ---- covariates (patient-level streams: identical under every strategy)
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
    # resistant disease (low chemosensitivity) also progresses faster
    t_pd = _wait(draw(key, S_PD), par[P_PD_RATE] * math.exp(
        par[P_PD_BLASTS] * high_blasts - par[P_PD_RESIST] * sensitivity))
    t_other = _wait(draw(key, S_OTHER), par[P_DEATH_OTHER])

    # ---- treatment, cycle by cycle and dose by dose
    cap = reg[k, REG_CAP]
    cum = 0.0
    n_given = 0
    cycles = 0
    in_cr = False
    mrd_neg = False
    resp_cycle = 0
    resp_day = inf
    rel_e = 0.0  # unit-exponential threshold of the relapse clock (drawn at response)
    rel_h = 0.0  # relapse hazard accrued since response while on treatment
    rate_on = 0.0
    reduced = False
    any_g3 = False
    any_sae = False
    disc_ae = False
    sos = 0
    sos_grade = 0
    sos_post = 0
    sos_post_grade = 0
    death = inf
    cause = CAUSE_NONE
    prog = inf
    hsct_day = inf
    last_dose = 0.0
    start = 0.0
    t_end = 0.0
    max_cycles = int(reg[k, REG_MAX_CYCLES])
    for c in range(1, max_cycles + 1):
        kind = KIND_CYCLE1 if c == 1 else (KIND_IN_CR if in_cr else KIND_NOT_IN_CR)
        scale = 1.0 - reg[k, REG_REDUCTION] if reduced else 1.0
        # the disease event this cycle: relapse (InO changes its rate) or progression
        if in_cr:
            rate_on = _relapse_rate(par, mrd_neg) * math.exp(par[P_REL_ON])
            t_disease = start + _remaining(rel_e - rel_h, rate_on)
        else:
            t_disease = t_pd
        dc = 0.0
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
            dc += d
            n_given += 1
            last_dose = day
        if dc <= 0.0:
            t_end = start
            break
        cycles = c
        rel_dose = math.log(dc / REFERENCE_CYCLE_DOSE)
        g3_int = par[P_G3_C1] if c == 1 else par[P_G3_LATER]
        g3 = draw(key, _cycle_stream(c, K_G3)) < _expit(g3_int + par[P_G3_DOSE] * rel_dose)
        length = reg[k, REG_LEN_C1] if c == 1 else reg[k, REG_LEN_LATER]
        if g3:
            any_g3 = True
            length += 2.0 * par[P_DELAY] * draw(key, _cycle_stream(c, K_DELAY))
        end = start + length
        sae = draw(key, _cycle_stream(c, K_SAE)) < _expit(
            (par[P_SAE_C1] if c == 1 else par[P_SAE_LATER]) + par[P_SAE_NOCR] * (not in_cr)
            + par[P_SAE_DOSE] * rel_dose)
        # response, assessed at the cycle end, which cycle 1 extends (label: to 28 days)
        # until CR/CRi is documented; it counts only if no terminal event comes first
        responds = False
        if not in_cr:
            p = _expit((par[P_RESP_C1] if c == 1 else (par[P_RESP_C2] if c == 2 else par[P_RESP_C3]))
                       + par[P_RESP_DOSE] * rel_dose + resp_lp)
            responds = draw(key, _cycle_stream(c, K_RESPONSE)) < p
            if responds and c == 1:
                end += reg[k, REG_C1_EXTENSION] * draw(key, _cycle_stream(c, K_EXTENSION))
        t_fatal = inf
        if sae:
            any_sae = True
            if draw(key, _cycle_stream(c, K_FATAL)) < par[P_FATAL_TOX]:
                # toxicity of the doses given: death between the cycle's last dose and its end
                t_fatal = last_dose + (end - last_dose) * draw(key, _cycle_stream(c, K_FATAL_T))
        # the first terminal event inside the cycle ends treatment
        t_first = min(t_other, t_disease, t_fatal)
        if t_first < end:
            t_end = t_first
            if t_first == t_fatal:
                death, cause = t_fatal, CAUSE_TOXICITY
            elif t_first == t_other:
                death, cause = t_other, CAUSE_OTHER
            else:
                prog = t_disease
            break
        if in_cr:
            rel_h += rate_on * (end - start) / MONTH
        if responds:
            in_cr = True
            resp_cycle = c
            resp_day = end
            mrd_neg = draw(key, _cycle_stream(c, K_MRD)) < _expit(
                par[P_MRD_INT] + par[P_MRD_DOSE] * rel_dose)
            rel_e = _exp1(draw(key, S_RELAPSE))
            rel_h = 0.0
        elif in_cr and not mrd_neg:
            mrd_neg = draw(key, _cycle_stream(c, K_MRD)) < _expit(
                par[P_MRD_INT] + par[P_MRD_DOSE] * rel_dose)
        # toxicity at cycle end: SOS on treatment, discontinuation, dose reduction
        stop = False
        p = _expit(par[P_SOS_TX] + par[P_SOS_DOSE] * cum + sos_lp)
        if draw(key, _cycle_stream(c, K_SOS)) < p:
            sos = 1
            disc_ae = True
            stop = True
            u = draw(key, _cycle_stream(c, K_SOS_GRADE))
            sos_grade = SOS_FATAL if u < par[P_SOS_FATAL] else (
                SOS_SEVERE if u < par[P_SOS_SEVERE] else SOS_MILD)
            if sos_grade == SOS_FATAL:  # SOS found at the cycle end, death after it
                t_end = end
                death = end + par[P_SOS_DEATH] * _exp1(draw(key, _cycle_stream(c, K_SOS_DEATH)))
                cause = CAUSE_TOXICITY
                break
        if g3:
            if draw(key, _cycle_stream(c, K_DISC)) < _expit(
                    par[P_DISC_INT] + par[P_DISC_CUM] * (cum - REFERENCE_CYCLE_DOSE)):
                disc_ae = True
                stop = True
            if draw(key, _cycle_stream(c, K_REDUCE)) < par[P_REDUCE]:
                reduced = True
        t_end = end
        # transplant-bound rule: enough cycles in remission and a transplant slot
        if in_cr and eligible:
            needed = reg[k, REG_HSCT_CYCLES] + (1.0 if reg[k, REG_HSCT_EXTRA_MRD] > 0 and not mrd_neg else 0.0)
            if c >= needed and draw(key, _cycle_stream(c, K_HSCT_GO)) < par[P_HSCT_GO]:
                hsct_day = end + par[P_HSCT_WAIT] * _exp1(draw(key, S_HSCT_WAIT))
                break
        if stop or capped or (not in_cr and c >= reg[k, REG_STOP_AFTER]):
            break
        start = end

    # ---- after treatment: remission, transplant, progression, death
    hsct_in_cr = False
    relapse_post_hsct = inf
    t_relapse = t_end + _remaining(rel_e - rel_h, _relapse_rate(par, mrd_neg)) if in_cr else inf
    if death == inf:
        if in_cr and prog == inf:
            if hsct_day == inf and eligible:
                hsct_day = t_end + _wait(draw(key, S_HSCT_LATE), par[P_HSCT_LATE])
            if hsct_day < min(t_relapse, t_other):
                hsct_in_cr = True
            else:
                hsct_day = inf
                if t_other < t_relapse:
                    death, cause = t_other, CAUSE_OTHER
                else:
                    prog = t_relapse
        elif prog == inf:  # refractory at treatment end: disease progresses
            if t_other < t_pd:
                death, cause = t_other, CAUSE_OTHER
            else:
                prog = t_pd
        if prog < inf and death == inf:
            # further therapy after progression, then perhaps a transplant
            t_dp = prog + _wait(draw(key, S_DEATH_PROG), par[P_DEATH_PROG])
            if eligible and draw(key, S_SALV_HSCT) < par[P_HSCT_SALV]:
                t_sh = prog + par[P_HSCT_SALV_DAYS] * _exp1(draw(key, S_SALV_HSCT_T))
                if t_sh < min(t_dp, t_other):
                    hsct_day = t_sh
            if hsct_day == inf:
                if t_other < t_dp:
                    death, cause = t_other, CAUSE_OTHER
                else:
                    death, cause = t_dp, _cause_after_progression(key, par)

    # ---- after transplant: SOS, non-relapse mortality, relapse
    if hsct_day < inf:
        gap = hsct_day - last_dose
        dual = draw(key, S_DUAL) < reg[k, REG_DUAL_ALKYLATOR]
        p = _expit(par[P_SOS_POST] + par[P_SOS_DOSE] * cum + sos_lp
                   + par[P_SOS_GAP] * math.exp(-gap / MONTH) + par[P_SOS_DUAL] * dual)
        t_sos_death = inf
        post_grade = 0
        onset = inf
        if draw(key, S_SOS_POST) < p:
            u = draw(key, S_SOS_POST_GRADE)
            post_grade = SOS_FATAL if u < par[P_SOS_FATAL] else (
                SOS_SEVERE if u < par[P_SOS_SEVERE] else SOS_MILD)
            u = draw(key, S_SOS_ONSET)
            onset = hsct_day + par[P_SOS_ONSET] * math.exp(par[P_SOS_SPREAD] * math.log(u / (1.0 - u)))
            if post_grade == SOS_FATAL:
                t_sos_death = onset + par[P_SOS_DEATH] * _exp1(draw(key, S_SOS_DEATH))
        # what raises NRM is a model structure: each driver has its own slope, zero unless chosen
        nrm_lp = (par[P_NRM_AGE] * decades + par[P_NRM_DOSE] * (cum - NRM_REFERENCE_DOSE) + par[P_NRM_PRIOR] * prior
                  + par[P_NRM_CYCLES] * (cycles - NRM_REFERENCE_CYCLES)
                  + par[P_NRM_TIME] * (hsct_day / MONTH - NRM_REFERENCE_MONTHS)
                  + par[P_NRM_SALV] * salvage2 + par[P_NRM_DUAL] * dual)
        # a non-fatal SOS raises the NRM hazard from its onset on
        change = (onset - hsct_day) / MONTH if post_grade == SOS_MILD or post_grade == SOS_SEVERE else inf
        t_nrm = hsct_day + _weibull_step(draw(key, S_NRM), par[P_NRM_RATE] * math.exp(nrm_lp), par[P_NRM_SHAPE],
                                         change, math.exp(par[P_NRM_SOS]))
        rel_lp = (par[P_RELH_MRDPOS] * (hsct_in_cr and not mrd_neg)
                  + par[P_RELH_NOCR] * (not hsct_in_cr))
        t_rh = hsct_day + _weibull(draw(key, S_RELAPSE_HSCT), par[P_RELH_RATE] * math.exp(rel_lp),
                                   par[P_RELH_SHAPE])
        t_nr = min(t_sos_death, t_nrm, t_other)
        if t_nr < t_rh:
            death, cause = t_nr, CAUSE_NRM_POST_HSCT
        else:
            relapse_post_hsct = t_rh
            prog = min(prog, t_rh)
            t_dp = t_rh + _wait(draw(key, S_DEATH_PROG_HSCT), par[P_DEATH_PROG])
            if t_other < t_dp:
                death, cause = t_other, CAUSE_OTHER
            else:
                death, cause = t_dp, _cause_after_progression(key, par)
        # post-HSCT SOS is seen if its onset comes before death and the data cut-off
        if post_grade > 0 and onset <= min(death, censor):
            sos = 1
            sos_post = 1
            sos_post_grade = post_grade
            sos_grade = max(sos_grade, post_grade)

    # ---- administrative censoring and the record
    nan = math.nan
    hsct = hsct_day <= censor
    of[F_CUM_DOSE] = cum
    of[F_STARTING_DOSE] = 0.0
    for q in range(n_doses[k, KIND_CYCLE1]):
        of[F_STARTING_DOSE] += doses[k, KIND_CYCLE1, q]
    of[F_RESPONSE_DAY] = resp_day if resp_day <= censor else nan
    of[F_HSCT_DAY] = hsct_day if hsct else nan
    of[F_PROGRESSION_DAY] = prog if prog <= censor else nan
    of[F_DEATH_DAY] = death if death <= censor else nan
    of[F_PFS_MONTHS] = min(prog, death, censor) / MONTH
    of[F_OS_MONTHS] = min(death, censor) / MONTH
    of[F_AGE] = age
    of[F_BLASTS] = blasts
    of[F_CENSOR_DAY] = censor
    of[F_LAST_DOSE_DAY] = last_dose if n_given > 0 else nan
    of[F_RELAPSE_POST_HSCT_DAY] = relapse_post_hsct if relapse_post_hsct <= censor else nan
    oi[I_COHORT] = k
    oi[I_CYCLES] = cycles
    oi[I_DOSES] = n_given
    observed_cr = in_cr and resp_day <= censor
    oi[I_BEST_RESPONSE] = observed_cr
    oi[I_RESPONSE_CYCLE] = resp_cycle if observed_cr else 0
    oi[I_MRD_NEG] = mrd_neg and observed_cr
    oi[I_G3AE] = any_g3
    oi[I_SAE] = any_sae
    oi[I_DISC_AE] = disc_ae
    oi[I_HSCT] = hsct
    oi[I_SOS] = sos
    oi[I_SOS_GRADE] = sos_grade
    oi[I_SOS_POST] = sos_post
    oi[I_SOS_POST_GRADE] = sos_post_grade
    oi[I_DEATH_CAUSE] = cause if death <= censor else CAUSE_NONE
    oi[I_PFS_EVENT] = min(prog, death) <= censor
    oi[I_OS_EVENT] = death <= censor
    oi[I_SALVAGE] = 2 if salvage2 else 1
    oi[I_PRIOR_HSCT] = prior
    oi[I_PH] = ph
    oi[I_BILI] = bili
    oi[I_ELIGIBLE] = eligible
    oi[I_HSCT_IN_REMISSION] = hsct and hsct_in_cr


@njit(cache=True, parallel=True)
def simulate_patients(seed, first_patient, pop, age_table, reg, doses, days, n_doses, par, fu,
                      out_float, out_int):
    """Simulate patients ``first_patient .. first_patient + n - 1`` in parallel.

    Parameters
    ----------
    seed : int
        Run seed (non-negative).
    first_patient : int
        Global id of the first patient; a chunk of a larger run passes its offset,
        which makes results independent of chunking.
    pop, age_table, reg, doses, days, n_doses, par, fu
        See :func:`simulate_patient`.
    out_float : ndarray, shape (N_FLOAT, n)
        Float records, written.
    out_int : ndarray of int32, shape (N_INT, n)
        Integer records, written.
    """
    for i in prange(out_float.shape[1]):
        simulate_patient(seed, first_patient + i, pop, age_table, reg, doses, days, n_doses,
                         par, fu, out_float[:, i], out_int[:, i])


# ---- experiment reductions (issue 4)
# Many simulated trials at once: arrays of shape (sets, trials * patients) hold, per
# set (a variable or a subgroup), ``trials`` trials of ``patients`` patients laid end
# to end; ``include`` marks the patients counted. One parallel loop covers every
# (set, trial) block, so a sweep needs no Python loop over trials.
@njit(cache=True, inline="always")
def _block(values, include, p, lo, patients):
    """The included values of one block, in patient order."""
    count = 0
    for i in range(lo, lo + patients):
        count += include[p, i]
    out = np.empty(count, values.dtype)
    k = 0
    for i in range(lo, lo + patients):
        if include[p, i]:
            out[k] = values[p, i]
            k += 1
    return out


@njit(cache=True)
def _kaplan_meier_block(t, e, at, taus, surv, rmst):
    """Kaplan-Meier estimate of one block; writes S(at) and RMST(taus), returns the median."""
    n = t.shape[0]
    o = np.argsort(t)
    s = 1.0
    median = np.nan
    at_risk = n
    last = 0.0  # the previous event time: S has been s since then
    j = 0
    i = 0
    rmst[:] = 0.0
    while i < n:
        ti = t[o[i]]
        deaths = 0
        tied = 0
        while i + tied < n and t[o[i + tied]] == ti:
            deaths += e[o[i + tied]]
            tied += 1
        if deaths > 0:
            while j < at.shape[0] and at[j] < ti:
                surv[j] = s
                j += 1
            for m in range(taus.shape[0]):
                if last < taus[m]:
                    rmst[m] += s * (min(ti, taus[m]) - last)
            last = ti
            s *= 1.0 - deaths / at_risk
            if s <= 0.5 and math.isnan(median):
                median = ti
        at_risk -= tied
        i += tied
    surv[j:] = s
    for m in range(taus.shape[0]):
        if last < taus[m]:
            rmst[m] += s * (taus[m] - last)
    return median


@njit(cache=True, parallel=True)
def km_by_trial(time, event, include, patients, at, taus):
    """Kaplan-Meier summaries of every trial of every set.

    Parameters
    ----------
    time : ndarray of float, shape (sets, trials * patients)
        Follow-up times (months).
    event : ndarray of bool, same shape
        True where the event was observed, False where censored.
    include : ndarray of bool, same shape
        The patients counted.
    patients : int
        Patients per trial.
    at : ndarray of float, shape (k,)
        Increasing times (months) at which S(t) is read: S just after every event at
        or before t.
    taus : ndarray of float, shape (m,)
        Horizons (months) of restricted mean survival times.

    Returns
    -------
    median : ndarray, shape (sets, trials)
        First event time at which S(t) <= 0.5 (NaN if never, or nobody counted).
    surv : ndarray, shape (sets, trials, k)
        S(at) (NaN if nobody counted).
    rmst : ndarray, shape (sets, trials, m)
        Integral of S(t) from 0 to each tau, months (NaN if nobody counted).
    """
    sets = time.shape[0]
    trials = time.shape[1] // patients
    median = np.full((sets, trials), np.nan)
    surv = np.full((sets, trials, at.shape[0]), np.nan)
    rmst = np.full((sets, trials, taus.shape[0]), np.nan)
    for b in prange(sets * trials):
        p, r = b // trials, b % trials
        t = _block(time, include, p, r * patients, patients)
        if t.shape[0] > 0:
            e = _block(event, include, p, r * patients, patients)
            median[p, r] = _kaplan_meier_block(t, e, at, taus, surv[p, r], rmst[p, r])
    return median, surv, rmst


@njit(cache=True, parallel=True)
def median_by_trial(values, include, patients):
    """Sample median of the included values of every trial of every set.

    Parameters
    ----------
    values : ndarray of float, shape (sets, trials * patients)
        One value per patient.
    include : ndarray of bool, same shape
        The patients counted.
    patients : int
        Patients per trial.

    Returns
    -------
    ndarray, shape (sets, trials)
        NaN where nobody is counted.
    """
    sets = values.shape[0]
    trials = values.shape[1] // patients
    out = np.full((sets, trials), np.nan)
    for b in prange(sets * trials):
        p, r = b // trials, b % trials
        x = _block(values, include, p, r * patients, patients)
        if x.shape[0] > 0:
            out[p, r] = np.median(x)
    return out


# ---- benchmarks and parameter sets (issue 6)
@njit(cache=True, parallel=True)
def simulate_parameter_sets(seed, first_patients, pop, age_table, reg, doses, days, n_doses, par_sets,
                            fu, out_float, out_int):
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
    pop, age_table, reg, doses, days, n_doses, fu
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
                         par_sets[s], fu, out_float[:, s, i], out_int[:, s, i])


@njit(cache=True)
def sum_exp(x):
    """Sum of ``exp(-x[i])``: scalar libm ``exp`` calls as the kernel makes them (benchmark floor)."""
    total = 0.0
    for i in range(x.shape[0]):
        total += math.exp(-x[i])
    return total


@njit(cache=True)
def sum_log(x):
    """Sum of ``log(x[i])``: scalar libm ``log`` calls as the kernel makes them (benchmark floor)."""
    total = 0.0
    for i in range(x.shape[0]):
        total += math.log(x[i])
    return total


# ---- randomised trials (issue 11)
@njit(cache=True, parallel=True)
def simulate_patient_ids(seed, ids, pop, age_table, reg, doses, days, n_doses, par, fu, out_float, out_int):
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
    pop, age_table, reg, doses, days, n_doses, par, fu
        See :func:`simulate_patient`.
    out_float : ndarray, shape (N_FLOAT, n)
        Float records of patient ``ids[i]`` at ``[:, i]``, written.
    out_int : ndarray of int32, shape (N_INT, n)
        Integer records, same layout, written.
    """
    for i in prange(ids.shape[0]):
        simulate_patient(seed, ids[i], pop, age_table, reg, doses, days, n_doses, par, fu,
                         out_float[:, i], out_int[:, i])
