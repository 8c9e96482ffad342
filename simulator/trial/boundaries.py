"""Group-sequential boundaries by error spending (Lan-DeMets), by recursive integration.

Model (canonical joint distribution, Jennison & Turnbull 2000, ch. 3): at look
``k = 1..K`` with cumulative information ``I_k`` the standardised statistic is
``Z_k = S_k / sqrt(I_k)``, where ``S`` is a Brownian motion with drift ``theta``
per unit information, so ``E[Z_k] = theta * sqrt(I_k)`` and
``corr(Z_i, Z_j) = sqrt(I_i / I_j)`` for ``i <= j``. Positive ``Z`` favours the
experimental arm. Everything is one-sided: the trial stops for efficacy at the first
look with ``Z_k > upper_k`` and for futility at the first look with ``Z_k < lower_k``.
A two-sided symmetric design at level ``2 * alpha`` is, by the usual convention, the
one-sided design at ``alpha`` mirrored (``lower = -upper``); this ignores paths that
cross one bound after the other, whose probability is negligible at usual levels.

Probabilities come from Jennison & Turnbull's (2000, ch. 19) recursive numerical
integration: the sub-density of ``Z_k`` on the continuation region is tabulated on
their grid (``r`` points per standard deviation in the centre, logarithmically
spaced tails, ``mean +- (3 + 4 log r)``), with Simpson weights, and propagated to the
next look with the Gaussian transition density of the independent increment. The
probability of exiting at look ``k`` needs only the previous look's tabulated
density, so each bound is a one-dimensional root (safeguarded Newton on the log tail
probability, falling back to bisection). With the default ``r = 24`` crossing
probabilities are accurate to a few 1e-9 absolute and bounds to about 3e-7 (z); the
work grows as ``r**2`` (``r = 16``: about 1e-8 and 1e-6, twice as fast).

The ``*_nb`` functions take and return plain float64 arrays and are callable from
other numba code (e.g. per simulated trial, for spending on observed information);
``info`` there must be positive and strictly increasing. Information can be absolute
or fractions: efficacy bounds depend only on ratios ``I_i / I_j``, but ``theta`` is in
units of the given information (with fractions, ``theta`` is ``E[Z]`` at full
information). The Python API (:func:`spend`, :func:`design_bounds`,
:func:`futility_bounds`) validates inputs and returns arrays or a :class:`Boundaries`.

The design statistics the bounds are computed from are here too:
:func:`information_fractions` (the planned information of each look) and
:func:`dunnett_alpha` (the per-comparison level of several arms against one control).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.special import ndtr

from simulator.trial.statistics import norm_ppf

GRID_R = 24  # Jennison & Turnbull's r: grid points per SD in the centre (cost ~ r**2)
ROOT_TOL = 1e-10  # z units: root finding stops once a step is shorter than this
ROOT_MAX_ITER = 100  # iterations per bound; plain bisection of the bracket needs ~40
Z_BRACKET = 40.0  # z units: bounds are sought within +-Z_BRACKET of E[Z_k]
KERNEL_CUTOFF = 9.0  # SD: transition-density terms beyond this (phi < 1.1e-18) are skipped
SQRT2 = math.sqrt(2.0)
SQRT_2PI = math.sqrt(2.0 * math.pi)
DUNNETT_RANGE = 12.0  # SD: the Dunnett quadrature integrates the shared normal factor over +-12 SD

KIND_CODES = {"obf": 0, "pocock": 1, "hsd": 2, "power": 3}
FUTILITY_KEYS = ("spending", "param", "beta", "theta")



@njit(cache=True)
def norm_ppf_nb(p: float) -> float:
    """Standard normal quantile ``Phi^{-1}(p)`` for ``0 < p < 1``, to full double precision.

    Acklam's approximation (:func:`simulator.trial.statistics.norm_ppf`, relative error
    1.2e-9) refined by one Halley step.
    """
    x = norm_ppf(p)
    err = 0.5 * math.erfc(-x / SQRT2) - p
    u = err * SQRT_2PI * math.exp(0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


@njit(cache=True)
def spend_nb(code: int, t: float, alpha: float, param: float) -> float:
    """Cumulative error spent at information fraction ``t``; see :func:`spend`.

    ``code`` is a value of :data:`KIND_CODES`; an unknown code gives NaN.
    """
    if t <= 0.0:
        return 0.0
    if t >= 1.0:
        return alpha
    if code == 0:  # Lan-DeMets O'Brien-Fleming: 2 - 2 Phi(z_{1-alpha/2} / sqrt(t))
        return math.erfc(-norm_ppf_nb(0.5 * alpha) / math.sqrt(2.0 * t))
    if code == 1:  # Lan-DeMets Pocock
        return alpha * math.log(1.0 + (math.e - 1.0) * t)
    if code == 2:  # Hwang-Shih-DeCani, gamma = param
        if param == 0.0:
            return alpha * t
        return alpha * math.expm1(-param * t) / math.expm1(-param)
    if code == 3:  # Kim-DeMets power family, rho = param
        return alpha * t**param
    return np.nan


@njit(cache=True)
def _spend_array_nb(code: int, t: np.ndarray, alpha: float, param: float) -> np.ndarray:
    out = np.empty(t.size)
    for i in range(t.size):
        out[i] = spend_nb(code, t[i], alpha, param)
    return out


def spend(kind: str, t, alpha: float, param: float = 0.0) -> float | np.ndarray:
    """Cumulative one-sided error spent by information fraction ``t``.

    Parameters
    ----------
    kind : {"obf", "pocock", "hsd", "power"}
        ``"obf"``: Lan-DeMets O'Brien-Fleming ``2 - 2 Phi(z_{1-alpha/2} / sqrt(t))``
        (rpact/gsDesign ``asOF``/``sfLDOF``); ``"pocock"``: Lan-DeMets Pocock
        ``alpha log(1 + (e - 1) t)``; ``"hsd"``: Hwang-Shih-DeCani
        ``alpha (1 - exp(-gamma t)) / (1 - exp(-gamma))`` with ``gamma = param``
        (``alpha t`` at 0); ``"power"``: Kim-DeMets ``alpha t**rho``, ``rho = param > 0``.
    t : float or array_like
        Information fraction(s), dimensionless; ``t <= 0`` spends 0, ``t >= 1`` spends
        ``alpha``.
    alpha : float
        Total one-sided error to spend, in (0, 1).
    param : float
        Shape parameter of ``"hsd"`` and ``"power"``; ignored otherwise.

    Returns
    -------
    float or numpy.ndarray
        Cumulative error, same shape as ``t``.
    """
    code = _kind_code(kind, param)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"total error to spend must be in (0, 1), got {alpha}")
    t_arr = np.asarray(t, dtype=np.float64)
    if np.isnan(t_arr).any():
        raise ValueError("t must not contain NaN")
    out = _spend_array_nb(code, np.ascontiguousarray(t_arr.ravel()), float(alpha), float(param))
    return float(out[0]) if t_arr.ndim == 0 else out.reshape(t_arr.shape)


def _kind_code(kind: str, param: float) -> int:
    if kind not in KIND_CODES:
        raise ValueError(f"unknown spending kind {kind!r}; expected one of {sorted(KIND_CODES)}")
    if not math.isfinite(param):
        raise ValueError(f"spending parameter must be finite, got {param}")
    if kind == "power" and param <= 0.0:
        raise ValueError(f"power spending needs rho = param > 0, got {param}")
    return KIND_CODES[kind]


# --- recursive integration --------------------------------------------------------
# A look's "state" is the grid z[:m] and wh[:m] = Simpson weight * sub-density of Z
# there (paths still running). Before the first look it is the point mass z = 0,
# wh = 1 at information 0; the formulas below then reduce to the marginal of Z_1.


@njit(cache=True)
def _jt_point(mu: float, i: int, r: int) -> float:
    """Point ``i`` (1..6r-1) of Jennison & Turnbull's grid (sec. 19.2.1) around ``mu``."""
    if i < r:
        return mu - 3.0 - 4.0 * math.log(r / i)
    if i <= 5 * r:
        return mu - 3.0 + 3.0 * (i - r) / (2.0 * r)
    return mu + 3.0 + 4.0 * math.log(r / (6.0 * r - i))


@njit(cache=True)
def _grid(mu: float, lo: float, hi: float, r: int, z: np.ndarray, w: np.ndarray) -> int:
    """Grid on ``(lo, hi)`` (bounds included) with midpoints, Simpson weights in ``w``.

    Returns the number of points (odd, at most ``12 r + 1``), 0 if the region is empty.
    """
    half_width = 3.0 + 4.0 * math.log(r)
    left = max(lo, mu - half_width)
    right = min(hi, mu + half_width)
    if not left < right:
        return 0
    z[0] = left
    n = 1
    for i in range(1, 6 * r):
        x = _jt_point(mu, i, r)
        if left < x < right:
            z[2 * n] = x
            n += 1
    z[2 * n] = right
    m = 2 * n + 1
    w[:m] = 0.0
    for p in range(n):
        h = z[2 * p + 2] - z[2 * p]
        z[2 * p + 1] = 0.5 * (z[2 * p] + z[2 * p + 2])
        w[2 * p] += h / 6.0
        w[2 * p + 1] += 4.0 * h / 6.0
        w[2 * p + 2] += h / 6.0
    return m


@njit(cache=True)
def _tail(y: float, sign: float, z: np.ndarray, wh: np.ndarray, m: int,
          i_prev: float, i_k: float, theta: float) -> tuple[float, float]:
    """``P(running before look k, sign * Z_k > y)`` and minus its derivative in ``y``."""
    s_prev = math.sqrt(i_prev)
    s_k = math.sqrt(i_k)
    sd = math.sqrt(i_k - i_prev)
    drift = theta * (i_k - i_prev)
    tail = 0.0
    dens = 0.0
    for j in range(m):
        u = (y * s_k - sign * (z[j] * s_prev + drift)) / sd
        tail += wh[j] * math.erfc(u / SQRT2)
        dens += wh[j] * math.exp(-0.5 * u * u)
    return 0.5 * tail, dens * s_k / (sd * SQRT_2PI)


@njit(cache=True)
def _solve_tail(target: float, sign: float, z: np.ndarray, wh: np.ndarray, m: int,
                i_prev: float, i_k: float, theta: float) -> float:
    """Bound ``x`` with ``P(running before look k, sign * Z_k > sign * x) = target``.

    ``sign = 1`` gives an efficacy bound (upper exit), ``-1`` a futility bound (lower
    exit). ``target <= 0`` gives ``sign * inf`` (never exit); a target at least the
    probability of reaching look k gives ``-sign * inf`` (always exit, spending only
    that probability).
    """
    if target <= 0.0:
        return sign * np.inf
    mass = 0.0
    for j in range(m):
        mass += wh[j]
    if target >= mass:
        return -sign * np.inf
    centre = sign * theta * math.sqrt(i_k)
    lo = centre - Z_BRACKET
    hi = centre + Z_BRACKET
    y = centre - norm_ppf_nb(target / mass)  # start: ignores truncation at earlier looks
    log_target = math.log(target)
    for _ in range(ROOT_MAX_ITER):
        tail, dens = _tail(y, sign, z, wh, m, i_prev, i_k, theta)
        if tail > target:
            lo = y
        else:
            hi = y
        if tail > 0.0 and dens > 0.0:  # Newton on log(tail) - log(target)
            y_new = y + (math.log(tail) - log_target) * tail / dens
        else:
            y_new = 0.5 * (lo + hi)
        if not lo <= y_new <= hi:
            y_new = 0.5 * (lo + hi)
        if abs(y_new - y) < ROOT_TOL:
            return sign * y_new
        y = y_new
    return sign * y


@njit(cache=True)
def _advance(z: np.ndarray, wh: np.ndarray, m: int, i_prev: float, i_k: float,
             theta: float, lo: float, hi: float, r: int,
             z_out: np.ndarray, wh_out: np.ndarray) -> int:
    """State at look k on the continuation region ``(lo, hi)`` from the state before it.

    Writes the grid and weighted sub-density into ``z_out``/``wh_out``; returns their
    length.
    """
    s_prev = math.sqrt(i_prev)
    s_k = math.sqrt(i_k)
    sd = math.sqrt(i_k - i_prev)
    m_out = _grid(theta * s_k, lo, hi, r, z_out, wh_out)
    ratio = s_prev / sd
    shift = theta * (i_k - i_prev) / sd
    scale = s_k / (sd * SQRT_2PI)
    # the standardised increment u_j = a_i - z_j * ratio falls in j and rises in i, so
    # the terms with |u| < KERNEL_CUTOFF form a window [j_lo, j_hi) moving right
    j_lo = 0
    j_hi = 0
    for i in range(m_out):
        a = z_out[i] * s_k / sd - shift
        while j_lo < m and a - z[j_lo] * ratio >= KERNEL_CUTOFF:
            j_lo += 1
        while j_hi < m and a - z[j_hi] * ratio > -KERNEL_CUTOFF:
            j_hi += 1
        acc = 0.0
        for j in range(j_lo, j_hi):
            u = a - z[j] * ratio
            acc += wh[j] * math.exp(-0.5 * u * u)
        wh_out[i] *= scale * acc
    return m_out


@njit(cache=True)
def _bounds_core(info: np.ndarray, alpha_cum: np.ndarray, lower_in: np.ndarray,
                 theta: float, binding: bool, beta_spending: bool,
                 r: int) -> tuple[np.ndarray, np.ndarray]:
    """Efficacy bounds from ``alpha_cum`` under theta = 0, with futility bounds either
    given (``lower_in`` are z bounds) or from beta spending (``lower_in`` is cumulative
    beta, spent under ``theta``)."""
    n_looks = info.size
    upper = np.empty(n_looks)
    lower = np.empty(n_looks)
    size = 12 * r + 1
    z0, wh0, z0_next, wh0_next = np.empty(size), np.empty(size), np.empty(size), np.empty(size)
    size1 = size if beta_spending else 1
    z1, wh1, z1_next, wh1_next = np.empty(size1), np.empty(size1), np.empty(size1), np.empty(size1)
    z0[0], wh0[0], z1[0], wh1[0] = 0.0, 1.0, 0.0, 1.0
    m0 = m1 = np.int64(1)  # typed int64 from the start: a literal 1 would compile the callees twice
    i_prev = 0.0
    for k in range(n_looks):
        i_k = info[k]
        prev = alpha_cum[k - 1] if k > 0 else 0.0
        b = _solve_tail(alpha_cum[k] - prev, 1.0, z0, wh0, m0, i_prev, i_k, 0.0)
        if not beta_spending:
            a = lower_in[k]
        elif k == n_looks - 1:
            a = b
        else:
            prev = lower_in[k - 1] if k > 0 else 0.0
            a = min(b, _solve_tail(lower_in[k] - prev, -1.0, z1, wh1, m1, i_prev, i_k, theta))
        upper[k] = b
        lower[k] = a
        if k < n_looks - 1:
            m0 = _advance(z0, wh0, m0, i_prev, i_k, 0.0, a if binding else -np.inf, b, r,
                          z0_next, wh0_next)
            z0, wh0, z0_next, wh0_next = z0_next, wh0_next, z0, wh0
            if beta_spending:
                m1 = _advance(z1, wh1, m1, i_prev, i_k, theta, a, b, r, z1_next, wh1_next)
                z1, wh1, z1_next, wh1_next = z1_next, wh1_next, z1, wh1
        i_prev = i_k
    return upper, lower


@njit(cache=True)
def efficacy_bounds_nb(info: np.ndarray, spend_cum: np.ndarray, futility: np.ndarray,
                       binding: bool, r: int) -> np.ndarray:
    """Efficacy z bounds spending ``spend_cum`` under H0 (theta = 0).

    Parameters
    ----------
    info : float64[:]
        Cumulative information (or information fractions) per look, positive and
        strictly increasing.
    spend_cum : float64[:]
        Cumulative one-sided type I error to have spent by each look (non-decreasing).
    futility : float64[:]
        Futility z bounds per look, ``-inf`` for none. Used only when ``binding``.
    binding : bool
        If True, paths below ``futility_k`` stop (continuation region
        ``(futility_k, upper_k)``), which lowers the efficacy bounds; if False, bounds
        are computed as if there were no futility bounds (continuation ``(-inf,
        upper_k)``), so type I error is controlled whether or not futility stops happen.
    r : int
        Grid points per standard deviation (:data:`GRID_R`; no default, so that numba
        compiles a single specialisation).

    Returns
    -------
    float64[:]
        ``upper`` with ``P_0(first exit above at look k) = spend_cum[k] -
        spend_cum[k-1]``. A zero increment gives ``+inf``; an increment at least the
        probability of reaching look k gives ``-inf`` (reject whenever reached).
    """
    # np.bool_: a plain bool, not a literal, so that both callers share one compile of _bounds_core
    upper, _ = _bounds_core(info, spend_cum, futility, 0.0, binding, np.bool_(False), r)
    return upper


@njit(cache=True)
def beta_spending_bounds_nb(info: np.ndarray, spend_cum: np.ndarray, beta_cum: np.ndarray,
                            theta: float, binding: bool,
                            r: int) -> tuple[np.ndarray, np.ndarray]:
    """Efficacy and futility z bounds of an asymmetric (alpha- and beta-spending) design.

    Look by look: the efficacy bound spends ``spend_cum`` under theta = 0 (as in
    :func:`efficacy_bounds_nb`, with the futility bounds found so far if ``binding``);
    then, for ``k < K``, the futility bound solves ``P_theta(first exit below at look
    k) = beta_cum[k] - beta_cum[k-1]``, the process stopping at either bound, and is
    capped at the efficacy bound (a crossing cap means the information is too small
    for this beta). The last futility bound equals the last efficacy bound, so the
    type II error ``P_theta(no rejection)`` equals ``beta_cum[-1]`` only if the
    maximum information is chosen to make it so; it is not adjusted here.

    ``theta`` is the drift per unit of ``info``: ``E[Z_k] = theta * sqrt(info[k])``;
    ``r`` as in :func:`efficacy_bounds_nb`. Returns ``(upper, lower)``.
    """
    return _bounds_core(info, spend_cum, beta_cum, theta, binding, np.bool_(True), r)


@njit(cache=True)
def crossing_probabilities_nb(info: np.ndarray, upper: np.ndarray, lower: np.ndarray,
                              theta: float, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of first exiting above / below at each look under drift ``theta``.

    Parameters
    ----------
    info : float64[:]
        Cumulative information per look, positive and strictly increasing.
    upper, lower : float64[:]
        Efficacy and futility z bounds (``+inf`` / ``-inf`` for none). Where
        ``lower_k >= upper_k`` every path reaching look k stops there; efficacy wins
        (the lower exit is ``Z_k < min(lower_k, upper_k)``).
    theta : float
        Drift per unit information: ``E[Z_k] = theta * sqrt(info[k])``.
    r : int
        Grid points per standard deviation (:data:`GRID_R`).

    Returns
    -------
    (float64[:], float64[:])
        ``p_upper[k] = P(Z_j in (lower_j, upper_j) for j < k, Z_k > upper_k)`` and
        ``p_lower[k]`` likewise with ``Z_k < lower_k``.
    """
    n_looks = info.size
    p_upper = np.zeros(n_looks)
    p_lower = np.zeros(n_looks)
    size = 12 * r + 1
    z, wh, z_next, wh_next = np.empty(size), np.empty(size), np.empty(size), np.empty(size)
    z[0], wh[0] = 0.0, 1.0
    m = np.int64(1)  # typed int64 from the start: a literal 1 would compile the callees twice
    i_prev = 0.0
    for k in range(n_looks):
        i_k = info[k]
        p_upper[k] = _tail(upper[k], 1.0, z, wh, m, i_prev, i_k, theta)[0]
        p_lower[k] = _tail(-min(lower[k], upper[k]), -1.0, z, wh, m, i_prev, i_k, theta)[0]
        if k < n_looks - 1:
            m = _advance(z, wh, m, i_prev, i_k, theta, lower[k], upper[k], r, z_next, wh_next)
            z, wh, z_next, wh_next = z_next, wh_next, z, wh
        i_prev = i_k
    return p_upper, p_lower


# --- Python API -------------------------------------------------------------------


@dataclass(frozen=True)
class Boundaries:
    """A one-sided group-sequential design.

    Attributes
    ----------
    info_fraction : numpy.ndarray
        Information fraction per look, dimensionless, strictly increasing.
    efficacy : numpy.ndarray
        Efficacy z bounds: stop and reject H0 at the first look with ``Z_k > efficacy_k``
        (``+inf``: no efficacy stop at that look).
    futility : numpy.ndarray
        Futility z bounds: stop at the first look with ``Z_k < futility_k`` (``-inf``:
        none).
    alpha_spent : numpy.ndarray
        Cumulative one-sided type I error spent by each look (the spending function;
        under non-binding futility it assumes futility stops are ignored).
    nominal_p : numpy.ndarray
        Nominal one-sided p-value ``1 - Phi(efficacy_k)`` at each look.
    binding : bool
        Whether the efficacy bounds assume futility stops are always obeyed.
    """

    info_fraction: np.ndarray
    efficacy: np.ndarray
    futility: np.ndarray
    alpha_spent: np.ndarray
    nominal_p: np.ndarray
    binding: bool


def _as_info(info) -> np.ndarray:
    arr = np.array(info, dtype=np.float64)  # a copy: Boundaries must not alias inputs
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("information must be a non-empty 1-D sequence")
    if not np.isfinite(arr).all() or arr[0] <= 0.0 or (np.diff(arr) <= 0.0).any():
        raise ValueError(f"information must be positive, finite and strictly increasing: {arr}")
    return arr


def _as_r(r) -> int:
    if int(r) != r or r < 1:
        raise ValueError(f"grid density r must be a positive integer, got {r}")
    return int(r)


def futility_bounds(info, alpha_cum, theta: float, beta: float, spending: str = "obf",
                    param: float = 0.0, binding: bool = False,
                    r: int = GRID_R) -> tuple[np.ndarray, np.ndarray]:
    """Efficacy and beta-spending futility bounds (asymmetric design).

    Method: see :func:`beta_spending_bounds_nb`. Beta is spent at information fraction
    ``info / info[-1]``; the futility bound at look ``k < K`` solves
    ``P_theta(first exit below at look k) = spend(spending, t_k, beta, param) -
    spend(spending, t_{k-1}, beta, param)``, capped at the efficacy bound; the last one
    equals the last efficacy bound.

    Parameters
    ----------
    info : array_like
        Cumulative information (or fractions), positive, strictly increasing.
    alpha_cum : array_like
        Cumulative one-sided type I error to spend by each look.
    theta : float
        Drift per unit of ``info`` (``E[Z_k] = theta * sqrt(info_k)``); with fractions,
        the expected z statistic at full information.
    beta : float
        Total type II error to spend, in (0, 1).
    spending, param : str, float
        Beta-spending function, as in :func:`spend`.
    binding : bool
        Whether the efficacy bounds account for the futility stops.
    r : int
        Grid points per standard deviation.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Efficacy and futility z bounds. With ``binding=False`` the efficacy bounds are
        those of :func:`efficacy_bounds_nb` without futility.
    """
    info_arr = _as_info(info)
    alpha_arr = np.ascontiguousarray(alpha_cum, dtype=np.float64)
    if alpha_arr.shape != info_arr.shape:
        raise ValueError("alpha_cum must have one value per look")
    if not math.isfinite(theta):
        raise ValueError(f"theta must be finite, got {theta}")
    beta_cum = np.ascontiguousarray(spend(spending, info_arr / info_arr[-1], beta, param))
    return beta_spending_bounds_nb(info_arr, alpha_arr, beta_cum, float(theta), bool(binding),
                                   _as_r(r))


def design_bounds(info_fraction, alpha: float = 0.025, spending: str = "obf",
                  param: float = 0.0, futility=None, binding: bool = False,
                  r: int = GRID_R) -> Boundaries:
    """One-sided group-sequential bounds by alpha spending.

    Parameters
    ----------
    info_fraction : array_like
        Information fraction at each look (e.g. ``[1/3, 2/3, 1]``), positive, strictly
        increasing; spending saturates at ``alpha`` from fraction 1 on.
    alpha : float
        One-sided type I error (for a two-sided symmetric test at level ``2 alpha``,
        mirror the efficacy bounds).
    spending, param : str, float
        Alpha-spending function, see :func:`spend`.
    futility : None, array_like or dict
        ``None``: no futility bounds. An array: futility z bounds per look (``-inf`` for
        none). A dict with keys ``"beta"`` and ``"theta"`` (required) and
        ``"spending"`` (default ``"obf"``), ``"param"`` (default 0): beta-spending
        bounds from :func:`futility_bounds`, ``theta`` being the expected z statistic
        at full information under the alternative.
    binding : bool
        Whether the efficacy bounds account for the futility stops (see
        :func:`efficacy_bounds_nb`).
    r : int
        Grid points per standard deviation.

    Returns
    -------
    Boundaries
    """
    t = _as_info(info_fraction)
    alpha_cum = np.ascontiguousarray(spend(spending, t, alpha, param))
    if isinstance(futility, dict):
        unknown = set(futility) - set(FUTILITY_KEYS)
        if unknown or "beta" not in futility or "theta" not in futility:
            raise ValueError(f"futility dict needs 'beta' and 'theta', may have "
                             f"{FUTILITY_KEYS}; got {sorted(futility)}")
        upper, lower = futility_bounds(t, alpha_cum, float(futility["theta"]),
                                       float(futility["beta"]), futility.get("spending", "obf"),
                                       float(futility.get("param", 0.0)), binding, r)
    else:
        if futility is None:
            lower = np.full(t.size, -np.inf)
        else:
            lower = np.array(futility, dtype=np.float64)
            if lower.shape != t.shape or np.isnan(lower).any():
                raise ValueError("futility must hold one z bound (or -inf) per look")
        upper = efficacy_bounds_nb(t, alpha_cum, lower, bool(binding), _as_r(r))
    return Boundaries(info_fraction=t, efficacy=upper, futility=lower, alpha_spent=alpha_cum,
                      nominal_p=ndtr(-upper), binding=bool(binding))


def information_fractions(information: Sequence[float | None], events: Sequence[int | None]) -> np.ndarray:
    """Planned information fraction of each look.

    Parameters
    ----------
    information : sequence of float or None
        The fraction given for each look (None: not given).
    events : sequence of int or None
        Each look's target number of events (None: not cut by events).

    Returns
    -------
    numpy.ndarray
        The given fractions if every look has one; else ``events / events[-1]`` (a single
        look: 1).
    """
    if all(i is not None for i in information):
        return np.array(information, dtype=float)
    if len(events) == 1:
        return np.ones(1)
    target = np.array(events, dtype=float)
    return target / target[-1]


def dunnett_alpha(alpha: float, ratios: Sequence[int], control_ratio: int) -> float:
    """Nominal one-sided level of each comparison in Dunnett's many-to-one test.

    The critical value c with ``P(max_k Z_k > c) = alpha`` for the K experimental arms' z
    statistics, correlated ``sqrt(r_j r_k / ((r_j + r_c)(r_k + r_c)))`` through the shared
    control (r: allocation ratios), by quadrature over the shared factor
    (``Z_k = w_k X + sqrt(1 - w_k^2) Y_k``, ``w_k = sqrt(r_k / (r_k + r_c))``). Also valid
    after dose selection: dropping arms only lowers the maximum.

    Parameters
    ----------
    alpha : float
        Familywise one-sided type I error.
    ratios : sequence of int
        Allocation ratio of each experimental arm (two or more).
    control_ratio : int
        Allocation ratio of the control arm.

    Returns
    -------
    float
        ``1 - Phi(c)``.
    """
    from scipy import integrate, optimize, stats  # here: only multi-arm designs need them (stats: 0.8 s to import)

    w = np.array([math.sqrt(r / (r + control_ratio)) for r in ratios])

    def excess(c: float) -> float:  # P(max_k Z_k > c) - alpha, one-dimensional quadrature over X
        def density(x: float) -> float:
            return stats.norm.pdf(x) * np.prod(stats.norm.cdf((c - w * x) / np.sqrt(1.0 - w * w)))
        return 1.0 - integrate.quad(density, -DUNNETT_RANGE, DUNNETT_RANGE, epsabs=1e-13)[0] - alpha

    c = optimize.brentq(excess, stats.norm.isf(alpha), stats.norm.isf(alpha / len(ratios)) + 0.5, xtol=1e-10)
    return float(stats.norm.sf(c))
