"""The truth a design's estimates are scored against: each estimate's large-sample value.

Piecewise-exponential arms have it in closed form (:func:`piecewise_estimates`): each arm's
survival is exp(-cumulative hazard), and each estimator's limit is an integral over time of
the arms' hazards and at-risk shares (entry uniform in the design's enrolment intensity,
exponential dropout, the look's cut), computed by Gauss-Legendre quadrature on the pieces
where those are smooth, so to rounding. For strategy arms (the model) it comes from a large
counterfactual run: the same ``n`` virtual patients are simulated under every arm (ids apart
from every trial's, so they are new patients), enter as the design enrols, drop out at the
design's rates and are cut at each look's calendar time (by default the look's mean cut over the simulated
trials that reached it, :func:`look_cuts`). Each test's estimator applied to the control
copy and an experimental copy gives its large-sample value at that look (for a hazard ratio
under non-proportional hazards it depends on the follow-up, hence the design's entry,
dropout and cut; a binary outcome counts once seen by the cut), so an estimate is scored
against the truth of the look its trial stopped at. The arms' utilities P(CR/CRi) - weight x
P(post-HSCT SOS) over complete follow-up give the true ranking for dose selection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import xarray as xr

from simulator.trial import engine as E
from simulator.trial.design import BINARY_ENDPOINTS, MAX_TRIALS, TIME_ENDPOINTS
from simulator.trial.run import TrialArrays, model_outcomes, test_labels

TRUTH_PATIENTS = 1_000_000  # per arm: the 10^6
QUADRATURE_NODES = 32  # Gauss-Legendre nodes per smooth piece of the closed-form truth's integrals
COX_ITERATIONS = 50  # Newton steps at most for the closed-form Cox limit ...
COX_TOLERANCE = 1e-13  # ... until a step is below this (log hazard ratio)
TRUTH_TRIAL = MAX_TRIALS  # trial index of the counterfactual patients: beyond every simulated trial


def _enrolment(ta: TrialArrays) -> tuple[np.ndarray, np.ndarray]:
    """Knots (months) of the design's enrolment up to its last patient, and the cumulative
    intensity (patients) at each: entry is uniform in that intensity, so its distribution
    function is linear between the knots."""
    n_slots, rates, ends = ta.design.sample_size, ta.constants.enroll_rates, ta.constants.enroll_ends
    last = E.inverse_cumulative(float(n_slots), rates, ends)
    knots = np.concatenate([[0.0], ends[ends < last], [last]])
    return knots, np.concatenate([[0.0], np.cumsum(np.diff(knots) * rates[:knots.size - 1])])


def _entries(ta: TrialArrays, u: np.ndarray) -> np.ndarray:
    """Entry times distributed as the design's: uniform in cumulative intensity up to N patients."""
    knots, intensity = _enrolment(ta)
    return np.interp(u * ta.design.sample_size, intensity, knots)


def counterfactual(ta: TrialArrays, seed: int, n: int = TRUTH_PATIENTS) -> dict[str, np.ndarray]:
    """The same ``n`` patients under every arm: endpoints (arm, endpoint, patient), strata, uniforms."""
    if n > E.MAX_SLOTS:
        raise ValueError(f"at most {E.MAX_SLOTS} counterfactual patients, got {n}")
    dc = ta.constants
    piecewise = ta.model[0] is None
    entry = np.empty((1, n))  # slot_draws' entry times are not used: see u_entry
    drop_u = np.empty((1, n))
    pe_u = np.empty((1, n) if piecewise else (0, 0))
    E.slot_draws(seed, TRUTH_TRIAL, np.ones(1), np.array([np.inf]), True, entry, drop_u, pe_u)
    ids = TRUTH_TRIAL * E.MAX_SLOTS + np.arange(n, dtype=np.int64)
    n_arms = len(ta.model)
    tte = np.full((n_arms, len(TIME_ENDPOINTS), n), np.inf)
    binary_time = np.full((n_arms, len(BINARY_ENDPOINTS), n), np.inf)
    stratum = np.zeros(n, dtype=np.int64)
    for a, model in enumerate(ta.model):
        if model is None:
            arm = np.zeros((1, n), dtype=np.int64)  # rows of the one-arm rate table below
            E.piecewise_fill(arm, pe_u, dc.pe_rates[a:a + 1], dc.pe_ends[a:a + 1], tte[a][:, None, :])
        else:
            tte[a], binary_time[a], cov = model_outcomes(model, seed, ids)
            if a == dc.control:
                for bit, factor in enumerate(ta.design.randomization.strata):
                    stratum |= cov[factor].astype(np.int64) << bit
    u_entry = np.random.default_rng([seed, TRUTH_TRIAL]).random(n)  # where in the enrolment each enters
    return {"entry": _entries(ta, u_entry), "drop_u": drop_u[0], "tte": tte, "binary_time": binary_time,
            "stratum": stratum}


def look_cuts(ds: xr.Dataset) -> np.ndarray:
    """Each look's mean calendar cut (months) over the simulated trials that reached it (NaN: none did)."""
    cut = ds.cut_time.values
    reached = np.isfinite(cut).sum(axis=0)
    return np.where(reached > 0, np.nansum(cut, axis=0) / np.maximum(reached, 1), np.nan)


def _estimates_at(ta: TrialArrays, cf: dict[str, np.ndarray], cut: float) -> np.ndarray:
    """Every test's large-sample estimate (test x comparison) with the counterfactual patients cut at ``cut``."""
    dc = ta.constants
    entry, stratum = cf["entry"], cf["stratum"]
    truth = np.full(dc.tests.shape[0] * dc.comparisons.size, np.nan)
    res = np.empty(E.N_RESULT)
    for ci, ex in enumerate(dc.comparisons):
        pair = np.array([dc.control, ex])
        arm = np.repeat(pair, entry.size).astype(np.int64)
        strat = np.tile(stratum, 2)
        drop = np.concatenate([-np.log(cf["drop_u"]) / r if r > 0 else np.full(entry.size, np.inf)
                               for r in dc.drop_rate[pair]])
        ent = np.tile(entry, 2)
        by_time = {}  # endpoint -> the pair's observed data sorted by time (one sort per endpoint)
        for j, q in enumerate(dc.tests):
            e = int(q[E.Q_ENDPOINT])
            if q[E.Q_TYPE] >= E.T_PROPORTIONS:
                t = np.concatenate([cf["binary_time"][a, e] for a in pair])
                x = ((t <= drop) & (ent + t <= cut)).astype(np.int8)  # engine.seen: by the cut, before dropout
                if q[E.Q_LOWER_BETTER] > 0:
                    x = (1 - x).astype(np.int8)
                evaluable = ent + q[E.Q_EVAL] <= cut
                E.binary_test(q, x[evaluable], arm[evaluable], strat[evaluable], dc.n_strata, dc.control, ex,
                              0.0, res)
            else:
                if e not in by_time:
                    t = np.concatenate([cf["tte"][a, e] for a in pair])
                    observed = (t <= drop) & (ent + t <= cut)
                    time = np.where(observed, t, np.minimum(drop, cut - ent))
                    order = np.argsort(time, kind="stable")
                    by_time[e] = (time[order], observed[order].astype(np.int8), arm[order], strat[order])
                E.time_test(q, *by_time[e], dc.n_strata, dc.control, ex, 0.0, res)
            truth[j * dc.comparisons.size + ci] = res[3]
    return truth


def _quadrature(end: float, breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, ``end``], ``QUADRATURE_NODES`` on each piece between ``breaks``."""
    edges = np.unique(np.concatenate([[0.0, end], breaks[(breaks > 0.0) & (breaks < end)]]))
    x, w = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    half, mid = np.diff(edges)[:, None] / 2.0, (edges[:-1] + edges[1:])[:, None] / 2.0
    return (mid + half * x).ravel(), (half * w).ravel()


def _cumulative_hazard(t: np.ndarray | float, rates: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Cumulative piecewise-constant hazard at ``t`` (``rates[k]`` up to ``ends[k]``, the last inf)."""
    starts = np.concatenate([[0.0], ends[:-1]])
    return (rates * np.clip(np.minimum(np.asarray(t, dtype=float)[..., None], ends) - starts, 0.0, None)).sum(-1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (no one at risk: the integrand's term vanishes)."""
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0.0)


def _cox_limit(w: np.ndarray, y0: np.ndarray, y1: np.ndarray, h0: np.ndarray, h1: np.ndarray) -> float:
    """Log hazard ratio solving the Cox score's large-sample limit (Struthers and Kalbfleisch 1986),
    int y0 y1 (h1 - e^b h0) / (y0 + e^b y1) dt = 0, by Newton's method (the score decreases in b)."""
    b = 0.0
    for _ in range(COX_ITERATIONS):
        r = math.exp(b)
        den = y0 + r * y1
        info = np.sum(w * _ratio(r * y0 * y1 * (y0 * h0 + y1 * h1), den * den))
        if not info > 0.0:
            return math.nan
        step = np.sum(w * _ratio(y0 * y1 * (h1 - r * h0), den)) / info
        b += step
        if abs(step) < COX_TOLERANCE:
            return b
    return math.nan


def piecewise_survival(ta: TrialArrays, arm: int, t: np.ndarray | float) -> np.ndarray:
    """Piecewise-exponential arm ``arm``'s survival S(t) = exp(-H(t)) at ``t`` months."""
    dc = ta.constants
    return np.exp(-_cumulative_hazard(t, dc.pe_rates[arm], dc.pe_ends[arm]))


def piecewise_estimates(ta: TrialArrays, cut: float) -> np.ndarray:
    """Every test's large-sample estimate (test x comparison) for piecewise-exponential arms, in closed form.

    Arm ``a``'s survival is S_a(t) = exp(-H_a(t)), H_a its cumulative hazard; its share at risk at
    ``t`` months after entry is y_a(t) = S_a(t) exp(-d_a t) G(t), with d_a its dropout rate and
    G(t) = P(entry <= cut - t) (entry uniform in the design's enrolment intensity), as in the
    counterfactual run with as many patients under each arm. The limits, h_a the hazards:

    * Peto's hazard ratio (unweighted log-rank): exp(OE / V), OE = int y0 y1 / (y0 + y1) (h1 - h0) dt
      and V = int y0 y1 / (y0 + y1)^2 (y0 h0 + y1 h1) dt;
    * Cox: exp(b), b the root of :func:`_cox_limit`; under proportional hazards the hazard ratio
      itself, whatever the follow-up;
    * milestone: S_1(m) - S_0(m) at m = min(milestone, L), L = cut - the first entry the longest
      follow-up (Kaplan-Meier is carried forward beyond it);
    * RMST: int_0^min(tau, L) (S_1 - S_0) dt + (tau - L)+ (S_1(L) - S_0(L));
    * weighted log-rank and MaxCombo: none (NaN), as their estimates.

    The integrals run over the pieces where the integrands are smooth (between the hazards' period
    ends and ``cut`` minus the enrolment's knots) by Gauss-Legendre quadrature: exact to rounding.
    """
    dc = ta.constants
    truth = np.full(dc.tests.shape[0] * dc.comparisons.size, np.nan)
    knots, intensity = _enrolment(ta)
    follow_up = cut - knots[np.count_nonzero(intensity == 0.0) - 1]  # L: the first patient's follow-up
    if not follow_up > 0.0:
        return truth
    breaks = dc.pe_ends.ravel()
    t, w = _quadrature(follow_up, np.concatenate([breaks, cut - knots]))
    entered = np.interp(cut - t, knots, intensity) / intensity[-1]  # G(t)
    hazard = [dc.pe_rates[a][np.searchsorted(dc.pe_ends[a], t, side="right")] for a in range(len(ta.model))]
    at_risk = [np.exp(-_cumulative_hazard(t, dc.pe_rates[a], dc.pe_ends[a]) - dc.drop_rate[a] * t) * entered
               for a in range(len(ta.model))]

    def survival(a: int, time: np.ndarray | float) -> np.ndarray:
        return piecewise_survival(ta, a, time)

    for ci, ex in enumerate(dc.comparisons):
        c = dc.control
        y0, y1, h0, h1 = at_risk[c], at_risk[ex], hazard[c], hazard[ex]
        for j, q in enumerate(dc.tests):
            code = int(q[E.Q_TYPE])
            if code == E.T_LOGRANK and q[E.Q_RHO] == 0.0 and q[E.Q_GAMMA] == 0.0:
                total = y0 + y1
                value = math.exp(np.sum(w * _ratio(y0 * y1 * (h1 - h0), total))
                                 / np.sum(w * _ratio(y0 * y1 * (y0 * h0 + y1 * h1), total * total)))
            elif code == E.T_COX:
                value = math.exp(_cox_limit(w, y0, y1, h0, h1))
            elif code == E.T_MILESTONE:
                m = min(q[E.Q_HORIZON], follow_up)
                value = float(survival(ex, m) - survival(c, m))
            elif code == E.T_RMST:
                end = min(q[E.Q_HORIZON], follow_up)
                s, v = _quadrature(end, breaks)
                value = float(np.sum(v * (survival(ex, s) - survival(c, s)))
                              + (q[E.Q_HORIZON] - end) * (survival(ex, end) - survival(c, end)))
            else:
                continue
            truth[j * dc.comparisons.size + ci] = value
    return truth


def true_values(ta: TrialArrays, seed: int, cut: float | Sequence[float], n: int = TRUTH_PATIENTS,
                cf: dict[str, np.ndarray] | None = None) -> xr.Dataset:
    """Large-sample value of every test's estimate at each look, and the arms' true utilities.

    Piecewise-exponential arms: in closed form (:func:`piecewise_estimates`; no patients are
    simulated, ``seed``, ``n`` and ``cf`` are unused). Strategy arms: from ``n`` counterfactual
    patients per arm (:func:`counterfactual`).

    Parameters
    ----------
    ta : TrialArrays
        The converted design (:func:`simulator.trial.run.trial_arrays`).
    seed : int
        Seed of the counterfactual patients.
    cut : float or sequence of float
        Calendar time (months) of the cut applied to the counterfactual trial: one per look
        (e.g. :func:`look_cuts`; NaN: the look is never reached, its truth NaN), or one for
        every look.
    n : int
        Patients per arm.
    cf : dict, optional
        A :func:`counterfactual` run to reuse.

    Returns
    -------
    xarray.Dataset
        ``true_estimate`` over (``look``, ``test``) (the test labels of
        :func:`simulator.trial.run.test_labels`; NaN for estimates without an estimand),
        ``true_utility`` over ``arm`` (NaN without binary outcomes) and ``true_rate`` over
        (``arm``, ``binary_endpoint``), both over complete follow-up; ``cut_months`` over ``look``.
        ``attrs['method']`` says how it was computed.
    """
    dc = ta.constants
    cuts = np.broadcast_to(np.asarray(cut, dtype=float), (dc.looks.shape[0],))
    rates = np.full((len(ta.model), len(BINARY_ENDPOINTS)), np.nan)
    if ta.model[0] is None:
        by_cut = {c: piecewise_estimates(ta, c) for c in np.unique(cuts[np.isfinite(cuts)])}
        attrs = {"method": "closed form from the arms' hazards",
                 "uncertainty": "none (quadrature exact to rounding)"}
    else:
        cf = cf or counterfactual(ta, seed, n)
        by_cut = {c: _estimates_at(ta, cf, c) for c in np.unique(cuts[np.isfinite(cuts)])}
        rates = np.isfinite(cf["binary_time"]).mean(axis=2)
        attrs = {"method": f"{cf['entry'].size:,} counterfactual patients per arm", "seed": seed,
                 "uncertainty": "Monte Carlo, negligible beside the trials' (10^6 patients per arm)"}
    nan = np.full(dc.tests.shape[0] * dc.comparisons.size, np.nan)
    truth = np.stack([by_cut.get(c, nan) for c in cuts])
    weight = dc.sel_weight if dc.sel_look >= 0 else 1.0
    utility = rates[:, 0] - weight * rates[:, 1]
    return xr.Dataset(
        {"true_estimate": (("look", "test"), truth, {"long_name": "large-sample value of the estimate at the look",
                                                     "units": "see estimand"}),
         "true_utility": ("arm", utility, {"long_name": "P(CR/CRi) - weight x P(post-HSCT SOS)", "units": "1"}),
         "true_rate": (("arm", "binary_endpoint"), rates, {"long_name": "share of patients", "units": "1"}),
         "cut_months": ("look", cuts.copy(), {"long_name": "calendar cut of the counterfactual trial",
                                              "units": "month"})},
        coords={"look": np.arange(1, cuts.size + 1), "test": test_labels(ta.design),
                "arm": [a.name for a in ta.design.arms], "binary_endpoint": list(BINARY_ENDPOINTS)},
        attrs=attrs)
