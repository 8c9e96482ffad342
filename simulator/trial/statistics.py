"""Jitted two-arm test statistics for simulated randomised trials.

A trial engine simulates many trials in one numba ``prange`` kernel; for every
(trial, look, endpoint) it builds the analysis data set, sorts it once by time and calls
the functions below on the sorted arrays. They are plain ``@njit`` functions (not
parallel), make one or a few O(n) passes, allocate only small work arrays and return
floats or tuples of floats.

Conventions
-----------
Inputs
    ``time`` float64[:] sorted ascending (months; any stable or unstable sort will do,
    ties are handled as blocks); ``event`` int8 or bool[:] (1 = event, 0 = censored);
    ``arm`` int64[:] arm codes; the two compared arms are passed explicitly as ``ctl`` and
    ``exp`` and patients of any other code are ignored (multi-arm trials compare pairs);
    ``stratum`` int64[:] codes in ``0 .. n_strata - 1``. Binary endpoints take ``x``
    int8[:] (1 = response) instead of ``time``/``event``; they need no sorting.
Cost
    At n = 400, RMST, a milestone and Cox cost about 1, 0.5 and 2-3 log-ranks (Cox: a few
    Newton steps); MaxCombo about 50, nearly all of it the 4-dimensional normal
    probability of its p-value (:func:`mvn_cdf`).
Ties
    Times are tied when equal as floats (round them upstream if needed). All events at one
    time are processed together: hypergeometric variance for the log-rank family, Efron or
    Breslow for Cox. Patients censored at an event time are still at risk at that time.
Sign
    Every z statistic is positive when the experimental arm does better: fewer events than
    expected, hazard ratio (experimental vs control) below 1, longer RMST, higher survival
    at a milestone, higher response rate. For binary endpoints where LOWER is better
    (e.g. post-HSCT SOS) the caller flips the sign: negate ``z`` and ``diff``, or pass the
    complementary counts to :func:`fisher_one_sided`.
Degenerate data
    A statistic that is undefined (no patients, no events, zero variance, infinite Cox
    estimate) is returned as nan; ``nan > critical_value`` is False, so an engine that
    counts rejections counts it as "not rejected".
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from simulator.analysis.reductions import tied_run

NEWTON_TOL = 1e-10  # Cox: stop when the Newton step in log HR is below this
NEWTON_MAX_ITER = 30  # Cox: give up (return nan) after this many Newton steps
LOGLIK_SLACK = 1e-12  # Cox: a relative fall in the log-likelihood below this is rounding, not overshoot
MAX_ABS_LOG_HR = 20.0  # Cox: a converged |log HR| beyond this is a monotone likelihood: nan
MVN_LATTICE_POINTS = 233  # Fibonacci lattice of mvn_cdf: N = F(13) points ...
MVN_LATTICE_GENERATOR = 144  # ... with generating vector (1, F(12))
MVN_PIVOT_FLOOR = 1e-12  # conditional variances in mvn_cdf's Cholesky factor are floored here
MAX_MVN_DIM = 4  # mvn_cdf integrates d - 2 <= 2 dimensions numerically

# MaxCombo components FH(rho, gamma): FH(0,0), FH(0,0.5), FH(0.5,0), FH(0.5,0.5), the set
# recommended by the cross-pharma NPH working group (Roychoudhury et al., Stat Biopharm Res,
# 2021). simtrial's examples use exponents 1 instead: pass other arrays to maxcombo for that.
MAXCOMBO_RHO = np.array([0.0, 0.0, 0.5, 0.5])
MAXCOMBO_GAMMA = np.array([0.0, 0.5, 0.0, 0.5])

_SQRT2 = math.sqrt(2.0)
_TWO_PI = 2.0 * math.pi

# Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
_ACKLAM_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
             1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_ACKLAM_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
             6.680131188771972e01, -1.328068155288572e01)
_ACKLAM_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
             -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_ACKLAM_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
             3.754408661907416e00)
_ACKLAM_LOW = 0.02425
_PROB_FLOOR = 1e-300  # quantile arguments are clamped here (Phi^-1(1e-300) = -37)

# Gauss-Legendre rules of Genz's bivariate normal algorithm for |r| < 0.3, < 0.75 and above:
# 6, 12 and 12 points (Genz uses 20 for |r| >= 0.75: error 2e-16 instead of 2e-12, at 1.6
# times the cost). Rows of the arrays; unused entries are 0.
_GL_POINTS = np.array([6, 12, 12])
_GL_NODES = np.zeros((3, 12))
_GL_WEIGHTS = np.zeros((3, 12))
for _row, _m in enumerate(_GL_POINTS):
    _GL_NODES[_row, :_m], _GL_WEIGHTS[_row, :_m] = np.polynomial.legendre.leggauss(_m)
del _row, _m


# ---------------------------------------------------------------------------------------
# Time-to-event: risk table shared by the log-rank family and Cox
# ---------------------------------------------------------------------------------------


@njit(cache=True)
def _risk_table(time, event, arm, ctl, exp, stratum, n_strata):
    """Compress the sorted data to one row per (event time, stratum with events there).

    Returns ``(row_stratum, n_ctl, n_exp, d_ctl, d_exp, n_rows)``: per row the stratum,
    the numbers at risk just before the time and the numbers of events at it, per arm.
    Rows are in time order; arrays have length ``len(time)``, only ``n_rows`` are used.
    """
    n = time.shape[0]
    at_ctl = np.zeros(n_strata)
    at_exp = np.zeros(n_strata)
    for i in range(n):
        if arm[i] == ctl:
            at_ctl[stratum[i]] += 1.0
        elif arm[i] == exp:
            at_exp[stratum[i]] += 1.0
    d_c = np.zeros(n_strata)  # events / leavers of the current time block, per stratum
    d_e = np.zeros(n_strata)
    left_c = np.zeros(n_strata)
    left_e = np.zeros(n_strata)
    touched = np.empty(n_strata, np.int64)
    row_stratum = np.empty(n, np.int64)
    n_ctl = np.empty(n)
    n_exp = np.empty(n)
    d_ctl = np.empty(n)
    d_exp = np.empty(n)
    rows = 0
    i = 0
    while i < n:
        j = i
        n_touched = 0
        while j < n and time[j] == time[i]:
            a = arm[j]
            if a == ctl or a == exp:
                s = stratum[j]
                if left_c[s] + left_e[s] == 0.0:
                    touched[n_touched] = s
                    n_touched += 1
                if a == exp:
                    left_e[s] += 1.0
                    if event[j]:
                        d_e[s] += 1.0
                else:
                    left_c[s] += 1.0
                    if event[j]:
                        d_c[s] += 1.0
            j += 1
        for q in range(n_touched):
            s = touched[q]
            if d_c[s] + d_e[s] > 0.0:
                row_stratum[rows] = s
                n_ctl[rows] = at_ctl[s]
                n_exp[rows] = at_exp[s]
                d_ctl[rows] = d_c[s]
                d_exp[rows] = d_e[s]
                rows += 1
            at_ctl[s] -= left_c[s]
            at_exp[s] -= left_e[s]
            d_c[s] = 0.0
            d_e[s] = 0.0
            left_c[s] = 0.0
            left_e[s] = 0.0
        i = j
    return row_stratum, n_ctl, n_exp, d_ctl, d_exp, rows


@njit(cache=True)
def _fh_scores(time, event, arm, ctl, exp, stratum, n_strata, rho, gamma):
    """Weighted O-E of the experimental arm and their covariance for FH(rho[k], gamma[k]).

    Weights are w_k(t) = S(t-)^rho_k (1 - S(t-))^gamma_k with S the pooled Kaplan-Meier of
    the stratum; cov[k, l] = sum over event times of w_k w_l v_t, v_t the hypergeometric
    variance of the experimental arm's event count. Strata are summed.
    """
    row_stratum, n_ctl, n_exp, d_ctl, d_exp, rows = _risk_table(
        time, event, arm, ctl, exp, stratum, n_strata)
    k = rho.shape[0]
    surv = np.ones(n_strata)  # pooled KM of each stratum, left-continuous at the row's time
    w = np.empty(k)
    o_minus_e = np.zeros(k)
    cov = np.zeros((k, k))
    for r in range(rows):
        s = row_stratum[r]
        at_risk = n_ctl[r] + n_exp[r]
        d = d_ctl[r] + d_exp[r]
        oe = d_exp[r] - d * n_exp[r] / at_risk
        v = 0.0
        if at_risk > 1.0:
            v = d * n_exp[r] * n_ctl[r] * (at_risk - d) / (at_risk * at_risk * (at_risk - 1.0))
        for a in range(k):
            w[a] = 1.0
            if rho[a] != 0.0:
                w[a] *= math.pow(surv[s], rho[a])
            if gamma[a] != 0.0:
                w[a] *= math.pow(1.0 - surv[s], gamma[a])
            o_minus_e[a] += w[a] * oe
            for b in range(a + 1):
                cov[a, b] += w[a] * w[b] * v
        surv[s] *= 1.0 - d / at_risk
    for a in range(k):
        for b in range(a):
            cov[b, a] = cov[a, b]
    return o_minus_e, cov


@njit(cache=True)
def logrank(time: np.ndarray, event: np.ndarray, arm: np.ndarray, ctl: int, exp: int,
            stratum: np.ndarray, n_strata: int, rho: float, gamma: float
            ) -> tuple[float, float, float]:
    """Fleming-Harrington FH(rho, gamma) weighted, optionally stratified, log-rank test.

    Parameters
    ----------
    time : float64[:]
        Observed times (months), sorted ascending.
    event : int8[:] or bool[:]
        1 = event, 0 = censored.
    arm : int64[:]
        Arm codes; only patients of ``ctl`` and ``exp`` are used.
    ctl, exp : int
        Codes of the control and experimental arms.
    stratum : int64[:]
        Stratum codes in ``0 .. n_strata - 1`` (all 0 for the unstratified test).
    n_strata : int
        Number of strata.
    rho, gamma : float
        FH exponents: weight ``S(t-)^rho (1 - S(t-))^gamma`` with ``S`` the Kaplan-Meier of
        the two arms pooled within the stratum, left-continuous. ``rho = gamma = 0`` is the
        plain log-rank test.

    Returns
    -------
    z : float
        ``-o_minus_e / sqrt(variance)``; positive when the experimental arm has fewer
        events than expected. Standard normal under H0; nan if the variance is 0.
    o_minus_e : float
        Weighted observed minus expected events of the experimental arm, summed over
        strata (negative favours the experimental arm).
    variance : float
        Its hypergeometric variance, summed over strata.
    """
    o_minus_e, cov = _fh_scores(time, event, arm, ctl, exp, stratum, n_strata,
                                np.array([rho]), np.array([gamma]))
    z = -o_minus_e[0] / math.sqrt(cov[0, 0]) if cov[0, 0] > 0.0 else math.nan
    return z, o_minus_e[0], cov[0, 0]


@njit(cache=True)
def maxcombo(time: np.ndarray, event: np.ndarray, arm: np.ndarray, ctl: int, exp: int,
             stratum: np.ndarray, n_strata: int, rho: np.ndarray, gamma: np.ndarray
             ) -> tuple[float, float]:
    """MaxCombo test: the largest of several FH(rho, gamma) log-rank z statistics.

    Parameters
    ----------
    time, event, arm, ctl, exp, stratum, n_strata
        As in :func:`logrank`.
    rho, gamma : float64[:]
        Exponents of the component tests, at most ``MAX_MVN_DIM`` = 4 of them; the usual
        choice is ``MAXCOMBO_RHO, MAXCOMBO_GAMMA`` = FH(0,0), FH(0,0.5), FH(0.5,0),
        FH(0.5,0.5) (Roychoudhury et al.'s set).

    Returns
    -------
    z_max : float
        Largest component z (each positive when the experimental arm does better).
    p : float
        One-sided p-value ``P(max_k Z_k >= z_max)`` for ``Z ~ N(0, R)``, R the estimated
        correlation of the components (cov[k, l] = sum of w_k w_l v_t over event times),
        from :func:`mvn_cdf` (absolute error ~2e-5). Components with zero variance
        (e.g. a gamma > 0 test with all events at the first event time) are left out;
        both are nan if all are.
    """
    o_minus_e, cov = _fh_scores(time, event, arm, ctl, exp, stratum, n_strata, rho, gamma)
    k = rho.shape[0]
    keep = np.empty(k, np.int64)
    m = 0
    z_max = -math.inf
    for a in range(k):
        if cov[a, a] > 0.0:
            keep[m] = a
            m += 1
            z_max = max(z_max, -o_minus_e[a] / math.sqrt(cov[a, a]))
    if m == 0:
        return math.nan, math.nan
    corr = np.empty((m, m))
    for a in range(m):
        for b in range(m):
            corr[a, b] = cov[keep[a], keep[b]] / math.sqrt(cov[keep[a], keep[a]] * cov[keep[b], keep[b]])
    return z_max, 1.0 - mvn_cdf(np.full(m, z_max), corr)


@njit(cache=True)
def _cox_terms(beta, efron, n_ctl, n_exp, d_ctl, d_exp, rows):
    """Partial log-likelihood, score and information of the arm indicator at ``beta``."""
    eb = math.exp(beta)
    loglik = 0.0
    score = 0.0
    info = 0.0
    for r in range(rows):
        d = d_ctl[r] + d_exp[r]
        loglik += d_exp[r] * beta
        score += d_exp[r]
        if efron:
            for q in range(int(d)):
                f = q / d
                s1 = (n_exp[r] - f * d_exp[r]) * eb
                s0 = n_ctl[r] - f * d_ctl[r] + s1
                p = s1 / s0
                loglik -= math.log(s0)
                score -= p
                info += p * (1.0 - p)
        else:
            s1 = n_exp[r] * eb
            s0 = n_ctl[r] + s1
            p = s1 / s0
            loglik -= d * math.log(s0)
            score -= d * p
            info += d * p * (1.0 - p)
    return loglik, score, info


@njit(cache=True)
def cox(time: np.ndarray, event: np.ndarray, arm: np.ndarray, ctl: int, exp: int,
        stratum: np.ndarray, n_strata: int, efron: bool) -> tuple[float, float, float]:
    """Cox proportional-hazards model with the experimental-arm indicator as only covariate.

    Newton-Raphson from log HR = 0, halving a step while it lowers the partial
    log-likelihood (by more than ``LOGLIK_SLACK``, relative), until the step is below
    ``NEWTON_TOL`` (at most ``NEWTON_MAX_ITER`` steps). With ``n_strata > 1`` each stratum
    has its own baseline hazard. The risk sets are tabulated once; each Newton step is
    one pass over the event times.

    Parameters
    ----------
    time, event, arm, ctl, exp, stratum, n_strata
        As in :func:`logrank`.
    efron : bool
        Efron's approximation for tied event times if True, Breslow's if False.

    Returns
    -------
    log_hr : float
        Log hazard ratio, experimental vs control (negative favours experimental).
    se : float
        Its standard error from the observed information at the estimate.
    z : float
        ``-log_hr / se``, positive when the experimental arm does better.

    All three are nan when the estimate does not exist or is infinite (no events in one
    arm, monotone likelihood: no convergence within ``NEWTON_MAX_ITER`` steps or
    ``|log_hr| > MAX_ABS_LOG_HR``).
    """
    _, n_ctl, n_exp, d_ctl, d_exp, rows = _risk_table(time, event, arm, ctl, exp, stratum, n_strata)
    if d_ctl[:rows].sum() == 0.0 or d_exp[:rows].sum() == 0.0:
        return math.nan, math.nan, math.nan
    beta = 0.0
    loglik, score, info = _cox_terms(beta, efron, n_ctl, n_exp, d_ctl, d_exp, rows)
    for _ in range(NEWTON_MAX_ITER):
        if not info > 0.0:
            break
        step = score / info
        if abs(step) < NEWTON_TOL:
            if abs(beta) > MAX_ABS_LOG_HR:
                break
            se = 1.0 / math.sqrt(info)
            return beta, se, -beta / se
        while True:  # halve the step while it overshoots (log-likelihood falls)
            new_loglik, new_score, new_info = _cox_terms(beta + step, efron, n_ctl, n_exp,
                                                         d_ctl, d_exp, rows)
            if new_loglik >= loglik - LOGLIK_SLACK * abs(loglik) or abs(step) < NEWTON_TOL:
                break
            step *= 0.5
        beta += step
        loglik, score, info = new_loglik, new_score, new_info
    return math.nan, math.nan, math.nan


# ---------------------------------------------------------------------------------------
# Time-to-event: Kaplan-Meier milestones and RMST, on the walk of simulator.analysis.reductions
# ---------------------------------------------------------------------------------------


@njit(cache=True)
def km_at(time: np.ndarray, event: np.ndarray, arm: np.ndarray, g: int, t: float
          ) -> tuple[float, float]:
    """Kaplan-Meier survival of arm ``g`` at time ``t`` with Greenwood's standard error.

    Parameters
    ----------
    time, event, arm
        As in :func:`logrank`.
    g : int
        Arm code.
    t : float
        Time (months). The estimate is right-continuous (events at ``t`` count) and is
        carried forward beyond the last observation.

    Returns
    -------
    surv : float
        S(t); nan if the arm has no patients.
    se : float
        ``S(t) sqrt(sum d / (n (n - d)))`` over event times <= t; 0 once S has reached 0.
    """
    n = time.shape[0]
    at_risk = 0.0
    for i in range(n):
        if arm[i] == g:
            at_risk += 1.0
    if at_risk == 0.0:
        return math.nan, math.nan
    surv = 1.0
    greenwood = 0.0
    i = 0
    while i < n and time[i] <= t:
        d, left, i_next = tied_run(time, event, arm, g, i)
        if d > 0.0:
            surv *= 1.0 - d / at_risk
            if d < at_risk:
                greenwood += d / (at_risk * (at_risk - d))
        at_risk -= left
        i = i_next
    return surv, surv * math.sqrt(greenwood)


@njit(cache=True)
def milestone(time: np.ndarray, event: np.ndarray, arm: np.ndarray, ctl: int, exp: int,
              t: float) -> tuple[float, float, float]:
    """Difference in Kaplan-Meier survival at a milestone, experimental minus control.

    Parameters
    ----------
    time, event, arm, ctl, exp
        As in :func:`logrank`.
    t : float
        Milestone time (months).

    Returns
    -------
    diff : float
        S_exp(t) - S_ctl(t) (positive favours experimental).
    se : float
        ``sqrt(se_exp^2 + se_ctl^2)`` from Greenwood's formula (:func:`km_at`).
    z : float
        ``diff / se``; nan if se is 0.
    """
    s_exp, se_exp = km_at(time, event, arm, exp, t)
    s_ctl, se_ctl = km_at(time, event, arm, ctl, t)
    se = math.sqrt(se_exp * se_exp + se_ctl * se_ctl)
    diff = s_exp - s_ctl
    return diff, se, diff / se if se > 0.0 else math.nan


@njit(cache=True)
def _rmst_arm(time, event, arm, g, tau):
    """Area under arm ``g``'s Kaplan-Meier on [0, tau] and its variance (two passes)."""
    n = time.shape[0]
    total = 0.0
    for i in range(n):
        if arm[i] == g:
            total += 1.0
    if total == 0.0:
        return math.nan, math.nan
    area = 0.0
    var = 0.0
    for second_pass in (False, True):
        at_risk = total
        surv = 1.0
        last = 0.0
        part = 0.0  # area up to the current event time
        i = 0
        while i < n and time[i] <= tau:
            d, left, i_next = tied_run(time, event, arm, g, i)
            if d > 0.0:
                part += surv * (time[i] - last)
                last = time[i]
                surv *= 1.0 - d / at_risk
                if second_pass and d < at_risk:
                    rest = area - part
                    var += rest * rest * d / (at_risk * (at_risk - d))
            at_risk -= left
            i = i_next
        area = part + surv * (tau - last)
    return area, var


@njit(cache=True)
def rmst(time: np.ndarray, event: np.ndarray, arm: np.ndarray, ctl: int, exp: int, tau: float
         ) -> tuple[float, float, float]:
    """Difference in restricted mean survival time up to ``tau``, experimental minus control.

    Each arm's RMST is the area under its Kaplan-Meier curve on [0, tau] (months), with
    variance ``sum over event times t_i <= tau of A_i^2 d_i / (n_i (n_i - d_i))``, A_i the
    area under the curve from t_i to tau (the estimator of survRMST; terms with
    n_i = d_i have A_i = 0 and are dropped).

    Parameters
    ----------
    time, event, arm, ctl, exp
        As in :func:`logrank`.
    tau : float
        Truncation time (months).

    Returns
    -------
    diff : float
        RMST_exp - RMST_ctl (months; positive favours experimental); nan if an arm is empty.
    se : float
        ``sqrt(var_exp + var_ctl)``.
    z : float
        ``diff / se``; nan if se is 0.
    """
    area_exp, var_exp = _rmst_arm(time, event, arm, exp, tau)
    area_ctl, var_ctl = _rmst_arm(time, event, arm, ctl, tau)
    diff = area_exp - area_ctl
    se = math.sqrt(var_exp + var_ctl)
    return diff, se, diff / se if se > 0.0 else math.nan


# ---------------------------------------------------------------------------------------
# Binary endpoints
# ---------------------------------------------------------------------------------------


@njit(cache=True)
def proportions(x: np.ndarray, arm: np.ndarray, ctl: int, exp: int) -> tuple[float, float, float]:
    """Difference in response proportions, experimental minus control.

    Parameters
    ----------
    x : int8[:]
        1 = response (e.g. CR/CRi), 0 = none.
    arm, ctl, exp
        As in :func:`logrank`.

    Returns
    -------
    diff : float
        p_exp - p_ctl (positive favours experimental when higher is better).
    se : float
        Unpooled (Wald) standard error ``sqrt(p_e (1 - p_e) / n_e + p_c (1 - p_c) / n_c)``,
        for a confidence interval ``diff -/+ z_{alpha} se``.
    z : float
        Test statistic with the pooled standard error under H0,
        ``diff / sqrt(p (1 - p) (1/n_e + 1/n_c))``, p the pooled proportion; nan if
        that is 0 (no or only responses, or an empty arm).
    """
    k_e, n_e, k_c, n_c = arm_counts(x, arm, ctl, exp)
    if n_e == 0 or n_c == 0:
        return math.nan, math.nan, math.nan
    p_e = k_e / n_e
    p_c = k_c / n_c
    p = (k_e + k_c) / (n_e + n_c)
    diff = p_e - p_c
    se = math.sqrt(p_e * (1.0 - p_e) / n_e + p_c * (1.0 - p_c) / n_c)
    se0 = math.sqrt(p * (1.0 - p) * (1.0 / n_e + 1.0 / n_c))
    return diff, se, diff / se0 if se0 > 0.0 else math.nan


@njit(cache=True)
def arm_counts(x: np.ndarray, arm: np.ndarray, ctl: int, exp: int) -> tuple[int, int, int, int]:
    """Events and patients of a binary endpoint ``x`` (0/1) by arm: (k_exp, n_exp, k_ctl, n_ctl)."""
    k_e = 0
    n_e = 0
    k_c = 0
    n_c = 0
    for i in range(x.shape[0]):
        if arm[i] == exp:
            n_e += 1
            k_e += x[i]
        elif arm[i] == ctl:
            n_c += 1
            k_c += x[i]
    return k_e, n_e, k_c, n_c


@njit(cache=True)
def _log_hypergeometric(k, successes, draws, total):
    """Log P(X = k) for X ~ Hypergeometric(total, successes, draws), via math.lgamma."""
    return (math.lgamma(successes + 1.0) - math.lgamma(k + 1.0) - math.lgamma(successes - k + 1.0)
            + math.lgamma(total - successes + 1.0) - math.lgamma(draws - k + 1.0)
            - math.lgamma(total - successes - draws + k + 1.0)
            - math.lgamma(total + 1.0) + math.lgamma(draws + 1.0) + math.lgamma(total - draws + 1.0))


@njit(cache=True)
def fisher_one_sided(k_exp: int, n_exp: int, k_ctl: int, n_ctl: int) -> float:
    """One-sided Fisher exact test that the experimental response rate is higher.

    Parameters
    ----------
    k_exp, n_exp : int
        Responders and patients in the experimental arm.
    k_ctl, n_ctl : int
        Responders and patients in the control arm.

    Returns
    -------
    p : float
        ``P(X >= k_exp)`` for X hypergeometric with the observed margins (the table
        ``[[k_exp, n_exp - k_exp], [k_ctl, n_ctl - k_ctl]]`` tested with
        ``alternative="greater"``). For an endpoint where lower is better pass the
        non-responder counts ``n - k``. Whichever of P(X >= k_exp) and P(X < k_exp)
        excludes the mode is summed outwards from its largest term (one lgamma evaluation,
        then the ratio of successive terms); p is that sum or 1 minus it.
    """
    total = float(n_exp + n_ctl)
    successes = float(k_exp + k_ctl)
    draws = float(n_exp)
    lo = max(0.0, draws + successes - total)
    hi = min(draws, successes)
    k = float(k_exp)
    if k <= lo:
        return 1.0
    mode = math.floor((draws + 1.0) * (successes + 1.0) / (total + 2.0))
    if k >= mode:  # upper tail, terms decreasing from k
        term = math.exp(_log_hypergeometric(k, successes, draws, total))
        tail = 0.0
        while True:
            tail += term
            if k >= hi:
                return tail
            term *= (successes - k) * (draws - k) / ((k + 1.0) * (total - successes - draws + k + 1.0))
            k += 1.0
    k -= 1.0  # lower tail P(X <= k_exp - 1), terms decreasing from k_exp - 1
    term = math.exp(_log_hypergeometric(k, successes, draws, total))
    tail = 0.0
    while True:
        tail += term
        if k <= lo:
            return 1.0 - tail
        term *= k * (total - successes - draws + k) / ((successes - k + 1.0) * (draws - k + 1.0))
        k -= 1.0


@njit(cache=True)
def cmh(x: np.ndarray, arm: np.ndarray, ctl: int, exp: int, stratum: np.ndarray, n_strata: int
        ) -> tuple[float, float, float]:
    """Cochran-Mantel-Haenszel test of a common effect on a binary endpoint across strata.

    No continuity correction. Strata with fewer than two patients contribute nothing.

    Parameters
    ----------
    x : int8[:]
        1 = response, 0 = none.
    arm, ctl, exp, stratum, n_strata
        As in :func:`logrank`.

    Returns
    -------
    z : float
        ``sum_k (a_k - E a_k) / sqrt(sum_k Var a_k)`` with a_k the experimental responders
        of stratum k, hypergeometric mean and variance (denominator N_k^2 (N_k - 1));
        positive when the experimental arm responds more; ``z^2`` is the CMH chi-square.
    risk_difference : float
        Mantel-Haenszel common risk difference (exp - ctl), weights n_e n_c / N per stratum.
    odds_ratio : float
        Mantel-Haenszel common odds ratio (exp vs ctl); inf or nan when undefined.
    """
    n_e = np.zeros(n_strata)
    k_e = np.zeros(n_strata)
    n_c = np.zeros(n_strata)
    k_c = np.zeros(n_strata)
    for i in range(x.shape[0]):
        s = stratum[i]
        if arm[i] == exp:
            n_e[s] += 1.0
            k_e[s] += x[i]
        elif arm[i] == ctl:
            n_c[s] += 1.0
            k_c[s] += x[i]
    o_minus_e = 0.0
    var = 0.0
    rd_num = 0.0
    rd_den = 0.0
    or_num = 0.0
    or_den = 0.0
    for s in range(n_strata):
        n = n_e[s] + n_c[s]
        if n < 2.0:
            continue
        k = k_e[s] + k_c[s]
        o_minus_e += k_e[s] - n_e[s] * k / n
        var += n_e[s] * n_c[s] * k * (n - k) / (n * n * (n - 1.0))
        rd_num += (k_e[s] * n_c[s] - k_c[s] * n_e[s]) / n
        rd_den += n_e[s] * n_c[s] / n
        or_num += k_e[s] * (n_c[s] - k_c[s]) / n
        or_den += (n_e[s] - k_e[s]) * k_c[s] / n
    z = o_minus_e / math.sqrt(var) if var > 0.0 else math.nan
    rd = rd_num / rd_den if rd_den > 0.0 else math.nan
    if or_den > 0.0:
        odds = or_num / or_den
    else:
        odds = math.inf if or_num > 0.0 else math.nan
    return z, rd, odds


# ---------------------------------------------------------------------------------------
# Multivariate normal probability (MaxCombo p-value)
# ---------------------------------------------------------------------------------------


@njit(cache=True)
def _norm_cdf(x):
    return 0.5 * math.erfc(-x / _SQRT2)


@njit(cache=True)
def norm_ppf(p: float) -> float:
    """Standard normal quantile, Acklam's approximation (relative error < 1.2e-9); p clamped to >= 1e-300."""
    p = min(max(p, _PROB_FLOOR), 1.0 - 1e-16)
    a, b, c, d = _ACKLAM_A, _ACKLAM_B, _ACKLAM_C, _ACKLAM_D
    if p < _ACKLAM_LOW or p > 1.0 - _ACKLAM_LOW:
        q = math.sqrt(-2.0 * math.log(min(p, 1.0 - p)))
        x = ((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]
        x /= (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        return x if p < 0.5 else -x
    q = p - 0.5
    r = q * q
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
    return x / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)


@njit(cache=True)
def _bvn_upper(h, k, r):
    """P(X > h, Y > k) for a standard bivariate normal with correlation r.

    Genz's (2004) BVND: Drezner-Wesolowsky's integral in r for |r| < 0.925, a series plus
    Gauss-Legendre correction near |r| = 1; absolute error < 1e-11.
    """
    g = 0 if abs(r) < 0.3 else (1 if abs(r) < 0.75 else 2)
    nodes = _GL_NODES[g, :_GL_POINTS[g]]
    weights = _GL_WEIGHTS[g, :_GL_POINTS[g]]
    hk = h * k
    total = 0.0
    if abs(r) < 0.925:
        hs = (h * h + k * k) / 2.0
        asr = math.asin(r)
        for i in range(nodes.shape[0]):
            sn = math.sin(asr * (1.0 + nodes[i]) / 2.0)
            total += weights[i] * math.exp((sn * hk - hs) / (1.0 - sn * sn))
        return total * asr / (2.0 * _TWO_PI) + _norm_cdf(-h) * _norm_cdf(-k)
    if r < 0.0:
        k = -k
        hk = -hk
    if abs(r) < 1.0:
        a2 = (1.0 - r) * (1.0 + r)
        a = math.sqrt(a2)
        bs = (h - k) * (h - k)
        c = (4.0 - hk) / 8.0
        d = (12.0 - hk) / 16.0
        total = a * math.exp(-(bs / a2 + hk) / 2.0) * (
            1.0 - c * (bs - a2) * (1.0 - d * bs / 5.0) / 3.0 + c * d * a2 * a2 / 5.0)
        if hk > -160.0:
            b = math.sqrt(bs)
            total -= (math.exp(-hk / 2.0) * math.sqrt(_TWO_PI) * _norm_cdf(-b / a) * b
                      * (1.0 - c * bs * (1.0 - d * bs / 5.0) / 3.0))
        a /= 2.0
        for i in range(nodes.shape[0]):
            xs = (a * (nodes[i] + 1.0)) ** 2
            rs = math.sqrt(1.0 - xs)
            total += a * weights[i] * (math.exp(-bs / (2.0 * xs) - hk / (1.0 + rs)) / rs
                                       - math.exp(-(bs / xs + hk) / 2.0) * (1.0 + c * xs * (1.0 + d * xs)))
        total = -total / _TWO_PI
    if r > 0.0:
        return total + _norm_cdf(-max(h, k))
    total = -total
    if k > h:
        total += _norm_cdf(k) - _norm_cdf(h)
    return total


@njit(cache=True)
def mvn_cdf(upper: np.ndarray, corr: np.ndarray) -> float:
    """P(Z_i <= upper_i for all i) for Z ~ N(0, corr), corr a correlation matrix, d <= 4.

    Genz's (1992) separation of variables. The variables are reordered to start with one
    of the least correlated pair and then take the one with the largest remaining
    conditional variance, so that nearly-determined variables come last, and
    corr = L L' (Cholesky; conditional variances floored at ``MVN_PIVOT_FLOOR``, so
    singular matrices are allowed, with an error of that order). The last two variables
    are integrated exactly given the first d - 2 with Genz's bivariate normal algorithm,
    those d - 2 <= 2 dimensions with a fixed Fibonacci lattice (``MVN_LATTICE_POINTS``
    points, generator (1, ``MVN_LATTICE_GENERATOR``)) after Sidi's periodising transform
    u - sin(2 pi u) / (2 pi). Deterministic; d <= 2 is exact to ~1e-11, and the absolute
    error for d = 3, 4 is ~1e-5 for MaxCombo correlation matrices (nearly singular:
    conditional variances down to ~1e-4) and below 1e-6 for equicorrelated ones up to
    correlation 0.9999 (see the tests).

    Parameters
    ----------
    upper : float64[:]
        Finite upper limits, length d with 1 <= d <= ``MAX_MVN_DIM``.
    corr : float64[:, :]
        d x d correlation matrix (positive semi-definite).

    Returns
    -------
    float
        The probability.
    """
    d = upper.shape[0]
    if d < 1 or d > MAX_MVN_DIM:
        raise ValueError("mvn_cdf: dimension must be 1 to MAX_MVN_DIM")
    start = 0  # start with a variable of the least correlated pair
    least = 2.0
    for i in range(d):
        for j in range(i):
            if abs(corr[i, j]) < least:
                least = abs(corr[i, j])
                start = i
    perm = np.arange(d)
    perm[0], perm[start] = start, 0
    chol = np.zeros((d, d))
    for k in range(d):
        best = k
        best_var = -math.inf
        for i in range(k, d):
            v = corr[perm[i], perm[i]]
            for j in range(k):
                v -= chol[i, j] * chol[i, j]
            if v > best_var:
                best = i
                best_var = v
        perm[k], perm[best] = perm[best], perm[k]
        for j in range(k):
            chol[k, j], chol[best, j] = chol[best, j], chol[k, j]
        chol[k, k] = math.sqrt(max(best_var, MVN_PIVOT_FLOOR))
        for i in range(k + 1, d):
            v = corr[perm[i], perm[k]]
            for j in range(k):
                v -= chol[i, j] * chol[k, j]
            chol[i, k] = v / chol[k, k]
    b = upper[perm]
    if d == 1:
        return _norm_cdf(b[0] / chol[0, 0])
    s1 = chol[d - 2, d - 2]  # conditional sds and correlation of the last pair
    s2 = math.sqrt(chol[d - 1, d - 2] ** 2 + chol[d - 1, d - 1] ** 2)
    r = chol[d - 1, d - 2] / s2
    if d == 2:
        return _bvn_upper(-b[0] / s1, -b[1] / s2, r)
    generator = (1, MVN_LATTICE_GENERATOR)
    y = np.zeros(d - 2)
    total = 0.0
    for point in range(1, MVN_LATTICE_POINTS):  # point 0 has weight 0
        f = 1.0
        for k in range(d - 2):
            s = b[k]
            for j in range(k):
                s -= chol[k, j] * y[j]
            e = _norm_cdf(s / chol[k, k])
            u = (point * generator[k] % MVN_LATTICE_POINTS) / MVN_LATTICE_POINTS
            f *= e * (1.0 - math.cos(_TWO_PI * u))
            y[k] = norm_ppf((u - math.sin(_TWO_PI * u) / _TWO_PI) * e)
        if f == 0.0:
            continue
        a1 = b[d - 2]
        a2 = b[d - 1]
        for j in range(d - 2):
            a1 -= chol[d - 2, j] * y[j]
            a2 -= chol[d - 1, j] * y[j]
        total += f * _bvn_upper(-a1 / s1, -a2 / s2, r)
    return total / MVN_LATTICE_POINTS
