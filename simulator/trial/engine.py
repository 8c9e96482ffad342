"""Numba kernels of the trial engine: arrays in, arrays out, one ``prange`` over trials.

Nothing here knows about YAML, dataclasses or xarray; :mod:`simulator.trial.run` converts
a validated design into the arrays below (the one conversion point) and wraps the results.

Layout. A chunk holds ``n_trials`` trials of ``n_slots`` patient slots each; slot ``i`` of
trial ``r`` is patient id ``r * MAX_SLOTS + i`` of the model (trial-scoped ids with a fixed
stride), and slots enter in order (slot ``i`` enters no later than slot ``i + 1``). Times are
months from the first patient's entry (calendar) or from a patient's entry (follow-up).

* ``entry[t, i]``: calendar entry time; ``arm[t, i]``: arm index; ``stratum[t, i]``;
* ``tte[e, t, i]``: time of time-to-event endpoint ``e`` (``EP_OS``, ``EP_PFS``) from
  entry, ``inf`` if it never happens; ``binary[b, t, i]``: binary endpoint ``b``
  (``BIN_CR``, ``BIN_SOS``, ``BIN_G3AE``), 1 = happened;
* ``drop_u[t, i]``: the uniform of the exponential dropout time ``-log(u) / rate[arm]``.

Random numbers for entry, dropout, piecewise-exponential outcomes and the randomisation
blocks are :func:`simulator.model.kernel.draw` hashes of the patient key with stream ids
above every stream of the model (``S_ENTRY`` ...), so they never coincide with a model draw.

The trial layer alone censors: a patient's observed time at a cut ``c`` is the event time
if it happens before dropout and ``entry + time <= c`` (compared on the calendar, so the
look cut at the k-th event includes that event), else ``min(dropout, c - entry)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from simulator.model.kernel import draw, patient_key
from simulator.trial import statistics as st
from simulator.trial.boundaries import GRID_R, norm_ppf_nb, efficacy_bounds_nb, spend_nb

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


@njit(cache=True)
def _inverse_cumulative(x, rates, ends):
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
    return _inverse_cumulative(-math.log(u), rates, ends)


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
            entry[t, i] = _inverse_cumulative(acc, rates, ends)
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
def randomise(seed, first_trial, entry, stratum, n_strata, ratios, block_mult, switch, active, arm):
    """Permuted-block randomisation within strata, in order of entry.

    Before ``switch[t]`` (calendar months) every arm is in the blocks (``ratios[a]`` x
    ``block_mult`` places each); slots entering at or after it are randomised in new blocks
    among the arms with ``active[t, a]`` only (dose selection). Block ``b`` of stratum ``s`` in
    phase ``p`` is a Fisher-Yates permutation drawn from the trial's key, so a slot's arm depends
    only on the slots before it in its stratum.

    Parameters
    ----------
    entry : float64[:, :]
        Entry times (trials, slots), increasing along slots.
    stratum : int64[:, :]
        Stratum codes ``0 .. n_strata - 1``.
    ratios : int64[:]
        Allocation ratio of each arm.
    switch : float64[:]
        Per trial: entry time from which only active arms are randomised (inf: never).
    active : int8[:, :]
        (trials, arms): arms randomised from ``switch`` on.
    arm : int64[:, :]
        Output arm index of every slot.
    """
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
                        for _ in range(ratios[a] * block_mult):
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
    """Calendar times of the observable events of one endpoint (unsorted), their count, and
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
    return cal[:m], m, max(last, entry[n - 1])


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
        Of the look's endpoint, from :func:`_event_calendar`.
    """
    c = -math.inf
    row = looks[look]
    if not math.isnan(row[L_CALENDAR]):
        c = max(c, row[L_CALENDAR])
    if not math.isnan(row[L_EVENTS]):
        k = int(row[L_EVENTS])
        c = max(c, np.partition(cal, k - 1)[k - 1] if k <= n_events else math.inf)  # the k-th event
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
def _dropout_times(drop_u, arm, drop_rate, n):
    out = np.empty(n)
    for i in range(n):
        r = drop_rate[arm[i]]
        out[i] = -math.log(drop_u[i]) / r if r > 0.0 else math.inf
    return out


@njit(cache=True)
def _calendars(entry, tte, t, dropout, n, looks):
    """Event calendars of the endpoints that cut looks (of trial ``t``)."""
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
def select_arms(seed, first_trial, entry, arm, tte, binary, drop_u, drop_rate, looks, sel_look, control, rule,
                weight, threshold, eval_months, selected, utility, sel_cut):
    """Dose selection at look ``sel_look``: utility = P(CR/CRi) - weight x P(post-HSCT SOS).

    Among patients followed ``eval_months`` by the look's cut. ``rule`` 0: the best
    experimental arm (ties broken at random, stream ``S_TIE`` of the trial's key); 1: every
    arm with utility >= ``threshold``.
    Writes ``selected[t, a]`` (1 = continues; the control always), ``utility[t, a]`` (NaN for
    the control or an arm without evaluable patients) and ``sel_cut[t]``.
    """
    n_arms = drop_rate.shape[0]
    n = entry.shape[1]
    for t in prange(entry.shape[0]):
        dropout = _dropout_times(drop_u[t], arm[t], drop_rate, n)
        cals, counts, known = _calendars(entry[t], tte, t, dropout, n, looks)
        c = 0.0
        for k in range(sel_look + 1):
            e = int(looks[k, L_ENDPOINT])
            c = look_cut(k, c, looks, entry[t, n - 1], cals[e], counts[e], known[e])
        sel_cut[t] = c
        cr = np.zeros(n_arms)
        sos = np.zeros(n_arms)
        m = np.zeros(n_arms)
        for i in range(n):
            if entry[t, i] + eval_months > c:
                break
            a = arm[t, i]
            m[a] += 1.0
            cr[a] += binary[BIN_CR, t, i]
            sos[a] += binary[BIN_SOS, t, i]
        best = -math.inf
        for a in range(n_arms):
            selected[t, a] = 1 if a == control else 0
            utility[t, a] = math.nan
            if a != control and m[a] > 0.0:
                utility[t, a] = (cr[a] - weight * sos[a]) / m[a]
                best = max(best, utility[t, a])
                if rule == 1 and utility[t, a] >= threshold:
                    selected[t, a] = 1
        if rule == 0 and best > -math.inf:
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
def _time_test(q, time, event, arm, strat, n_strata, ctl, exp, z_ci, res):
    """One time-to-event test on sorted data; writes statistic, p, z, estimate, lower, upper."""
    code = int(q[Q_TYPE])
    ns = n_strata
    if q[Q_STRATIFIED] == 0:  # one stratum: every code 0
        ns = 1
        strat = np.zeros_like(strat)
    nan = math.nan
    if code == T_LOGRANK:
        z, oe, var = st.logrank(time, event, arm, ctl, exp, strat, ns, q[Q_RHO], q[Q_GAMMA])
        p = _norm_sf(z)
        b = oe / var if var > 0.0 else nan
        h = z_ci / math.sqrt(var) if var > 0.0 else nan
        _put(res, z, p, z, math.exp(b), math.exp(b - h), math.exp(b + h))
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
def _binary_test(q, x, arm, strat, n_strata, ctl, exp, z_ci, res):
    """One binary-endpoint test; ``x`` is already flipped when lower is better."""
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
    elif q[Q_STRATIFIED] > 0:
        z, rd, _ = st.cmh(x, arm, ctl, exp, strat, n_strata)
        _put(res, z, _norm_sf(z), z, rd, nan, nan)
    else:
        z, rd, _ = st.cmh(x, arm, ctl, exp, np.zeros_like(strat), 1)
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
def _analyse_trial(t, entry, arm, stratum, n_strata, tte, binary, drop_u, drop_rate, looks, tests, control,
                   comparisons, primary, upper, lower, sided, z_ci, observed, spend_code, spend_param,
                   alpha_cmp, planned_final, binding, alive0, sel_look,
                   res, events, n_pat, decision, cut, enrolled, stop_look):
    """One trial of :func:`analyse` (a plain function: no parfor transformations inside)."""
    n = entry.shape[1]
    n_looks = looks.shape[0]
    n_tests = tests.shape[0]
    n_cmp = comparisons.shape[0]
    n_arms = drop_rate.shape[0]
    dropout = _dropout_times(drop_u[t], arm[t], drop_rate, n)
    cals, counts, known = _calendars(entry[t], tte, t, dropout, n, looks)
    info = np.empty(n_looks)
    spent = np.empty(n_looks)
    alive = np.ones(n_arms, np.int8)
    res[t] = math.nan
    events[t] = 0
    n_pat[t] = 0
    decision[t] = NOT_REACHED
    cut[t] = math.nan
    enrolled[t] = 0
    c = 0.0
    q_p = tests[primary]
    prim_events = 0
    r = np.empty(6)
    for k in range(n_looks):
        e_look = int(looks[k, L_ENDPOINT])
        c = look_cut(k, c, looks, entry[t, n - 1], cals[e_look], counts[e_look], known[e_look])
        cut[t, k] = c
        n_in = np.searchsorted(entry[t], c, side="left")
        enrolled[t, k] = n_in
        if k == sel_look:
            alive[:] = alive0[t]
        sorted_e = -1
        b = 0
        n_ev = 0
        x = np.empty(0, np.int8)
        a_b = arm[t, :0]
        s_b = stratum[t, :0]
        time = np.empty(0)
        event = np.empty(0, np.int8)
        a_s = np.empty(0, np.int64)
        s_s = np.empty(0, np.int64)
        for j in range(n_tests):
            q = tests[j]
            binary_test = q[Q_TYPE] >= T_PROPORTIONS
            if binary_test:
                b = int(q[Q_ENDPOINT])
                n_ev = np.searchsorted(entry[t], c - q[Q_EVAL], side="right")
                x = np.empty(n_ev, np.int8)
                flip = q[Q_LOWER_BETTER] > 0
                for i in range(n_ev):
                    x[i] = 1 - binary[b, t, i] if flip else binary[b, t, i]
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
                if binary_test:
                    _binary_test(q, x, a_b, s_b, n_strata, control, ex, z_ci, r)
                    ev = 0
                    pts = 0
                    for i in range(n_ev):
                        if a_b[i] == ex or a_b[i] == control:
                            pts += 1
                            ev += binary[b, t, i]
                else:
                    _time_test(q, time, event, a_s, s_s, n_strata, control, ex, z_ci, r)
                    ev = 0
                    pts = 0
                    for i in range(n_in):
                        if a_s[i] == ex or a_s[i] == control:
                            pts += 1
                            ev += event[i]
                if sided == 2:
                    r[1] = 2.0 * min(r[1], 1.0 - r[1])
                res[t, k, m] = r
                events[t, k, m] = ev
                n_pat[t, k, m] = pts
                if j == primary and ci == 0:
                    prim_events = ev
        # bounds at this look
        if observed:
            if q_p[Q_TYPE] >= T_PROPORTIONS:
                frac = n_pat[t, k, primary * n_cmp] / planned_final
            else:
                frac = prim_events / planned_final
            frac = min(frac, 1.0) if k < n_looks - 1 else 1.0
            if k > 0 and frac <= info[k - 1]:
                frac = info[k - 1] + 1e-6
            info[k] = frac
            spent[k] = spend_nb(spend_code, frac, alpha_cmp, spend_param)
            if k == n_looks - 1:
                spent[k] = alpha_cmp
            ub = efficacy_bounds_nb(info[:k + 1], spent[:k + 1], lower[:k + 1], binding, GRID_R)[k]
        else:
            ub = upper[k]
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
        stop_look[t] = k
        if any_eff or (all_fut and n_alive > 0) or n_alive == 0:
            break


@njit(cache=True, parallel=True)
def analyse(entry, arm, stratum, n_strata, tte, binary, drop_u, drop_rate, looks, tests, control,
            comparisons, primary, upper, lower, sided, z_ci, observed, spend_code, spend_param,
            alpha_cmp, planned_final, binding, alive0, sel_look,
            res, events, n_pat, decision, cut, enrolled, stop_look):
    """Every look of every trial: cuts, tests, boundary crossings; the first crossing stops.

    Parameters
    ----------
    entry, arm, stratum, tte, binary, drop_u
        Slot arrays (see the module docstring).
    n_strata : int
        Number of strata.
    drop_rate : float64[:]
        Dropout rate of each arm, per month.
    looks : float64[:, N_L]
        Look criteria.
    tests : float64[:, N_Q]
        Test parameters (``Q_*`` columns).
    control : int
        Control arm index.
    comparisons : int64[:]
        Experimental arm of each comparison; result column ``m = test * C + comparison``.
    primary : int
        Index of the test that decides.
    upper, lower : float64[:]
        Planned efficacy and futility z bounds per look (``lower`` -inf: none).
    sided : int
        1: reject for z > upper; 2: also for z < -upper (harm), and no futility stop.
    z_ci : float
        Normal quantile of the confidence intervals.
    observed : bool
        Spend alpha on observed information (primary endpoint events / ``planned_final``;
        the last look spends the rest) instead of ``upper``.
    spend_code, spend_param, alpha_cmp, binding
        The spending function, its parameter, the alpha per comparison (one side) and
        whether futility is binding, for ``observed``.
    alive0 : int8[:, :]
        (trials, arms): arms still compared from look ``sel_look`` on (all 1 without selection).
    sel_look : int
        Look of the dose selection (-1: none).
    res : float64[:, :, :, 6]
        Output (trials, looks, M, [statistic, p, z, estimate, lower, upper]); NaN where not done.
    events, n_pat : int64[:, :, :]
        Output events (responders for binary endpoints) and patients in each comparison.
    decision : int8[:, :, :]
        Output ``EFFICACY``, ``FUTILITY``, ``HARM``, ``CONTINUE``, or ``NOT_REACHED``.
    cut, enrolled : (trials, looks)
        Output calendar cut (months; NaN if not reached) and patients enrolled by it.
    stop_look : int64[:]
        Output look at which each trial stopped.
    """
    for t in prange(entry.shape[0]):
        _analyse_trial(t, entry, arm, stratum, n_strata, tte, binary, drop_u, drop_rate, looks, tests, control,
                       comparisons, primary, upper, lower, sided, z_ci, observed, spend_code, spend_param,
                       alpha_cmp, planned_final, binding, alive0, sel_look,
                       res, events, n_pat, decision, cut, enrolled, stop_look)
