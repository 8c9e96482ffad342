"""Jitted reductions of patient records: the Kaplan-Meier walk, and per-trial figures in bulk.

**The Kaplan-Meier walk.** Every jitted Kaplan-Meier estimate of the package walks the
patients sorted by time one run of tied times at a time (:func:`tied_run`): at each
distinct time ``t_i`` with ``d_i`` events among the ``n_i`` patients still at risk,
``S(t) = prod_{t_i <= t} (1 - d_i / n_i)``, and the patients of the run leave the risk set
after it (so patients censored at an event time are at risk at it). Its readers are
:func:`_kaplan_meier_block` here (S at given times, median, restricted mean) and
:func:`simulator.trial.statistics.km_at` and :func:`simulator.trial.statistics.rmst`
(Greenwood's variance, the RMST variance). The vectorised numpy estimate
:func:`simulator.analysis.outcomes.kaplan_meier` computes the same products in the same
order, so the two agree to the last bit (tests check both against lifelines).

**Per-trial figures.** Many simulated trials at once: arrays of shape
``(sets, trials * patients)`` hold, per set (a variable or a subgroup), ``trials``
trials of ``patients`` patients laid end to end; ``include`` marks the patients
counted. One parallel loop covers every (set, trial) block, so a sweep needs no Python
loop over trials (:mod:`simulator.analysis.trial_metrics`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def tied_run(time, event, group, g, i):
    """The run of patients whose time equals ``time[i]``, for the patients of group ``g``.

    Parameters
    ----------
    time : ndarray of float
        Sorted ascending.
    event : ndarray of bool or int
        1 (True) where the time is an event, 0 where it is a censoring.
    group : ndarray
        Group of each patient; only those equal to ``g`` count.
    g
        The group counted.
    i : int
        Start of the run.

    Returns
    -------
    events : float
        ``d``: events of group ``g`` in the run.
    leaving : float
        Patients of group ``g`` in the run: they leave the risk set after it.
    end : int
        Index after the run (at least ``i + 1``, so a NaN time is a run of its own).
    """
    n = time.shape[0]
    events = 0.0
    leaving = 0.0
    j = i
    while True:
        if group[j] == g:
            leaving += 1.0
            if event[j]:
                events += 1.0
        j += 1
        if j >= n or time[j] != time[i]:
            return events, leaving, j


@njit(cache=True)
def _kaplan_meier_block(time, event, include, at, taus, surv, rmst):
    """Kaplan-Meier estimate of the included patients of one block; the median, S(at), RMST(taus).

    Parameters
    ----------
    time, event, include : ndarray
        One block: times (months), event flags and the patients counted; any order.
    at : ndarray of float, shape (k,)
        Increasing times at which S is read: S just after every event at or before each.
    taus : ndarray of float, shape (m,)
        Horizons of the restricted mean survival times: the integral of S from 0 to tau.
    surv, rmst : ndarray, shapes (k,) and (m,)
        Written.

    Returns
    -------
    float
        The median: the first event time at which S <= 0.5 (NaN if none).
    """
    counted = np.flatnonzero(include)
    o = counted[np.argsort(time[counted])]  # the patients counted, by time
    t = time[o]
    e = event[o]
    member = include[o]  # every one counted: the block's own group
    at_risk = float(o.shape[0])
    s = 1.0
    median = np.nan
    last = 0.0  # the previous event time: S has been s since then
    j = 0
    rmst[:] = 0.0
    i = 0
    while i < t.shape[0]:
        deaths, leaving, end = tied_run(t, e, member, True, i)
        if deaths > 0.0:
            ti = t[i]
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
        at_risk -= leaving
        i = end
    surv[j:] = s
    for m in range(taus.shape[0]):
        if last < taus[m]:
            rmst[m] += s * (taus[m] - last)
    return median


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
        Increasing times (months) at which S(t) is read: S just after every event at or
        before t.
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
        lo = r * patients
        if include[p, lo:lo + patients].any():
            median[p, r] = _kaplan_meier_block(time[p, lo:lo + patients], event[p, lo:lo + patients],
                                              include[p, lo:lo + patients], at, taus, surv[p, r], rmst[p, r])
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
