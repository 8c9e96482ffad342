"""Summaries computed the way the publications computed them.

Rates carry exact Clopper-Pearson intervals, medians of survival times come from
Kaplan-Meier curves with Brookmeyer-Crowley intervals, other medians from order
statistics. Every summary can be grouped by realised cumulative dose at a cutoff,
as the pooled analysis grouped its patients. On simulated data these intervals
are the Monte Carlo uncertainty of the estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import xarray as xr

from simulator.model.kernel import (
    CAUSE_NRM_POST_HSCT,
    CAUSE_PROGRESSION,
    DOSE_EPS,
    MONTH,
    SOS_SEVERE,
)

CONFIDENCE = 0.95
DEFAULT_CUTOFF = 3.3  # mg/m2


def clopper_pearson(k: int, n: int, level: float = CONFIDENCE) -> tuple[float, float]:
    """Exact binomial confidence interval for k successes out of n (NaN if n = 0)."""
    from scipy import stats  # here, not at import: keeps the command line's start-up short

    if n == 0:
        return np.nan, np.nan
    a = 1.0 - level
    lo = stats.beta.ppf(a / 2, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(1 - a / 2, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def kaplan_meier(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate at the distinct event times.

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
    from scipy import stats  # here, not at import: keeps the command line's start-up short

    if len(time) == 0:
        return np.nan, np.nan, np.nan
    t, s, se = kaplan_meier(time, event)
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore", over="ignore"):
        upper = np.minimum(s * np.exp(z * np.nan_to_num(se, nan=np.inf)), 1.0)
        lower = s * np.exp(-z * np.nan_to_num(se, nan=np.inf))

    def first_below(curve: np.ndarray) -> float:
        idx = np.flatnonzero(curve <= 0.5)
        return float(t[idx[0]]) if len(idx) else np.nan

    return first_below(s), first_below(lower), first_below(upper)


def km_survival_at(time: np.ndarray, event: np.ndarray, at: float, level: float = CONFIDENCE
                   ) -> tuple[float, float, float]:
    """Kaplan-Meier S(at) with a log-log pointwise confidence interval."""
    from scipy import stats  # here, not at import: keeps the command line's start-up short

    if len(time) == 0:
        return np.nan, np.nan, np.nan
    t, s, se = kaplan_meier(time, event)
    idx = np.searchsorted(t, at, side="right") - 1
    if idx < 0:
        return 1.0, 1.0, 1.0
    sv, sev = s[idx], se[idx]
    if sv <= 0.0 or sv >= 1.0 or not np.isfinite(sev):
        return float(sv), float(sv), float(sv)
    z = stats.norm.ppf(0.5 + level / 2)
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
    from scipy import stats  # here, not at import: keeps the command line's start-up short

    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    if n == 0:
        return np.nan, np.nan, np.nan
    a = 1.0 - level
    lo = int(stats.binom.ppf(a / 2, n, 0.5))
    hi = min(int(stats.binom.isf(a / 2, n, 0.5)), n - 1)
    return float(np.median(x)), float(x[max(lo - 1, 0)]), float(x[hi])


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
    from scipy import stats

    se = 1.0 / math.sqrt(info)
    z = stats.norm.ppf(0.5 + level / 2)
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
    Metric("cr_cri", "CR/CRi rate", "%", "rate", every_patient, _v("best_response")),
    Metric("hsct", "proceeded to HSCT", "%", "rate", every_patient, _v("hsct")),
    Metric("time_to_remission_median_months", "median time to CR/CRi, responders", "months",
           "median", _v("best_response"), lambda d: d["response_day"] / MONTH),
    Metric("early_responder_hsct", "HSCT, early responders", "%", "rate", _early, _v("hsct")),
    Metric("early_responder_pfs_median_months", "median PFS, early responders", "months",
           "km_median", _early, _v("pfs")),
    Metric("early_responder_os_median_months", "median OS, early responders", "months",
           "km_median", _early, _v("os")),
    Metric("deaths_from_progression_share", "deaths from progression, of deaths", "%", "rate",
           lambda d: d["os_event"], lambda d: d["death_cause"] == CAUSE_PROGRESSION),
    Metric("grade3plus_ae", "any grade >=3 AE", "%", "rate", every_patient, _v("grade3_ae")),
    Metric("discontinued_for_ae", "discontinued for AE", "%", "rate", every_patient, _v("discontinued_ae")),
    Metric("serious_ae", "any serious AE", "%", "rate", every_patient, _v("serious_ae")),
    Metric("post_hsct_sos_any", "SOS after HSCT, of transplanted", "%", "rate", _v("hsct"),
           _v("sos_post_hsct")),
    Metric("post_hsct_sos_grade34", "grade >=3 SOS after HSCT, of transplanted", "%", "rate",
           _v("hsct"), lambda d: d["sos_post_hsct_grade"] >= SOS_SEVERE),
    Metric("post_hsct_mortality", "death after HSCT, of transplanted", "%", "rate", _v("hsct"),
           _v("os_event")),
    Metric("post_hsct_nrm", "non-relapse mortality after HSCT", "%", "rate", _v("hsct"),
           lambda d: d["death_cause"] == CAUSE_NRM_POST_HSCT),
    Metric("early_responder_post_hsct_mortality", "death after HSCT, early responders", "%",
           "rate", _early_hsct, _v("os_event")),
    Metric("early_responder_post_hsct_nrm", "NRM after HSCT, early responders", "%", "rate",
           _early_hsct, lambda d: d["death_cause"] == CAUSE_NRM_POST_HSCT),
    Metric("cumulative_dose_median_mg_m2", "median cumulative dose", "mg/m2", "median", every_patient,
           _v("cumulative_dose")),
    Metric("mrd_negative_among_responders", "MRD negativity, of CR/CRi", "%", "rate",
           _v("best_response"), _v("mrd_negative")),
    Metric("sos_any", "SOS/VOD at any time", "%", "rate", every_patient, _v("sos")),
    Metric("pfs_median_months", "median PFS", "months", "km_median", every_patient, _v("pfs")),
    Metric("pfs_protocol_median_months", "median PFS, INO-VATE definition", "months", "km_median",
           every_patient, _v("pfs_protocol")),
    Metric("remission_duration_median_months", "median duration of CR/CRi, responders", "months",
           "km_median", _v("best_response"), _v("remission")),
    Metric("os_median_months", "median OS", "months", "km_median", every_patient, _v("os")),
)
METRIC_IDS = tuple(m.id for m in METRICS)


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
    CR/CRi. The ``pfs_months`` record waits for progression instead. (Post-HSCT therapy
    without CR/CRi, the protocol's other event, comes only after a progression in the model.)
    """
    never = np.asarray(d["best_response"]) == 0
    last = np.nan_to_num(np.asarray(d["last_dose_day"], dtype=float), nan=0.0)
    new_induction = np.where(never, last + NEW_INDUCTION_GAP_DAYS, np.inf)
    return _time_to_first(d, np.zeros(len(never)), d["progression_day"], d["death_day"], new_induction)


FLAG_VARIABLES = ("best_response", "hsct", "os_event", "grade3_ae", "discontinued_ae", "serious_ae",
                  "sos_post_hsct", "mrd_negative", "sos", "pfs_event")


def patient_columns(ds: xr.Dataset) -> dict:
    """Every per-patient variable as a numpy array, flags as bool, plus survival pairs.

    ``"pfs"``, ``"os"``, ``"pfs_protocol"`` (:func:`protocol_pfs`) and ``"remission"``
    (:func:`remission_duration`) hold (months, event) tuples for Kaplan-Meier metrics.
    """
    d = {name: ds[name].values for name in ds.data_vars if ds[name].dims == ("patient",)}
    for name in FLAG_VARIABLES:
        d[name] = d[name].astype(bool)
    d["pfs"] = (d["pfs_months"], d["pfs_event"])
    d["os"] = (d["os_months"], d["os_event"])
    d["pfs_protocol"] = protocol_pfs(d)
    d["remission"] = remission_duration(d)
    return d


def _estimate(metric: Metric, d: dict, mask: np.ndarray) -> tuple[float, float, float, int]:
    among = metric.among(d) & mask
    n = int(among.sum())
    value = metric.value(d)
    if metric.kind == "rate":
        k = int((value & among).sum())
        lo, hi = clopper_pearson(k, n)
        return (k / n if n else np.nan), lo, hi, n
    if metric.kind == "km_median":
        time, event = value
        return (*km_median(time[among], event[among]), n)
    return (*median_ci(value[among]), n)


def group_masks(ds: xr.Dataset, cutoff: float | None = DEFAULT_CUTOFF) -> dict[str, np.ndarray]:
    """Boolean masks of the groups: realised cumulative dose <= cutoff, > cutoff, all."""
    dose = ds["cumulative_dose"].values
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
    chosen = [m for m in METRICS if m.id in metrics]
    d = patient_columns(ds)
    masks = group_masks(ds, cutoff)
    out = np.full((4, len(chosen), len(masks)), np.nan)
    for j, mask in enumerate(masks.values()):
        for i, m in enumerate(chosen):
            out[:, i, j] = _estimate(m, d, mask)
    dims = ("metric", "group")
    return xr.Dataset(
        {"estimate": (dims, out[0]), "lower": (dims, out[1]), "upper": (dims, out[2]),
         "n": (dims, out[3].astype(np.int64)),
         "group_size": ("group", np.array([int(m.sum()) for m in masks.values()]))},
        coords={"metric": [m.id for m in chosen], "group": list(masks),
                "unit": ("metric", [m.unit for m in chosen]),
                "label": ("metric", [m.label for m in chosen])},
        attrs={"cutoff_mg_m2": np.nan if cutoff is None else cutoff, "confidence": CONFIDENCE,
               "patients": int(ds.sizes["patient"]), "scenario_name": ds.attrs.get("scenario_name", "")},
    )
