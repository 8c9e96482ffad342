"""Per-trial figures of many simulated trials at once, and their Monte Carlo summaries.

A sweep simulates, at every grid point, R trials ("replicates") of N patients each,
laid end to end. Every figure of :data:`simulator.analysis.outcomes.METRICS`, and the few more
a strategy comparison needs, is computed for all trials in one go: rates and means as
sums over the reshaped (R, N) arrays, Kaplan-Meier and median figures with the jitted
reductions of :mod:`simulator.analysis.reductions` (one parallel pass over every
(subgroup, trial) block; no Python loop over trials).

An optional mask restricts every figure to some patients, so the same code serves
whole trials and subgroups of them (e.g. patients grouped by realised cumulative dose).
"""

from __future__ import annotations

import difflib
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from simulator.analysis.outcomes import CONFIDENCE, METRICS, Metric, every_patient
from simulator.analysis.reductions import km_by_trial, median_by_trial
from simulator.model import kernel as K

FRACTION_UNIT = "1"  # netCDF unit of a fraction; metrics with unit "%" are stored as fractions
CURVE_STEP_MONTHS = 1.0
CURVE_HORIZON_MONTHS = 48.0
CURVE_MONTHS = np.arange(0.0, CURVE_HORIZON_MONTHS + CURVE_STEP_MONTHS / 2, CURVE_STEP_MONTHS)
MC_STATS = ("estimate", "lower", "upper", "n")  # what mc_summary returns, in order


@dataclass(frozen=True)
class TrialMetric(Metric):
    """A metric with a time horizon (months) for the ``km_survival`` and ``rmst`` kinds."""

    horizon_months: float = math.nan


def _died_of(cause: int):
    return lambda d: d["death_cause"] == cause


def _died_other(after_progression: bool):
    """Death with cause "other", after a progression or relapse (True) or without one (False)."""
    return lambda d: (d["death_cause"] == K.CAUSE_OTHER) & (np.isnan(d["progression_day"]) != after_progression)


def _os(d: dict) -> tuple[np.ndarray, np.ndarray]:
    return d["os"]


# Figures beyond the pooled analysis' (outcomes.METRICS) that strategy comparisons need.
EXTRA_METRICS = (
    TrialMetric("mrd_negative", "MRD-negative CR/CRi, of all patients", "%", "rate", every_patient,
                lambda d: d["mrd_negative"], better="higher"),
    TrialMetric("sos_grade34", "grade >=3 SOS/VOD at any time (incl. fatal)", "%", "rate", every_patient,
                lambda d: d["sos_grade"] >= K.SOS_SEVERE, better="lower"),
    TrialMetric("os_12_months", "overall survival at 12 months (KM)", "%", "km_survival", every_patient,
                _os, 12.0, better="higher"),
    TrialMetric("os_24_months", "overall survival at 24 months (KM)", "%", "km_survival", every_patient,
                _os, 24.0, better="higher"),
    TrialMetric("pfs_12_months", "PFS at 12 months (KM)", "%", "km_survival", every_patient,
                lambda d: d["pfs"], 12.0, better="higher"),
    TrialMetric("pfs_protocol_12_months", "PFS at 12 months, INO-VATE definition (KM)", "%", "km_survival",
                every_patient, lambda d: d["pfs_protocol"], 12.0, better="higher"),
    TrialMetric("os_rmst_24_months", "restricted mean OS to 24 months", "months", "rmst", every_patient,
                _os, 24.0, better="higher"),
    TrialMetric("deaths_progression", "died of progression or relapse", "%", "rate", every_patient,
                _died_of(K.CAUSE_PROGRESSION), better="lower"),
    TrialMetric("deaths_nrm_post_hsct", "died of NRM after HSCT (incl. SOS)", "%",
                "rate", every_patient, _died_of(K.CAUSE_NRM_POST_HSCT), better="lower"),
    TrialMetric("deaths_toxicity", "died of toxicity during treatment", "%", "rate", every_patient,
                _died_of(K.CAUSE_TOXICITY), better="lower"),
    # Cause 4 ("other") holds two kinds of death, told apart by whether progression came first:
    # deaths from other causes before any progression or relapse (the background hazard only),
    # and deaths after progression or relapse that the trials recorded as infection or toxicity
    # of later therapy rather than as the disease (the calibrated complement of
    # death_after_progression_disease_share; about 2% of these are background deaths after
    # progression, which the records cannot tell apart).
    TrialMetric("deaths_other_progression_free", "died of other causes, progression-free", "%", "rate",
                every_patient, _died_other(after_progression=False), better="lower"),
    TrialMetric("deaths_other_after_progression", "died after PD/relapse: infection/later therapy", "%",
                "rate", every_patient, _died_other(after_progression=True), better="lower"),
    TrialMetric("cumulative_dose_mean_mg_m2", "mean cumulative dose", "mg/m2", "mean", every_patient,
                lambda d: d["cumulative_dose"]),
)
TRIAL_METRICS: tuple[Metric, ...] = METRICS + EXTRA_METRICS
# Survival curves stored per trial: variable -> (time/event pair in the columns, title)
CURVES = {"os_curve": ("os", "overall survival"), "pfs_curve": ("pfs", "progression-free survival")}


def netcdf_unit(metric: Metric) -> str:
    """The unit stored in files: ``1`` for fractions (shown as %), else the metric's."""
    return FRACTION_UNIT if metric.unit == "%" else metric.unit


@dataclass
class _KaplanMeierPass:
    """A Kaplan-Meier estimate of one (time, event) pair among some patients, read at many horizons."""

    pair: tuple[np.ndarray, np.ndarray]
    include: np.ndarray
    at: set[float] = field(default_factory=set)
    taus: set[float] = field(default_factory=set)
    median: np.ndarray | None = None
    surv: dict[float, np.ndarray] = field(default_factory=dict)
    rmst: dict[float, np.ndarray] = field(default_factory=dict)


def _kaplan_meier_pass(passes: list[_KaplanMeierPass], pair: tuple, include: np.ndarray) -> _KaplanMeierPass:
    """The pass for this pair and these patients, shared by every figure that reads it."""
    for p in passes:
        if p.pair is pair and np.array_equal(p.include, include):
            return p
    passes.append(_KaplanMeierPass(pair, include))
    return passes[-1]


def _run_passes(passes: list[_KaplanMeierPass], patients: int) -> None:
    """Compute every pass in one call of :func:`simulator.analysis.reductions.km_by_trial`."""
    if not passes:
        return
    at = sorted(set().union(*(p.at for p in passes)))
    taus = sorted(set().union(*(p.taus for p in passes)))
    median, surv, rmst = km_by_trial(
        np.stack([p.pair[0] for p in passes]).astype(float), np.stack([p.pair[1] for p in passes]).astype(bool),
        np.stack([p.include for p in passes]), patients, np.array(at, dtype=float), np.array(taus, dtype=float))
    for p, m, s, r in zip(passes, median, surv, rmst):
        p.median, p.surv, p.rmst = m, dict(zip(at, s.T)), dict(zip(taus, r.T))


def trial_figures(d: dict, trials: int, patients: int, mask: np.ndarray | None = None,
                  metrics: tuple[Metric, ...] = TRIAL_METRICS, curves: bool = True
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every metric (and the survival curves) of many trials at once.

    Parameters
    ----------
    d : dict
        Per-patient columns from :func:`patient_columns`: ``trials`` trials of
        ``patients`` patients each, laid end to end.
    trials, patients : int
        Number of trials and patients per trial.
    mask : ndarray of bool, optional
        The patients to count (e.g. a dose group); default all.
    metrics : tuple of Metric
        The figures to compute (kinds ``rate``, ``mean``, ``median``, ``km_median``,
        ``km_survival``, ``rmst``).
    curves : bool
        Also compute the Kaplan-Meier curves of :data:`CURVES`.

    Returns
    -------
    metrics : dict of str to ndarray, shape (trials,)
        Rates as fractions; NaN where a trial has no patient in the denominator or
        a Kaplan-Meier median is not reached.
    curves : dict of str to ndarray of float32, shape (trials, len(CURVE_MONTHS))
        S(t) at :data:`CURVE_MONTHS` of the counted patients (empty if not asked).
    """
    keep = np.ones(trials * patients, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)

    def per_trial(x: np.ndarray) -> np.ndarray:
        return x.reshape(trials, patients).sum(axis=1)

    out: dict[str, np.ndarray] = {}
    medians: list[tuple[str, np.ndarray, np.ndarray]] = []
    passes: list[_KaplanMeierPass] = []
    reads: dict[str, tuple[Metric, _KaplanMeierPass]] = {}
    for m in metrics:
        among = m.among(d) & keep
        if m.kind in ("rate", "mean"):
            total = among & m.value(d) if m.kind == "rate" else np.where(among, m.value(d), 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[m.id] = per_trial(total) / per_trial(among)
        elif m.kind == "median":
            medians.append((m.id, np.asarray(m.value(d), dtype=float), among))
        elif m.kind in ("km_median", "km_survival", "rmst"):
            p = _kaplan_meier_pass(passes, m.value(d), among)
            if m.kind == "km_survival":
                p.at.add(m.horizon_months)
            elif m.kind == "rmst":
                p.taus.add(m.horizon_months)
            reads[m.id] = (m, p)
        else:
            raise ValueError(f"metric {m.id}: kind {m.kind!r} has no per-trial reduction")
    if medians:
        values = median_by_trial(np.stack([v for _, v, _ in medians]), np.stack([a for _, _, a in medians]),
                                   patients)
        out |= {mid: row for (mid, _, _), row in zip(medians, values)}
    curve_passes = {}
    if curves:
        for name, (pair, _) in CURVES.items():
            curve_passes[name] = _kaplan_meier_pass(passes, d[pair], keep)
            curve_passes[name].at.update(CURVE_MONTHS.tolist())
    _run_passes(passes, patients)
    for mid, (m, p) in reads.items():
        out[mid] = p.median if m.kind == "km_median" else (
            p.surv if m.kind == "km_survival" else p.rmst)[m.horizon_months]
    return ({m.id: out[m.id] for m in metrics},
            {name: np.stack([p.surv[t] for t in CURVE_MONTHS.tolist()], axis=1).astype(np.float32)
             for name, p in curve_passes.items()})


def mc_summary(values: np.ndarray, axis: int = -1, level: float = CONFIDENCE
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean over replicates with a Student-t Monte Carlo confidence interval.

    Replicates where the figure is undefined (NaN) are left out.

    Returns
    -------
    estimate, lower, upper : ndarray
        Mean and interval (NaN with fewer than two defined replicates).
    n : ndarray of int
        Number of defined replicates.
    """
    values = np.asarray(values, dtype=float)
    n = np.sum(~np.isnan(values), axis=axis)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        est = np.nanmean(values, axis=axis)
        sd = np.nanstd(values, axis=axis, ddof=1)
        half = special.stdtrit(np.maximum(n - 1, 1), 0.5 + level / 2) * sd / np.sqrt(n)  # t quantile
    half = np.where(n >= 2, half, np.nan)
    return est, est - half, est + half, n


def check_metric_ids(requested: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Metric ids as given (each may be a comma list), checked against :data:`TRIAL_METRICS`.

    Raises
    ------
    KeyError
        One line naming the first unknown id, the closest valid one and every valid one.
    """
    valid = [m.id for m in TRIAL_METRICS]
    ids = tuple(part.strip() for text in requested for part in text.split(",") if part.strip())
    for name in ids:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1, cutoff=0.4) or [v for v in valid if name in v]
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise KeyError(f"no metric '{name}' ({hint}valid: {', '.join(valid)})")
    return ids
