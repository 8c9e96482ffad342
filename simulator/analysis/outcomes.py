"""Summaries computed the way the publications computed them.

Rates carry exact Clopper-Pearson intervals, medians of survival times come from
Kaplan-Meier curves with Brookmeyer-Crowley intervals, other medians from order
statistics. Every summary can be grouped by realised cumulative dose at a cutoff,
as the pooled analysis grouped its patients. On simulated data these intervals
are the Monte Carlo uncertainty of the estimate.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import special  # its quantiles, bit for bit scipy.stats' (which takes 0.8 s to import)

from simulator.model.kernel import (
    CAUSE_NRM_POST_HSCT,
    CAUSE_PROGRESSION,
    DOSE_EPS,
    MONTH,
    SOS_SEVERE,
    TREAT_INO,
)

CONFIDENCE = 0.95
DEFAULT_CUTOFF = 3.3  # mg/m2
POOLED_ANALYSIS_PATIENTS = 338  # the pooled analysis' size: the default trial-sized replicate
RECORD_ATTRS = ("seed", "inosim_version")  # carried from the patient records to their summary


def clopper_pearson(k: int, n: int, level: float = CONFIDENCE) -> tuple[float, float]:
    """Exact binomial confidence interval for k successes out of n (NaN if n = 0)."""
    if n == 0:
        return np.nan, np.nan
    a = 1.0 - level
    lo = special.betaincinv(k, n - k + 1, a / 2) if k > 0 else 0.0  # the beta distribution's quantiles
    hi = special.betaincinv(k + 1, n - k, 1 - a / 2) if k < n else 1.0
    return float(lo), float(hi)


def kaplan_meier(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate at the distinct event times.

    ``S(t_i) = prod_{k <= i} (1 - d_k / n_k)`` and Greenwood's
    ``var log S(t_i) = sum_{k <= i} d_k / (n_k (n_k - d_k))`` (inf once ``d_k = n_k``), with
    ``d_k`` events among ``n_k`` at risk at the k-th event time. The vectorised form of the
    jitted walk of :mod:`simulator.analysis.reductions`: the same products and sums in the
    same order, so the same numbers to the last bit, and its oracle in the tests.

    Returns
    -------
    times, survival, se_log : ndarray
        Event times, S(t) just after each, and Greenwood's standard error of log S(t).
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(bool)
    order = np.argsort(time, kind="stable")
    t, e = time[order], event[order]
    uniq, first = np.unique(t, return_index=True)
    at_risk = len(t) - first
    deaths = np.add.reduceat(e.astype(np.int64), first) if len(t) else np.array([], dtype=np.int64)
    keep = deaths > 0
    uniq, at_risk, deaths = uniq[keep], at_risk[keep], deaths[keep]
    surv = np.cumprod(1.0 - deaths / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.cumsum(deaths / (at_risk * (at_risk - deaths)))
    return uniq, surv, np.sqrt(var)


def km_median(time: np.ndarray, event: np.ndarray, level: float = CONFIDENCE) -> tuple[float, float, float]:
    """Kaplan-Meier median with the Brookmeyer-Crowley interval (log transform).

    The median is the first time S(t) <= 0.5; the interval runs from the first
    time the lower pointwise band reaches 0.5 to the first time the upper band
    does (NaN where it never does within follow-up), as R's ``survival`` reports it.
    """
    if len(time) == 0:
        return np.nan, np.nan, np.nan
    t, s, se = kaplan_meier(time, event)
    z = special.ndtri(0.5 + level / 2)
    with np.errstate(invalid="ignore", over="ignore"):
        upper = np.minimum(s * np.exp(z * np.nan_to_num(se, nan=np.inf)), 1.0)
        lower = s * np.exp(-z * np.nan_to_num(se, nan=np.inf))
    return km_first_below(t, s), km_first_below(t, lower), km_first_below(t, upper)


def km_first_below(times: np.ndarray, curve: np.ndarray, level: float = 0.5) -> float:
    """First of ``times`` at which a Kaplan-Meier curve (or a band of it) is at or below
    ``level`` (NaN if it never is): the median at 0.5, quantile q at 1 - q."""
    idx = np.flatnonzero(curve <= level)
    return float(times[idx[0]]) if len(idx) else np.nan


def km_survival_at(time: np.ndarray, event: np.ndarray, at: float, level: float = CONFIDENCE
                   ) -> tuple[float, float, float]:
    """Kaplan-Meier S(at) with a log-log pointwise confidence interval."""
    if len(time) == 0:
        return np.nan, np.nan, np.nan
    t, s, se = kaplan_meier(time, event)
    idx = np.searchsorted(t, at, side="right") - 1
    if idx < 0:
        return 1.0, 1.0, 1.0
    sv, sev = s[idx], se[idx]
    if sv <= 0.0 or sv >= 1.0 or not np.isfinite(sev):
        return float(sv), float(sv), float(sv)
    z = special.ndtri(0.5 + level / 2)
    w = z * sev / abs(np.log(sv))
    return float(sv), float(sv ** np.exp(w)), float(sv ** np.exp(-w))


def cumulative_incidence(time: np.ndarray, cause: np.ndarray, at: float, of: int = 1) -> float:
    """Aalen-Johansen cumulative incidence of cause ``of`` by time ``at``.

    Parameters
    ----------
    time : ndarray
        Time to the first event or censoring.
    cause : ndarray of int
        0 censored, otherwise the cause of the first event (competing risks).
    at : float
        Time at which the incidence is read (same unit as ``time``).
    of : int
        The cause of interest.
    """
    time = np.asarray(time, dtype=float)
    cause = np.asarray(cause)
    if len(time) == 0:
        return np.nan
    order = np.argsort(time, kind="stable")
    t, c = time[order], cause[order]
    uniq, first = np.unique(t, return_index=True)
    at_risk = len(t) - first
    any_event = np.add.reduceat((c > 0).astype(np.int64), first)
    of_interest = np.add.reduceat((c == of).astype(np.int64), first)
    surv_after = np.cumprod(1.0 - any_event / at_risk)
    surv_before = np.concatenate(([1.0], surv_after[:-1]))
    increments = surv_before * of_interest / at_risk
    return float(increments[uniq <= at].sum())


def median_ci(x: np.ndarray, level: float = CONFIDENCE) -> tuple[float, float, float]:
    """Sample median with a distribution-free (order-statistic) confidence interval."""
    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    if n == 0:
        return np.nan, np.nan, np.nan
    lo, hi = _order_statistics(n, level)
    return float(np.median(x)), float(x[lo]), float(x[hi])


def _order_statistics(n: int, level: float) -> tuple[int, int]:
    """Indices into the sorted sample of the distribution-free interval of the median."""
    try:  # the ufuncs scipy.stats.binom.ppf and .isf call, without importing scipy.stats (0.8 s)
        from scipy.special._ufuncs import _binom_isf as isf
        from scipy.special._ufuncs import _binom_ppf as ppf
    except ImportError:  # an older scipy keeps them in scipy.stats._boost
        from scipy.stats import binom

        ppf, isf = binom.ppf, binom.isf

    a = 1.0 - level
    lo = int(ppf(a / 2, n, 0.5))
    hi = min(int(isf(a / 2, n, 0.5)), n - 1)
    return max(lo - 1, 0), hi


MERGE_BLOCK = 1 << 20  # entries a merge step takes from all sorted runs together


def _merged(runs: list[tuple[np.ndarray, np.ndarray]], block: int = MERGE_BLOCK, whole_ties: bool = True
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of ``(time, event)`` in ascending time, from runs each sorted by time.

    A k-way merge in blocks: an entry is passed on only when it is below (with
    ``whole_ties``; else at most) the last loaded entry of every run not yet read to
    its end, so nothing smaller can follow. With ``whole_ties`` every entry of a
    given time is in one block (what a Kaplan-Meier step needs), so a block also
    holds the largest group of equal times; without, memory is about ``block``
    entries whatever the runs' total length.
    """
    read = [0] * len(runs)
    loaded = [(t[:0], e[:0]) for t, e in runs]
    per = max(block // max(len(runs), 1), 1)  # entries read ahead from each run
    while True:
        for r, (t, e) in enumerate(runs):
            lt, le = loaded[r]
            if len(lt) < per and read[r] < len(t):
                stop = min(len(t), read[r] + per - len(lt))
                loaded[r] = (np.concatenate((lt, t[read[r]:stop])), np.concatenate((le, e[read[r]:stop])))
                read[r] = stop
        if not any(len(lt) for lt, _ in loaded):
            return
        pending = [loaded[r][0][-1] for r, (t, _) in enumerate(runs) if read[r] < len(t)]
        bound = min(pending) if pending else np.inf
        taken_t, taken_e = [], []
        for r, (lt, le) in enumerate(loaded):
            k = int(np.searchsorted(lt, bound, side="left" if pending and whole_ties else "right"))
            taken_t.append(lt[:k])
            taken_e.append(le[:k])
            loaded[r] = (lt[k:], le[k:])
        t, e = np.concatenate(taken_t), np.concatenate(taken_e)
        if not len(t):  # a run's loaded entries all equal the bound: read further ahead
            per *= 2
            continue
        order = np.argsort(t, kind="stable")
        yield t[order], e[order]


def km_median_of_runs(runs: list[tuple[np.ndarray, np.ndarray]], level: float = CONFIDENCE,
                      block: int = MERGE_BLOCK) -> tuple[float, float, float]:
    """:func:`km_median` of the union of runs sorted by time, read in blocks: the same numbers.

    Parameters
    ----------
    runs : list of (time, event)
        Each sorted by time (stably); arrays or memory maps.
    level : float
        Confidence level of the Brookmeyer-Crowley interval.
    block : int
        Entries merged at a time (memory); the result does not depend on it.
    """
    total = sum(len(t) for t, _ in runs)
    if total == 0:
        return np.nan, np.nan, np.nan
    z = special.ndtri(0.5 + level / 2)
    found = [np.nan, np.nan, np.nan]
    before, surv_carry, var_carry = 0, 1.0, 0.0
    for t, e in _merged(runs, block):
        uniq, first = np.unique(t, return_index=True)
        at_risk = total - before - first
        deaths = np.add.reduceat(e.astype(np.int64), first)
        before += len(t)
        keep = deaths > 0
        uniq, at_risk, deaths = uniq[keep], at_risk[keep], deaths[keep]
        if not len(uniq):
            continue
        # carried into the sequential products and sums: the same operations as one pass
        surv = np.cumprod(np.concatenate(([surv_carry], 1.0 - deaths / at_risk)))[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.cumsum(np.concatenate(([var_carry], deaths / (at_risk * (at_risk - deaths)))))[1:]
        surv_carry, var_carry = surv[-1], var[-1]
        se = np.sqrt(var)
        with np.errstate(invalid="ignore", over="ignore"):
            upper = np.minimum(surv * np.exp(z * np.nan_to_num(se, nan=np.inf)), 1.0)
            lower = surv * np.exp(-z * np.nan_to_num(se, nan=np.inf))
        for k, curve in enumerate((surv, lower, upper)):
            if np.isnan(found[k]):
                found[k] = km_first_below(uniq, curve)
        if not np.isnan(found).any():
            break
    return found[0], found[1], found[2]


def median_ci_of_runs(runs: list[tuple[np.ndarray, np.ndarray]], level: float = CONFIDENCE,
                      block: int = MERGE_BLOCK) -> tuple[float, float, float]:
    """:func:`median_ci` of the union of sorted runs (values, ignored flags), read in blocks: the same numbers."""
    n = sum(len(t) for t, _ in runs)
    if n == 0:
        return np.nan, np.nan, np.nan
    lo, hi = _order_statistics(n, level)
    middle = sorted({(n - 1) // 2, n // 2})
    wanted = sorted({*middle, lo, hi})
    value, start = {}, 0
    for t, _ in _merged(runs, block, whole_ties=False):  # ties need not share a block here
        for w in wanted:
            if start <= w < start + len(t):
                value[w] = t[w - start]
        start += len(t)
        if start > wanted[-1]:
            break
    return float(np.mean([value[m] for m in middle])), float(value[lo]), float(value[hi])


@dataclass(frozen=True)
class HazardRatio:
    """A Cox proportional-hazards ratio of one binary covariate with its Wald 95% CI."""

    estimate: float
    lower: float
    upper: float
    log_se: float  # standard error of log(estimate)
    events: int
    patients: int


COX_TOLERANCE = 1e-12  # Newton-Raphson stops when a step in log HR is smaller than this
COX_LOGLIK_RTOL = 1e-12  # a step is kept unless it lowers the log likelihood by more than this (relative)
COX_MAX_STEPS = 50


def _cox_terms(beta: float, d0: np.ndarray, d1: np.ndarray, n0: np.ndarray, n1: np.ndarray,
               ties: str) -> tuple[float, float, float]:
    """Log partial likelihood, score and information of a binary covariate at ``beta``.

    Per distinct event time: ``d0``/``d1`` events and ``n0``/``n1`` at risk with covariate
    0/1. Efron replaces the tied events' share of the risk set by its l/d-th fraction for
    the l-th tied event; Breslow keeps the whole risk set for every tied event.
    """
    r = math.exp(beta)
    d = d0 + d1
    step = np.repeat(np.arange(len(d)), d)  # one row per event
    frac = np.arange(len(step)) - np.repeat(np.cumsum(d) - d, d)  # l = 0 .. d - 1 within a time
    frac = frac / np.repeat(d, d) if ties == "efron" else np.zeros(len(step))
    s0 = (n0 + n1 * r)[step] - frac * (d0 + d1 * r)[step]
    s1 = (n1 * r)[step] - frac * (d1 * r)[step]
    mean = s1 / s0
    loglik = beta * d1.sum() - np.log(s0).sum()
    return float(loglik), float(d1.sum() - mean.sum()), float((mean * (1.0 - mean)).sum())


def cox_hazard_ratio(time: np.ndarray, event: np.ndarray, group: np.ndarray, ties: str = "efron",
                     level: float = CONFIDENCE) -> HazardRatio:
    """Cox hazard ratio of ``group`` (True) vs the rest, by Newton-Raphson on the partial likelihood.

    Parameters
    ----------
    time : ndarray of float
        Time to the event or censoring (any unit).
    event : ndarray of bool
        True where the event was observed.
    group : ndarray of bool
        The binary covariate; the ratio is hazard(True) / hazard(False).
    ties : {"efron", "breslow"}
        Handling of tied event times (lifelines and R's ``coxph`` default to Efron).

    Returns
    -------
    HazardRatio
        NaN where the estimate is 0 or infinite: a group is empty or has no event, or
        the likelihood is monotone (Newton-Raphson does not converge).
    """
    if ties not in ("efron", "breslow"):
        raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    group = np.asarray(group, dtype=bool)
    n_events = int(event.sum())
    if not (event & group).any() or not (event & ~group).any():
        return HazardRatio(np.nan, np.nan, np.nan, np.nan, n_events, len(time))
    times = np.unique(time[event])
    d1 = np.bincount(np.searchsorted(times, time[event & group]), minlength=len(times))
    d0 = np.bincount(np.searchsorted(times, time[event & ~group]), minlength=len(times))
    sorted1, sorted0 = np.sort(time[group]), np.sort(time[~group])
    n1 = len(sorted1) - np.searchsorted(sorted1, times, side="left")
    n0 = len(sorted0) - np.searchsorted(sorted0, times, side="left")
    beta = 0.0
    loglik, score, info = _cox_terms(beta, d0, d1, n0, n1, ties)
    step = math.inf
    for _ in range(COX_MAX_STEPS):
        if not info > 0.0:  # the likelihood flattens out: beta runs off to +-inf
            break
        step = score / info
        while True:  # halve the step until the likelihood does not fall
            new = _cox_terms(beta + step, d0, d1, n0, n1, ties)
            if new[0] >= loglik - COX_LOGLIK_RTOL * abs(loglik) or abs(step) < COX_TOLERANCE:
                break
            step /= 2.0
        beta += step
        loglik, score, info = new
        if abs(step) < COX_TOLERANCE:
            break
    if abs(step) >= COX_TOLERANCE:  # monotone likelihood: one group's events all come first
        return HazardRatio(np.nan, np.nan, np.nan, np.nan, n_events, len(time))
    se = 1.0 / math.sqrt(info)
    z = special.ndtri(0.5 + level / 2)
    return HazardRatio(math.exp(beta), math.exp(beta - z * se), math.exp(beta + z * se), se, n_events,
                       len(time))


# ----------------------------------------------------------------------------- metric table
@dataclass(frozen=True)
class Metric:
    """One summary figure: how to pick its patients and compute it."""

    id: str
    label: str
    unit: str  # "%" for rates and shares (stored as fractions), else the unit
    kind: str  # "rate", "km_median", "median"
    among: Callable[[dict], np.ndarray]  # the denominator (boolean mask over patients)
    value: Callable[[dict], np.ndarray]  # the outcome (bool for rates, numbers for medians)
    # which direction is better for patients: "higher", "lower", or "" where neither is
    # (e.g. the HSCT rate, the cumulative dose); P(better) and the sign of a benefit read it
    better: str = field(default="", kw_only=True)


def _v(name: str) -> Callable[[dict], np.ndarray]:
    return lambda d: d[name]


def every_patient(d: dict) -> np.ndarray:
    """The denominator of a figure over all patients (a mask of ones)."""
    return np.ones_like(d["hsct"], dtype=bool)


def _early(d: dict) -> np.ndarray:
    return d["response_cycle"] == 1


def _early_hsct(d: dict) -> np.ndarray:
    return (d["response_cycle"] == 1) & d["hsct"]


METRICS = (
    Metric("cr_cri", "CR/CRi rate", "%", "rate", every_patient, _v("best_response"), better="higher"),
    Metric("hsct", "proceeded to HSCT", "%", "rate", every_patient, _v("hsct")),
    Metric("time_to_remission_median_months", "median time to CR/CRi, responders", "months",
           "median", _v("best_response"), lambda d: d["response_day"] / MONTH),
    Metric("early_responder_hsct", "HSCT, early responders", "%", "rate", _early, _v("hsct")),
    Metric("early_responder_pfs_median_months", "median PFS, early responders", "months",
           "km_median", _early, _v("pfs"), better="higher"),
    Metric("early_responder_os_median_months", "median OS, early responders", "months",
           "km_median", _early, _v("os"), better="higher"),
    Metric("deaths_from_progression_share", "deaths from progression, of deaths", "%", "rate",
           lambda d: d["os_event"], lambda d: d["death_cause"] == CAUSE_PROGRESSION),
    Metric("grade3plus_ae", "any grade >=3 AE", "%", "rate", every_patient, _v("grade3_ae"), better="lower"),
    Metric("discontinued_for_ae", "discontinued for AE", "%", "rate", every_patient, _v("discontinued_ae"), better="lower"),
    Metric("serious_ae", "any serious AE", "%", "rate", every_patient, _v("serious_ae"), better="lower"),
    Metric("post_hsct_sos_any", "SOS after HSCT, of transplanted", "%", "rate", _v("hsct"),
           _v("sos_post_hsct"), better="lower"),
    Metric("post_hsct_sos_grade34", "grade >=3 SOS after HSCT, transplanted", "%", "rate",
           _v("hsct"), lambda d: d["sos_post_hsct_grade"] >= SOS_SEVERE, better="lower"),
    Metric("post_hsct_mortality", "death after HSCT, of transplanted", "%", "rate", _v("hsct"),
           _v("os_event"), better="lower"),
    Metric("post_hsct_nrm", "non-relapse mortality after HSCT", "%", "rate", _v("hsct"),
           lambda d: d["death_cause"] == CAUSE_NRM_POST_HSCT, better="lower"),
    Metric("early_responder_post_hsct_mortality", "death after HSCT, early responders", "%",
           "rate", _early_hsct, _v("os_event"), better="lower"),
    Metric("early_responder_post_hsct_nrm", "NRM after HSCT, early responders", "%", "rate",
           _early_hsct, lambda d: d["death_cause"] == CAUSE_NRM_POST_HSCT, better="lower"),
    Metric("cumulative_dose_median_mg_m2", "median cumulative dose", "mg/m2", "median", every_patient,
           _v("cumulative_dose")),
    Metric("mrd_negative_among_responders", "MRD negativity, of CR/CRi", "%", "rate",
           _v("best_response"), _v("mrd_negative"), better="higher"),
    Metric("sos_any", "SOS/VOD at any time", "%", "rate", every_patient, _v("sos"), better="lower"),
    Metric("pfs_median_months", "median PFS", "months", "km_median", every_patient, _v("pfs"), better="higher"),
    Metric("pfs_protocol_median_months", "median PFS, INO-VATE definition", "months", "km_median",
           every_patient, _v("pfs_protocol"), better="higher"),
    Metric("remission_duration_median_months", "median duration of CR/CRi, responders", "months",
           "km_median", _v("best_response"), _v("remission"), better="higher"),
    Metric("os_median_months", "median OS", "months", "km_median", every_patient, _v("os"), better="higher"),
)
METRIC_IDS = tuple(m.id for m in METRICS)
# what summarize_chunks writes to disk per patient at most: time and event flag (9 bytes) for
# each Kaplan-Meier median, value and an unused flag for each other median
SPILL_BYTES = 9 * sum(m.kind != "rate" for m in METRICS)


# INO-VATE's protocol counts "starting new induction therapy without achieving CR/CRi" as a PFS
# event; the model does not simulate later therapy, so a patient who ends InO without CR/CRi
# (alive and progression-free) starts it this many days after the last InO dose: the label's
# response assessment at the end of the cycle (day 21-28 after a day-15 dose). An assumption;
# 0 and 28 days give the same median and 12-month PFS to 0.01 months and 0.1 points.
NEW_INDUCTION_GAP_DAYS = 14.0


def _time_to_first(d, start_day: np.ndarray, *end_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Months from ``start_day`` to the first of ``end_days`` (NaN: never), censored at the cut-off."""
    censor = np.asarray(d["censor_day"])
    end = np.fmin.reduce([np.nan_to_num(np.asarray(e, dtype=float), nan=np.inf) for e in end_days])
    observed = end <= censor
    return (np.where(observed, end, censor) - start_day) / MONTH, observed


def remission_duration(d) -> tuple[np.ndarray, np.ndarray]:
    """Duration of CR/CRi as INO-VATE defines it, months, and whether it ended before the cut-off.

    From the first CR/CRi to relapse or progression or death from any cause, whichever
    comes first (a transplant does not censor it); NaN for patients without an observed
    CR/CRi. ``d``: patient records (a Dataset or :func:`patient_columns`).
    """
    return _time_to_first(d, np.asarray(d["response_day"]), d["progression_day"], d["death_day"])


def protocol_pfs(d) -> tuple[np.ndarray, np.ndarray]:
    """Progression-free survival as INO-VATE's protocol defines it, months, and the event flag.

    From the first dose to progression or relapse, death, or the start of new induction
    therapy without CR/CRi, whichever comes first; the last is
    :data:`NEW_INDUCTION_GAP_DAYS` after the last InO dose of a patient who never reached
    CR/CRi, or the day another treatment ended without CR/CRi (its response assessment).
    The ``pfs_months`` record waits for progression instead. (Post-HSCT therapy
    without CR/CRi, the protocol's other event, comes only after a progression in the model.)
    """
    never = np.asarray(d["best_response"]) == 0
    last = np.nan_to_num(np.asarray(d["last_dose_day"], dtype=float), nan=0.0)
    ended = np.nan_to_num(np.asarray(d["treatment_end_day"], dtype=float), nan=np.inf)
    new_induction = np.where(never, np.where(np.asarray(d["treatment"]) == TREAT_INO,
                                             last + NEW_INDUCTION_GAP_DAYS, ended), np.inf)
    return _time_to_first(d, np.zeros(len(never)), d["progression_day"], d["death_day"], new_induction)


FLAG_VARIABLES = ("best_response", "hsct", "os_event", "grade3_ae", "discontinued_ae", "serious_ae",
                  "sos_post_hsct", "mrd_negative", "sos", "pfs_event")


def patient_columns(records: Mapping[str, np.ndarray] | xr.Dataset) -> dict:
    """Every per-patient variable as a numpy array, flags as bool, plus survival pairs.

    ``records``: the kernel's :func:`simulator.model.simulation.record_columns`, or a
    Dataset of patient records (its variables along ``patient``). ``"pfs"``, ``"os"``,
    ``"pfs_protocol"`` (:func:`protocol_pfs`) and ``"remission"`` (:func:`remission_duration`)
    hold (months, event) tuples for Kaplan-Meier metrics.
    """
    if isinstance(records, xr.Dataset):
        records = {name: v.values for name, v in records.data_vars.items() if v.dims == ("patient",)}
    d = dict(records)
    for name in FLAG_VARIABLES:
        d[name] = d[name].astype(bool)
    d["pfs"] = (d["pfs_months"], d["pfs_event"])
    d["os"] = (d["os_months"], d["os_event"])
    d["pfs_protocol"] = protocol_pfs(d)
    d["remission"] = remission_duration(d)
    return d


def group_masks(records: Mapping[str, np.ndarray] | xr.Dataset, cutoff: float | None = DEFAULT_CUTOFF
                ) -> dict[str, np.ndarray]:
    """Boolean masks of the groups: realised cumulative dose <= cutoff, > cutoff, all (records as
    :func:`patient_columns` takes them)."""
    dose = np.asarray(records["cumulative_dose"])
    masks = {"all": np.ones(dose.shape, dtype=bool)}
    if cutoff is not None:
        low = dose <= cutoff + DOSE_EPS
        masks = {"le": low, "gt": ~low, **masks}
    return masks


def summarize(ds: xr.Dataset, cutoff: float | None = DEFAULT_CUTOFF,
              metrics: tuple[str, ...] = METRIC_IDS) -> xr.Dataset:
    """Summarise patient records by realised cumulative dose, as the pooled analysis did.

    Parameters
    ----------
    ds : xarray.Dataset
        Patient records from :func:`simulator.simulate`.
    cutoff : float or None
        Cumulative-dose cutoff in mg/m2; groups are ``le`` (<= cutoff), ``gt``
        (> cutoff) and ``all``. ``None`` gives only ``all``.
    metrics : tuple of str
        Metric ids (see ``METRIC_IDS``).

    Returns
    -------
    xarray.Dataset
        Variables ``estimate``, ``lower``, ``upper`` (95% CI) and ``n`` (patients
        in the denominator) over dimensions ``metric`` and ``group``; rates and
        shares are fractions; the ``unit`` coordinate gives each metric's unit
        (``%`` marks a fraction). ``group_size`` gives each group's patients.
    """
    return summarize_chunks([ds], cutoff, metrics)


class _SortedRun:
    """A sorted array in a ``.npy`` file, read one slice at a time.

    The file is mapped only while a slice is copied out, so pages read stay out of
    the process's memory: a merge of many large runs uses its blocks' memory only.
    """

    def __init__(self, path: Path):
        self.path = path
        self.size = len(np.load(path, mmap_mode="r"))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, part: slice) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r")[part])


def summarize_chunks(chunks: Iterable[xr.Dataset], cutoff: float | None = DEFAULT_CUTOFF,
                     metrics: tuple[str, ...] = METRIC_IDS, spill_dir: str | Path | None = None) -> xr.Dataset:
    """:func:`summarize` of the patients of several record Datasets, read one at a time.

    The result equals ``summarize`` of the concatenated records exactly (the
    same floating-point numbers) in memory bounded whatever the number of
    patients: rates are counted chunk by chunk; a Kaplan-Meier or order-statistic
    median needs the order of all its values, so each chunk's values (survival
    time and event flag, or the value, of the patients in the denominator) are
    sorted and written to a temporary folder in ``spill_dir`` (at most
    :data:`SPILL_BYTES` per patient), then merged in one streaming pass
    (:func:`km_median_of_runs`, :func:`median_ci_of_runs`). The ``all`` group is
    the union of the dose groups' runs.
    """
    chosen = [m for m in METRICS if m.id in metrics]
    groups = ("le", "gt", "all") if cutoff is not None else ("all",)
    kept_groups = groups[:-1] if cutoff is not None else groups  # "all" is their union
    n = np.zeros((len(chosen), len(groups)), dtype=np.int64)
    k = np.zeros_like(n)
    runs: dict[tuple[int, str], list[tuple[Path, Path]]] = {
        (i, g): [] for i, m in enumerate(chosen) if m.kind != "rate" for g in kept_groups}
    sizes = dict.fromkeys(groups, 0)
    patients = 0
    attrs: dict = {}
    out = np.full((3, len(chosen), len(groups)), np.nan)
    with tempfile.TemporaryDirectory(prefix="inosim-summary-", dir=spill_dir) as folder:
        for c, ds in enumerate(chunks):
            attrs = attrs or ds.attrs
            patients += ds.sizes["patient"]
            d = patient_columns(ds)
            masks = group_masks(ds, cutoff)
            for g, mask in masks.items():
                sizes[g] += int(mask.sum())
            for i, m in enumerate(chosen):
                among, value = m.among(d), m.value(d)
                for j, g in enumerate(groups):
                    here = among & masks[g]
                    n[i, j] += int(here.sum())
                    if m.kind == "rate":
                        k[i, j] += int((value & here).sum())
                    elif g in kept_groups:
                        time, event = value if m.kind == "km_median" else (value, np.zeros(len(value), bool))
                        order = np.argsort(time[here], kind="stable")
                        paths = (Path(folder) / f"{i}-{g}-{c}-time.npy", Path(folder) / f"{i}-{g}-{c}-event.npy")
                        np.save(paths[0], time[here][order])
                        np.save(paths[1], event[here][order])
                        runs[i, g].append(paths)
        for i, m in enumerate(chosen):
            for j, g in enumerate(groups):
                if m.kind == "rate":
                    lo, hi = clopper_pearson(int(k[i, j]), int(n[i, j]))
                    out[:, i, j] = (k[i, j] / n[i, j] if n[i, j] else np.nan), lo, hi
                    continue
                loaded = [(_SortedRun(t), _SortedRun(e))
                          for h in (kept_groups if g == "all" else (g,)) for t, e in runs[i, h]]
                estimate = km_median_of_runs if m.kind == "km_median" else median_ci_of_runs
                out[:, i, j] = estimate(loaded)
    dims = ("metric", "group")
    return xr.Dataset(
        {"estimate": (dims, out[0]), "lower": (dims, out[1]), "upper": (dims, out[2]), "n": (dims, n),
         "group_size": ("group", np.array([sizes[g] for g in groups], dtype=np.int64))},
        coords={"metric": [m.id for m in chosen], "group": list(groups),
                "unit": ("metric", [m.unit for m in chosen]),
                "label": ("metric", [m.label for m in chosen])},
        attrs={"cutoff_mg_m2": np.nan if cutoff is None else cutoff, "confidence": CONFIDENCE,
               "patients": int(patients), "scenario_name": attrs.get("scenario_name", ""),
               **{key: attrs[key] for key in RECORD_ATTRS if key in attrs}},
    )
