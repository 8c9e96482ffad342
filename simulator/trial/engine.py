"""Numba kernels of the trial engine: arrays in, arrays out, one ``prange`` over trials.

Nothing here knows about YAML, dataclasses or xarray; :mod:`simulator.trial.run` converts
a validated design into a :class:`DesignConstants` (the one conversion point) and wraps the
results. Kernels take three typed named tuples: the design's constants, a chunk's
:class:`Slots` and the :class:`Results` they fill; numba types a named tuple field by field,
so each keeps one type whatever the design and every kernel compiles once.

Layout. A chunk holds ``n_trials`` trials of ``n_slots`` patient slots each; slot ``i`` of
trial ``r`` is patient id ``r * MAX_SLOTS + i`` of the model (trial-scoped ids with a fixed
stride), and slots enter in order (slot ``i`` enters no later than slot ``i + 1``). Times are
months from the first patient's entry (calendar) or from a patient's entry (follow-up).

* ``entry[t, i]``: calendar entry time; ``arm[t, i]``: arm index; ``stratum[t, i]``;
* ``tte[e, t, i]``: time of time-to-event endpoint ``e`` (``EP_OS``, ``EP_PFS``) from
  entry, ``inf`` if it never happens; ``binary_time[b, t, i]``: time from entry at which
  binary endpoint ``b`` (``BIN_CR``, ``BIN_SOS``, ``BIN_G3AE``) is known to have happened,
  ``inf`` if it never happens (see :func:`simulator.trial.run.model_outcomes` for the dates);
* ``drop_u[t, i]``: the uniform of the exponential dropout time ``-log(u) / rate[arm]``.

Random numbers for entry, dropout, piecewise-exponential outcomes and the randomisation
blocks are :func:`simulator.model.kernel.draw` hashes of the patient key with stream ids
above every stream of the model (``S_ENTRY`` ...), so they never coincide with a model draw.

The trial layer alone censors: a patient's observed time at a cut ``c`` is the event time
if it happens before dropout and ``entry + time <= c`` (compared on the calendar, so the
look cut at the k-th event includes that event), else ``min(dropout, c - entry)``. A binary
outcome counts, by the same rule (:func:`seen`), only once it has happened by the cut and
before dropout.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from simulator.model.kernel import draw, patient_key
from simulator.trial import statistics as st
from simulator.trial.boundaries import efficacy_bounds_nb, norm_ppf_nb, spend_nb

MAX_SLOTS = 1 << 20  # must equal simulator.trial.design.MAX_SLOTS
MAX_BLOCK = 64  # patients per randomisation block
S_ENTRY = 1 << 12  # streams of the trial layer: far above the model's (< 1024)
S_DROPOUT = S_ENTRY + 1
S_PIECEWISE = S_ENTRY + 2
S_TIE = S_ENTRY + 3  # dose selection: which of tied arms (slot 0's key)
S_BLOCK = 1 << 16  # block b of stratum s in phase p: streams S_BLOCK + ((p * n_strata + s) * MAX_SLOTS + b) * MAX_BLOCK + j

EP_OS, EP_PFS = 0, 1  # time-to-event endpoints (order of design.TIME_ENDPOINTS)
BIN_CR, BIN_SOS, BIN_G3AE = 0, 1, 2  # binary endpoints (order of design.BINARY_ENDPOINTS)
# test codes (order of design.TIME_TESTS + design.BINARY_TESTS)
T_LOGRANK, T_MAXCOMBO, T_COX, T_RMST, T_MILESTONE, T_PROPORTIONS, T_FISHER, T_CMH = range(8)
# test parameter columns
(Q_TYPE, Q_ENDPOINT, Q_STRATIFIED, Q_RHO, Q_GAMMA, Q_EFRON, Q_HORIZON, Q_EVAL, Q_LOWER_BETTER) = range(9)
N_Q = 9
# look columns (NaN: criterion not used)
(L_EVENTS, L_ENDPOINT, L_CALENDAR, L_MIN_FU, L_GAP, L_MAX_EXT) = range(6)
N_L = 6
# decisions
CONTINUE, EFFICACY, FUTILITY, HARM = 0, 1, -1, 2
NOT_REACHED = -9
N_RESULT = 6  # result columns: statistic, p, z, estimate, lower, upper


class DesignConstants(NamedTuple):
    """A design as the kernels see it: plain arrays and scalars, one type per field.

    Built by :func:`simulator.trial.run.trial_arrays`. Times in months, rates per month.
    """

    n_strata: int  # strata: 2 ** stratification factors
    ratios: np.ndarray  # int64[arms]: allocation ratio of each arm
    block_mult: int  # a randomisation block holds ratios[a] * block_mult places of arm a
    enroll_rates: np.ndarray  # float64[periods]: enrolment rate, patients per month
    enroll_ends: np.ndarray  # float64[periods]: end of each period (the last inf)
    random_entry: bool  # Poisson entry (else evenly spaced in cumulative intensity)
    drop_rate: np.ndarray  # float64[arms]: exponential dropout rate
    pe_rates: np.ndarray  # float64[arms, periods]: piecewise-exponential hazards ((0, 0): strategy arms)
    pe_ends: np.ndarray  # float64[arms, periods]: their period ends (padded with inf)
    looks: np.ndarray  # float64[looks, N_L]: look criteria (NaN: unused)
    tests: np.ndarray  # float64[tests, N_Q]: test parameters
    control: int  # control arm index
    comparisons: np.ndarray  # int64[C]: experimental arm of each comparison
    primary: int  # index of the test that decides
    upper: np.ndarray  # float64[looks]: planned efficacy z bounds
    lower: np.ndarray  # float64[looks]: planned futility z bounds (-inf: none)
    sided: int  # 1: reject for z > upper; 2: also for z < -upper (harm), no futility stop
    z_ci: float  # normal quantile of the confidence intervals
    observed: bool  # spend alpha on observed information (else the planned bounds)
    spend_code: int  # spending function (boundaries.KIND_CODES), for observed information
    spend_param: float  # its parameter
    alpha_cmp: float  # one-sided alpha per comparison
    planned_final: float  # planned final information of the first comparison's two arms (events, or
    # patients for a binary primary test): the final target times their share of the allocation
    binding: bool  # futility binding
    grid_r: int  # grid density of the observed-information bounds (boundaries.GRID_R)
    sel_look: int  # look of the dose selection (-1: none)
    sel_rule: int  # 0: the best arm; 1: every arm above the threshold
    sel_weight: float  # utility = P(CR/CRi) - weight x P(post-HSCT SOS)
    sel_threshold: float  # utility threshold of rule 1
    sel_eval: float  # months a patient is followed before counting in the utility


class Slots(NamedTuple):
    """A chunk's patient slots, each (trials, slots) but ``tte``/``binary_time`` (endpoint, trials, slots).

    See the module docstring; ``arm`` is the arm each slot is analysed in.
    """

    entry: np.ndarray
    drop_u: np.ndarray
    stratum: np.ndarray
    arm: np.ndarray
    tte: np.ndarray
    binary_time: np.ndarray


class Results(NamedTuple):
    """Output of :func:`analyse` for a chunk of trials; ``M`` = tests x comparisons, column
    ``m = test * C + comparison``. Looks after the stop hold NaN / ``NOT_REACHED`` / 0."""

    res: np.ndarray  # float64[trials, looks, M, N_RESULT]: statistic, p, z, estimate, lower, upper
    events: np.ndarray  # int64[trials, looks, M]: events (responders) in the two compared arms
    patients: np.ndarray  # int64[trials, looks, M]: patients in the two compared arms
    decision: np.ndarray  # int8[trials, looks, M]: EFFICACY, FUTILITY, HARM, CONTINUE or NOT_REACHED
    cut: np.ndarray  # float64[trials, looks]: calendar cut (NaN: not reached)
    enrolled: np.ndarray  # int64[trials, looks]: patients enrolled by the cut
    stop_look: np.ndarray  # int64[trials]: look at which the trial stopped


def empty_results(n_trials: int, n_looks: int, m: int) -> Results:
    """Uninitialised :class:`Results` for ``n_trials`` trials (every cell is written by :func:`analyse`)."""
    return Results(res=np.empty((n_trials, n_looks, m, N_RESULT)),
                   events=np.empty((n_trials, n_looks, m), dtype=np.int64),
                   patients=np.empty((n_trials, n_looks, m), dtype=np.int64),
                   decision=np.empty((n_trials, n_looks, m), dtype=np.int8),
                   cut=np.empty((n_trials, n_looks)), enrolled=np.empty((n_trials, n_looks), dtype=np.int64),
                   stop_look=np.empty(n_trials, dtype=np.int64))


@njit(cache=True)
def inverse_cumulative(x, rates, ends):
    """Time at which a piecewise-constant rate (``rates[k]`` up to ``ends[k]``) accumulates ``x``."""
    start = 0.0
    acc = 0.0
    for k in range(rates.shape[0]):
        span = ends[k] - start
        if rates[k] > 0.0 and (acc + rates[k] * span >= x or k == rates.shape[0] - 1):
            return start + (x - acc) / rates[k]
        if k == rates.shape[0] - 1:
            return math.inf
        acc += rates[k] * span
        start = ends[k]
    return math.inf


@njit(cache=True)
def piecewise_time(u, rates, ends):
    """Event time (months) with hazard ``rates[k]`` per month up to ``ends[k]`` (last: inf), from a uniform."""
    return inverse_cumulative(-math.log(u), rates, ends)


@njit(cache=True, parallel=True)
def slot_draws(seed, first_trial, rates, ends, random_entry, entry, drop_u, pe_u):
    """Entry times and the dropout and piecewise-exponential uniforms of every slot.

    Parameters
    ----------
    rates, ends : float64[:]
        Enrolment rate (patients per month) up to each end (months; the last is inf).
    random_entry : bool
        Poisson process (unit-exponential gaps in cumulative intensity) if True; else
        slot ``i`` enters when the cumulative intensity reaches ``i + 1`` (evenly spaced, as rpact).
    entry, drop_u : float64[:, :]
        Output (trials, slots): calendar entry (months) and dropout uniform.
    pe_u : float64[:, :]
        Output uniform of the piecewise-exponential outcome (shape (0, 0): not drawn).
    """
    with_pe = pe_u.shape[0] > 0
    for t in prange(entry.shape[0]):
        base = (first_trial + t) * MAX_SLOTS
        acc = 0.0
        for i in range(entry.shape[1]):
            key = patient_key(seed, base + i)
            if random_entry:
                acc -= math.log(draw(key, S_ENTRY))
            else:
                acc = i + 1.0
            entry[t, i] = inverse_cumulative(acc, rates, ends)
            drop_u[t, i] = draw(key, S_DROPOUT)
            if with_pe:
                pe_u[t, i] = draw(key, S_PIECEWISE)


@njit(cache=True, parallel=True)
def piecewise_fill(arm, pe_u, rates, ends, tte):
    """Piecewise-exponential event times of every slot under its arm, for every time endpoint.

    ``rates[a]``/``ends[a]``: hazard per month of arm ``a`` up to each end (padded with the
    last rate and inf). The uniform is the slot's, whatever the arm (common random numbers).
    """
    for t in prange(arm.shape[0]):
        for i in range(arm.shape[1]):
            a = arm[t, i]
            x = piecewise_time(pe_u[t, i], rates[a], ends[a])
            for e in range(tte.shape[0]):
                tte[e, t, i] = x


@njit(cache=True, parallel=True)
def randomise(dc, seed, first_trial, entry, stratum, switch, active, arm):
    """Permuted-block randomisation within strata, in order of entry.

    Before ``switch[t]`` (calendar months) every arm is in the blocks (``dc.ratios[a]`` x
    ``dc.block_mult`` places each); slots entering at or after it are randomised in new blocks
    among the arms with ``active[t, a]`` only (dose selection). Block ``b`` of stratum ``s`` in
    phase ``p`` is a Fisher-Yates permutation drawn from the trial's key, so a slot's arm depends
    only on the slots before it in its stratum.

    Parameters
    ----------
    dc : DesignConstants
        The design.
    entry : float64[:, :]
        Entry times (trials, slots), increasing along slots.
    stratum : int64[:, :]
        Stratum codes ``0 .. dc.n_strata - 1``.
    switch : float64[:]
        Per trial: entry time from which only active arms are randomised (inf: never).
    active : int8[:, :]
        (trials, arms): arms randomised from ``switch`` on.
    arm : int64[:, :]
        Output arm index of every slot.
    """
    n_strata = dc.n_strata
    ratios = dc.ratios
    n_arms = ratios.shape[0]
    for t in prange(entry.shape[0]):
        key = patient_key(seed, (first_trial + t) * MAX_SLOTS)
        block = np.empty((n_strata, MAX_BLOCK), np.int64)
        pos = np.zeros(n_strata, np.int64)
        size = np.zeros(n_strata, np.int64)
        count = np.zeros(n_strata, np.int64)
        phase = 0
        for i in range(entry.shape[1]):
            if phase == 0 and entry[t, i] >= switch[t]:
                phase = 1
                pos[:] = 0
                size[:] = 0
                count[:] = 0
            s = stratum[t, i]
            if pos[s] == size[s]:  # a new block: fill in arm order, then permute
                m = 0
                for a in range(n_arms):
                    if phase == 0 or active[t, a]:
                        for _ in range(ratios[a] * dc.block_mult):
                            block[s, m] = a
                            m += 1
                base = S_BLOCK + ((phase * n_strata + s) * MAX_SLOTS + count[s]) * MAX_BLOCK
                for j in range(m - 1, 0, -1):
                    k = int(draw(key, base + j) * (j + 1))
                    block[s, j], block[s, k] = block[s, k], block[s, j]
                size[s] = m
                pos[s] = 0
                count[s] += 1
            arm[t, i] = block[s, pos[s]]
            pos[s] += 1


# ---------------------------------------------------------------------------------------
# cuts
# ---------------------------------------------------------------------------------------


@njit(cache=True)
def _event_calendar(entry, tte, dropout, n):
    """Calendar times of the observable events of one endpoint, sorted, their count, and
    the time by which every patient's outcome is known (last event or dropout)."""
    cal = np.empty(n)
    m = 0
    last = 0.0
    for i in range(n):
        end = min(tte[i], dropout[i])
        if end < math.inf:
            last = max(last, entry[i] + end)
        if tte[i] <= dropout[i] and tte[i] < math.inf:
            cal[m] = entry[i] + tte[i]
            m += 1
    cal = cal[:m]
    return cal[np.argsort(cal)], m, max(last, entry[n - 1])


@njit(cache=True)
def look_cut(look, prev, looks, last_entry, cal, n_events, known):
    """Calendar time of one look by simtrial's rule.

    ``min(max(calendar, time of the target event, previous + gap, last entry + min
    follow-up), max extension)``, never before the previous look; a target that is never
    reached without a max extension waits until every outcome is known.

    Parameters
    ----------
    look : int
        Look index.
    prev : float
        Previous look's cut (0 for the first).
    looks : float64[:, N_L]
        Look criteria (NaN: unused).
    last_entry : float
        Entry time of the last slot.
    cal, n_events, known
        Of the look's endpoint, from :func:`_event_calendar` (``cal`` sorted).
    """
    c = -math.inf
    row = looks[look]
    if not math.isnan(row[L_CALENDAR]):
        c = max(c, row[L_CALENDAR])
    if not math.isnan(row[L_EVENTS]):
        k = int(row[L_EVENTS])
        c = max(c, cal[k - 1] if k <= n_events else math.inf)  # the k-th event
    if not math.isnan(row[L_MIN_FU]):
        c = max(c, last_entry + row[L_MIN_FU])
    if not math.isnan(row[L_GAP]) and look > 0:
        c = max(c, prev + row[L_GAP])
    if not math.isnan(row[L_MAX_EXT]):
        c = min(c, row[L_MAX_EXT])
    if c == math.inf:
        c = known
    return max(c, prev)


@njit(cache=True)
def seen(time, dropout, entry, cut):
    """Whether an outcome ``time`` months after ``entry`` is observed at calendar ``cut``:
    it happens before dropout (months after entry) and by the cut (``inf`` never is)."""
    return time <= dropout and entry + time <= cut


@njit(cache=True)
def _dropout_times(drop_u, arm, drop_rate, n):
    out = np.empty(n)
    for i in range(n):
        r = drop_rate[arm[i]]
        out[i] = -math.log(drop_u[i]) / r if r > 0.0 else math.inf
    return out


@njit(cache=True)
def _calendars(entry, tte, t, dropout, n, looks):
    """Event calendars of the endpoints that cut looks (of trial ``t``, an int64)."""
    n_ep = tte.shape[0]
    cals = []
    counts = np.zeros(n_ep, np.int64)
    known = np.zeros(n_ep)
    for e in range(n_ep):
        used = False
        for k in range(looks.shape[0]):
            used = used or int(looks[k, L_ENDPOINT]) == e
        if used:
            cal, m, kn = _event_calendar(entry, tte[e, t], dropout, n)
        else:
            cal, m, kn = np.empty(0), 0, entry[n - 1]
        cals.append(cal)
        counts[e] = m
        known[e] = kn
    return cals, counts, known


# ---------------------------------------------------------------------------------------
# selection
# ---------------------------------------------------------------------------------------


@njit(cache=True, parallel=True)
def select_arms(dc, seed, first_trial, s, selected, utility, sel_cut):
    """Dose selection at look ``dc.sel_look``: utility = P(CR/CRi) - weight x P(post-HSCT SOS).

    Among the slots ``s`` (:class:`Slots`, first randomisation) followed ``dc.sel_eval``
    months by the look's cut, counting the responses and SOS seen by the cut (:func:`seen`).
    ``dc.sel_rule`` 0: the best experimental arm (ties broken at random, stream ``S_TIE`` of
    the trial's key); 1: every arm with utility >= ``dc.sel_threshold``.
    Writes ``selected[t, a]`` (1 = continues; the control always), ``utility[t, a]`` (NaN for
    the control or an arm without evaluable patients) and ``sel_cut[t]``.
    """
    entry, arm, binary_time, looks, control = s.entry, s.arm, s.binary_time, dc.looks, dc.control
    n_arms = dc.drop_rate.shape[0]
    n = entry.shape[1]
    for t in prange(entry.shape[0]):
        dropout = _dropout_times(s.drop_u[t], arm[t], dc.drop_rate, n)
        cals, counts, known = _calendars(entry[t], s.tte, np.int64(t), dropout, n, looks)
        c = 0.0
        for k in range(dc.sel_look + 1):
            e = int(looks[k, L_ENDPOINT])
            c = look_cut(k, c, looks, entry[t, n - 1], cals[e], counts[e], known[e])
        sel_cut[t] = c
        cr = np.zeros(n_arms)
        sos = np.zeros(n_arms)
        m = np.zeros(n_arms)
        for i in range(n):
            if entry[t, i] + dc.sel_eval > c:
                break
            a = arm[t, i]
            m[a] += 1.0
            cr[a] += seen(binary_time[BIN_CR, t, i], dropout[i], entry[t, i], c)
            sos[a] += seen(binary_time[BIN_SOS, t, i], dropout[i], entry[t, i], c)
        best = -math.inf
        for a in range(n_arms):
            selected[t, a] = 1 if a == control else 0
            utility[t, a] = math.nan
            if a != control and m[a] > 0.0:
                utility[t, a] = (cr[a] - dc.sel_weight * sos[a]) / m[a]
                best = max(best, utility[t, a])
                if dc.sel_rule == 1 and utility[t, a] >= dc.sel_threshold:
                    selected[t, a] = 1
        if dc.sel_rule == 0 and best > -math.inf:
            ties = 0
            for a in range(n_arms):
                ties += utility[t, a] == best
            pick = int(draw(patient_key(seed, (first_trial + t) * MAX_SLOTS), S_TIE) * ties)
            for a in range(n_arms):
                if utility[t, a] == best:
                    if pick == 0:
                        selected[t, a] = 1
                    pick -= 1


# ---------------------------------------------------------------------------------------
# analyses
# ---------------------------------------------------------------------------------------


@njit(cache=True)
def _norm_sf(z):
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@njit(cache=True)
def _z_of_p(p):
    """The z whose one-sided p-value is ``p`` (NaN stays NaN)."""
    if math.isnan(p):
        return math.nan
    return -norm_ppf_nb(min(max(p, 1e-300), 1.0 - 1e-16))


@njit(cache=True)
def _put(res, statistic, p, z, estimate, lo, hi):
    res[0] = statistic
    res[1] = p
    res[2] = z
    res[3] = estimate
    res[4] = lo
    res[5] = hi


@njit(cache=True)
def time_test(q, time, event, arm, strat, n_strata, ctl, exp, z_ci, res):
    """One time-to-event test on data sorted by time.

    Parameters
    ----------
    q : float64[N_Q]
        The test's parameters (a row of ``DesignConstants.tests``).
    time, event, arm, strat : 1-D arrays
        Observed time (months), event (1) or censoring (0), arm index and stratum code of
        each patient, in increasing order of time.
    n_strata : int
        Number of strata.
    ctl, exp : int
        The compared arms.
    z_ci : float
        Normal quantile of the confidence interval.
    res : float64[N_RESULT]
        Output: statistic, one-sided p, z, estimate, lower and upper confidence limit.
    """
    code = int(q[Q_TYPE])
    ns = n_strata
    if q[Q_STRATIFIED] == 0:  # one stratum: every code 0
        ns = 1
        strat = np.zeros_like(strat)
    nan = math.nan
    if code == T_LOGRANK:
        z, oe, var = st.logrank(time, event, arm, ctl, exp, strat, ns, q[Q_RHO], q[Q_GAMMA])
        p = _norm_sf(z)
        if q[Q_RHO] == 0.0 and q[Q_GAMMA] == 0.0:  # Peto's hazard ratio; a weighted test estimates none
            b = oe / var if var > 0.0 else nan
            h = z_ci / math.sqrt(var) if var > 0.0 else nan
            _put(res, z, p, z, math.exp(b), math.exp(b - h), math.exp(b + h))
        else:
            _put(res, z, p, z, nan, nan, nan)
    elif code == T_MAXCOMBO:
        z, p = st.maxcombo(time, event, arm, ctl, exp, strat, ns, st.MAXCOMBO_RHO, st.MAXCOMBO_GAMMA)
        _put(res, z, p, _z_of_p(p), nan, nan, nan)
    elif code == T_COX:
        b, se, z = st.cox(time, event, arm, ctl, exp, strat, ns, q[Q_EFRON] > 0)
        _put(res, z, _norm_sf(z), z, math.exp(b), math.exp(b - z_ci * se), math.exp(b + z_ci * se))
    else:
        if code == T_RMST:
            d, se, z = st.rmst(time, event, arm, ctl, exp, q[Q_HORIZON])
        else:
            d, se, z = st.milestone(time, event, arm, ctl, exp, q[Q_HORIZON])
        _put(res, z, _norm_sf(z), z, d, d - z_ci * se, d + z_ci * se)


@njit(cache=True)
def binary_test(q, x, arm, strat, n_strata, ctl, exp, z_ci, res):
    """One binary-endpoint test; as :func:`time_test` with ``x`` (1: the event happened,
    already flipped when lower is better) instead of time and event."""
    code = int(q[Q_TYPE])
    nan = math.nan
    d, se, z = st.proportions(x, arm, ctl, exp)
    lo, hi = d - z_ci * se, d + z_ci * se
    if code == T_PROPORTIONS:
        _put(res, z, _norm_sf(z), z, d, lo, hi)
    elif code == T_FISHER:
        k_e, n_e, k_c, n_c = st.arm_counts(x, arm, ctl, exp)
        p = st.fisher_one_sided(k_e, n_e, k_c, n_c) if n_e > 0 and n_c > 0 else nan
        z = _z_of_p(p)
        _put(res, z, p, z, d, lo, hi)
    else:
        ns = n_strata
        if q[Q_STRATIFIED] == 0:  # one stratum: every code 0
            ns = 1
            strat = np.zeros_like(strat)
        z, rd, _ = st.cmh(x, arm, ctl, exp, strat, ns)
        _put(res, z, _norm_sf(z), z, rd, nan, nan)
    if q[Q_LOWER_BETTER] > 0:  # report the difference in the adverse event's rate
        res[3], res[4], res[5] = -res[3], -res[5], -res[4]


@njit(cache=True)
def _gather_sorted(tte_e, dropout, entry, arm, stratum, n_in, cut):
    """Observed (time, event) of the first ``n_in`` slots at ``cut``, sorted by time (one argsort)."""
    time = np.empty(n_in)
    event = np.empty(n_in, np.int8)
    for i in range(n_in):
        t = tte_e[i]
        if t <= dropout[i] and entry[i] + t <= cut:
            time[i] = t
            event[i] = 1
        else:
            time[i] = min(dropout[i], cut - entry[i])
            event[i] = 0
    order = np.argsort(time)
    return time[order], event[order], arm[:n_in][order], stratum[:n_in][order]


@njit(cache=True)
def _analyse_trial(dc, s, alive0, out, t):
    """Trial ``t`` (an int64) of :func:`analyse` (a plain function: no parfor transformations inside)."""
    entry, arm, stratum, tte, binary_time = s.entry, s.arm, s.stratum, s.tte, s.binary_time
    looks, tests, comparisons, control, lower = dc.looks, dc.tests, dc.comparisons, dc.control, dc.lower
    res, events, n_pat, decision, cut = out.res, out.events, out.patients, out.decision, out.cut
    sided, n_strata, z_ci, primary = dc.sided, dc.n_strata, dc.z_ci, dc.primary
    n = entry.shape[1]
    n_looks = looks.shape[0]
    n_tests = tests.shape[0]
    n_cmp = comparisons.shape[0]
    n_arms = dc.drop_rate.shape[0]
    dropout = _dropout_times(s.drop_u[t], arm[t], dc.drop_rate, n)
    cals, counts, known = _calendars(entry[t], tte, t, dropout, n, looks)
    info = np.empty(n_looks)
    spent = np.empty(n_looks)
    alive = np.ones(n_arms, np.int8)
    res[t] = math.nan
    events[t] = 0
    n_pat[t] = 0
    decision[t] = NOT_REACHED
    cut[t] = math.nan
    out.enrolled[t] = 0
    c = 0.0
    q_p = tests[primary]
    prim_events = 0
    r = np.empty(N_RESULT)
    for k in range(n_looks):
        e_look = int(looks[k, L_ENDPOINT])
        c = look_cut(k, c, looks, entry[t, n - 1], cals[e_look], counts[e_look], known[e_look])
        cut[t, k] = c
        n_in = np.searchsorted(entry[t], c, side="left")
        out.enrolled[t, k] = n_in
        if k == dc.sel_look:
            for a in range(n_arms):
                alive[a] = alive0[t, a]
        sorted_e = -1
        b = 0
        n_ev = 0
        x = np.empty(0, np.int8)
        happened = np.empty(0, np.int8)
        a_b = arm[t, :0]
        s_b = stratum[t, :0]
        time = np.empty(0)
        event = np.empty(0, np.int8)
        a_s = np.empty(0, np.int64)
        s_s = np.empty(0, np.int64)
        for j in range(n_tests):
            q = tests[j]
            is_binary = q[Q_TYPE] >= T_PROPORTIONS
            if is_binary:
                b = int(q[Q_ENDPOINT])
                n_ev = np.searchsorted(entry[t], c - q[Q_EVAL], side="right")
                x = np.empty(n_ev, np.int8)
                happened = np.empty(n_ev, np.int8)
                flip = q[Q_LOWER_BETTER] > 0
                for i in range(n_ev):
                    happened[i] = seen(binary_time[b, t, i], dropout[i], entry[t, i], c)
                    x[i] = 1 - happened[i] if flip else happened[i]
                a_b = arm[t, :n_ev]
                s_b = stratum[t, :n_ev]
            else:
                e = int(q[Q_ENDPOINT])
                if e != sorted_e:
                    time, event, a_s, s_s = _gather_sorted(tte[e, t], dropout, entry[t], arm[t],
                                                           stratum[t], n_in, c)
                    sorted_e = e
            for ci in range(n_cmp):
                ex = comparisons[ci]
                if not alive[ex]:
                    continue
                m = j * n_cmp + ci
                if is_binary:
                    binary_test(q, x, a_b, s_b, n_strata, control, ex, z_ci, r)
                    ev = 0
                    pts = 0
                    for i in range(n_ev):
                        if a_b[i] == ex or a_b[i] == control:
                            pts += 1
                            ev += happened[i]
                else:
                    time_test(q, time, event, a_s, s_s, n_strata, control, ex, z_ci, r)
                    ev = 0
                    pts = 0
                    for i in range(n_in):
                        if a_s[i] == ex or a_s[i] == control:
                            pts += 1
                            ev += event[i]
                if sided == 2:
                    r[1] = 2.0 * min(r[1], 1.0 - r[1])
                for f in range(N_RESULT):
                    res[t, k, m, f] = r[f]
                events[t, k, m] = ev
                n_pat[t, k, m] = pts
                if j == primary and ci == 0:
                    prim_events = ev
        # bounds at this look
        if dc.observed:
            if q_p[Q_TYPE] >= T_PROPORTIONS:
                frac = n_pat[t, k, primary * n_cmp] / dc.planned_final
            else:
                frac = prim_events / dc.planned_final
            if k < n_looks - 1:
                frac = min(frac, 1.0)
            if k > 0 and frac <= info[k - 1]:
                frac = info[k - 1] + 1e-6
            info[k] = frac
            spent[k] = spend_nb(dc.spend_code, frac, dc.alpha_cmp, dc.spend_param)
            if k == n_looks - 1:  # all the rest at the final look's actual information (over- or underrun)
                spent[k] = dc.alpha_cmp
            ub = efficacy_bounds_nb(info[:k + 1], spent[:k + 1], lower[:k + 1], dc.binding, dc.grid_r)[k]
        else:
            ub = dc.upper[k]
        lb = lower[k] if sided == 1 else -math.inf
        any_eff = False
        all_fut = True
        n_alive = 0
        for j in range(n_tests):
            for ci in range(n_cmp):
                m = j * n_cmp + ci
                if not alive[comparisons[ci]]:
                    continue
                z = res[t, k, m, 2]
                d = CONTINUE
                if z > ub:
                    d = EFFICACY
                elif sided == 2 and z < -ub:
                    d = HARM
                elif z < lb:
                    d = FUTILITY
                decision[t, k, m] = d
                if j == primary:
                    n_alive += 1
                    any_eff = any_eff or d == EFFICACY or d == HARM
                    all_fut = all_fut and d == FUTILITY
        out.stop_look[t] = k
        if any_eff or (all_fut and n_alive > 0) or n_alive == 0:
            break


@njit(cache=True, parallel=True)
def analyse(dc, s, alive0, out):
    """Every look of every trial: cuts, tests, boundary crossings; the first crossing stops.

    Parameters
    ----------
    dc : DesignConstants
        The design: looks, tests, comparisons, bounds (planned, or spent on observed
        information), sidedness, look of the dose selection.
    s : Slots
        The chunk's slots, each in its final arm.
    alive0 : int8[:, :]
        (trials, arms): arms still compared from look ``dc.sel_look`` on (all 1 without selection).
    out : Results
        Output, every cell written.
    """
    for t in prange(s.entry.shape[0]):
        _analyse_trial(dc, s, alive0, out, np.int64(t))
