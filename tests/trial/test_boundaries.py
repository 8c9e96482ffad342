"""Group-sequential bounds: spending functions, recursive integration vs rpact, vs
multivariate-normal integration (scipy, Genz) and vs Brownian-motion Monte Carlo."""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from simulator.trial.boundaries import (
    GRID_R,
    KIND_CODES,
    Boundaries,
    beta_spending_bounds_nb,
    crossing_probabilities_nb,
    design_bounds,
    dunnett_alpha,
    efficacy_bounds_nb,
    futility_bounds,
    information_fractions,
    spend,
    spend_nb,
)

ALPHA = 0.025
MVN_ABSEPS = 1e-6  # absolute error requested from scipy's randomised Genz integrator
MVN_TOL = 1e-5  # 10x MVN_ABSEPS (Genz's estimate is ~3 SE); the grid error is < 1e-8
MVN_SEED = 20240601
MC_PATHS = 400_000
MC_SEED = 12345
MC_SE = 4.0  # Monte Carlo tolerance in binomial standard errors sqrt(p (1 - p) / n)
MC_MIN_COUNT = 10  # expected crossings below which a rate is not checked by Monte Carlo

# unequally spaced looks for K = 1..5 (K = 3 is rpact's equally spaced example)
INFOS = {
    1: (1.0,),
    2: (0.4, 1.0),
    3: (1 / 3, 2 / 3, 1.0),
    4: (0.2, 0.45, 0.8, 1.0),
    5: (0.1, 0.3, 0.5, 0.75, 1.0),
}
SPENDINGS = (("obf", 0.0), ("pocock", 0.0), ("hsd", -4.0), ("hsd", 1.0), ("power", 2.0))
DESIGNS = [(k, kind, param) for k in INFOS for kind, param in SPENDINGS]


def corr(info: np.ndarray) -> np.ndarray:
    """corr(Z_i, Z_j) = sqrt(I_i / I_j) for I_i <= I_j."""
    s = np.sqrt(info)
    return np.minimum.outer(s, s) / np.maximum.outer(s, s)


def mvn_box(lo, hi, mean, cov) -> float:
    """P(lo < X < hi) for X ~ N(mean, cov), Genz integration with a fixed seed."""
    return float(multivariate_normal.cdf(hi, mean=mean, cov=cov, lower_limit=lo,
                                         abseps=MVN_ABSEPS, releps=0.0,
                                         rng=np.random.default_rng(MVN_SEED)))


def mvn_first_exit(info, upper, lower, theta):
    """Probabilities of first exit above / below at each look, as boxes of the joint normal."""
    info = np.asarray(info)
    mean, cov = theta * np.sqrt(info), corr(info)
    p_up, p_low = np.zeros(info.size), np.zeros(info.size)
    for k in range(info.size):
        m, c = mean[: k + 1], cov[: k + 1, : k + 1]
        p_up[k] = mvn_box(np.r_[lower[:k], upper[k]], np.r_[upper[:k], np.inf], m, c)
        if lower[k] > -np.inf:
            p_low[k] = mvn_box(np.r_[lower[:k], -np.inf], np.r_[upper[:k], lower[k]], m, c)
    return p_up, p_low


@cache
def brownian_z(info: tuple, theta: float = 0.0) -> np.ndarray:
    """MC_PATHS draws of (Z_1..Z_K): Z_k = S_k / sqrt(I_k), S Brownian with drift theta."""
    info_arr = np.asarray(info)
    delta = np.diff(info_arr, prepend=0.0)
    rng = np.random.default_rng(MC_SEED)
    steps = rng.standard_normal((MC_PATHS, info_arr.size)) * np.sqrt(delta) + theta * delta
    return np.cumsum(steps, axis=1) / np.sqrt(info_arr)


def mc_first_exit(z: np.ndarray, upper, lower):
    """Monte Carlo rates of first exit above / below at each look."""
    running = np.ones(z.shape[0], dtype=bool)
    p_up, p_low = np.zeros(z.shape[1]), np.zeros(z.shape[1])
    for k in range(z.shape[1]):
        up, low = running & (z[:, k] > upper[k]), running & (z[:, k] < lower[k])
        p_up[k], p_low[k] = up.mean(), low.mean()
        running &= ~(up | low)
    return p_up, p_low


def assert_within_mc(observed, expected):
    """Rates within MC_SE binomial SEs, where the normal approximation holds (at least
    MC_MIN_COUNT expected crossings; rarer exits are checked by the MVN tests)."""
    observed, expected = np.atleast_1d(observed), np.atleast_1d(expected)
    se = np.sqrt(expected * (1.0 - expected) / MC_PATHS)
    checked = expected * MC_PATHS >= MC_MIN_COUNT
    assert checked.any()
    assert np.all(np.abs(observed - expected)[checked] <= MC_SE * se[checked]), (observed, expected)


def test_rpact_obf_three_equal_looks():
    # rpact 3.3.4 getDesignGroupSequential(kMax = 3, alpha = 0.025, sided = 1,
    # typeOfDesign = "asOF"); values printed to 4 decimals (z) and 7 decimals (alpha)
    b = design_bounds([1 / 3, 2 / 3, 1.0], alpha=ALPHA, spending="obf")
    # half a unit of the 4th decimal (5e-5) plus the grid error (~3e-7); got 3.710303,
    # 2.511427, 1.993047
    np.testing.assert_allclose(b.efficacy, [3.7103, 2.5114, 1.9930], rtol=0, atol=5.1e-5)
    # half a unit of the last printed digit; closed form, so far tighter in fact
    np.testing.assert_allclose(b.alpha_spent, [0.0001035, 0.0060484, 0.025], rtol=0, atol=5e-8)
    np.testing.assert_allclose(b.nominal_p, norm.sf(b.efficacy), rtol=1e-12)
    assert np.all(b.futility == -np.inf) and not b.binding


@pytest.mark.parametrize("kind, param", [*SPENDINGS, ("hsd", 0.0), ("power", 0.5)])
def test_spend_closed_forms(kind, param):
    t = np.array([0.05, 0.2, 0.5, 0.9, 1.0])
    closed = {
        "obf": 2.0 * norm.sf(norm.isf(ALPHA / 2) / np.sqrt(t)),  # = 2 - 2 Phi(.), no cancellation
        "pocock": ALPHA * np.log(1.0 + (np.e - 1.0) * t),
        "hsd": (ALPHA * t if param == 0.0
                else ALPHA * (1 - np.exp(-param * t)) / (1 - np.exp(-param))),
        "power": ALPHA * t**param,
    }[kind]
    got = spend(kind, t, ALPHA, param)
    np.testing.assert_allclose(got, closed, rtol=1e-12)  # same formulas, rounding only
    assert got[-1] == ALPHA and np.all(np.diff(got) > 0)
    assert spend(kind, 0.0, ALPHA, param) == 0.0 and spend(kind, 1.7, ALPHA, param) == ALPHA
    assert spend_nb(KIND_CODES[kind], 0.5, ALPHA, param) == spend(kind, 0.5, ALPHA, param)


@pytest.mark.parametrize("n_looks, kind, param", DESIGNS)
def test_bounds_spend_alpha_by_mvn(n_looks, kind, param):
    info = np.array(INFOS[n_looks])
    b = design_bounds(info, alpha=ALPHA, spending=kind, param=param)
    cov = corr(info)
    crossed = [1.0 - mvn_box(np.full(k, -np.inf), b.efficacy[:k], np.zeros(k), cov[:k, :k])
               for k in range(1, n_looks + 1)]
    np.testing.assert_allclose(crossed, b.alpha_spent, rtol=0, atol=MVN_TOL)
    np.testing.assert_allclose(b.alpha_spent, spend(kind, info, ALPHA, param), rtol=1e-15)


@pytest.mark.parametrize("n_looks, kind, param", DESIGNS)
def test_bounds_spend_alpha_by_monte_carlo(n_looks, kind, param):
    info = INFOS[n_looks]
    b = design_bounds(info, alpha=ALPHA, spending=kind, param=param)
    p_up, p_low = mc_first_exit(brownian_z(info), b.efficacy, b.futility)
    assert_within_mc(p_up, np.diff(b.alpha_spent, prepend=0.0))
    assert_within_mc(p_up.sum(), ALPHA)
    assert np.all(p_low == 0.0)


def test_single_look_is_fixed_design():
    b = design_bounds([1.0], alpha=ALPHA)
    # look 1 is integrated exactly (no grid), so only the root tolerance remains
    assert b.efficacy[0] == pytest.approx(norm.isf(ALPHA), abs=1e-9)


@pytest.mark.parametrize("n_looks, pocock_constant", [(3, 2.289), (5, 2.413)])
def test_lan_demets_pocock_nearly_constant(n_looks, pocock_constant):
    # Pocock's constant bound (Jennison & Turnbull 2000, Table 2.1, two-sided 0.05);
    # the Lan-DeMets spending function only approximates it: observed spread 0.017
    # (K = 3) and 0.052 (K = 5)
    b = design_bounds(np.arange(1, n_looks + 1) / n_looks, alpha=ALPHA, spending="pocock")
    assert np.ptp(b.efficacy) < 0.06
    np.testing.assert_allclose(b.efficacy, pocock_constant, atol=0.03)


def test_binding_futility_lowers_efficacy_and_spends_alpha():
    info = np.array([0.25, 0.5, 0.75, 1.0])
    futility = np.array([0.0, 0.5, 1.0, -np.inf])
    free = design_bounds(info, futility=futility, binding=False)
    bound = design_bounds(info, futility=futility, binding=True)
    np.testing.assert_array_equal(free.efficacy, design_bounds(info).efficacy)
    assert bound.efficacy[0] == free.efficacy[0]  # nothing stopped before look 1
    # observed drops 2.3e-4, 0.013, 0.076 (look 2 is barely affected: paths below 0 at
    # look 1 rarely reach 2.96 at look 2); the grid error is ~3e-7
    assert np.all(free.efficacy[1:] - bound.efficacy[1:] > 1e-4)
    # under binding futility, P_0(first exit above at look k) is the alpha increment
    p_up, _ = mvn_first_exit(info, bound.efficacy, futility, 0.0)
    np.testing.assert_allclose(p_up, np.diff(bound.alpha_spent, prepend=0.0), atol=MVN_TOL)
    p_up_mc, _ = mc_first_exit(brownian_z(tuple(info)), bound.efficacy, futility)
    assert_within_mc(p_up_mc, np.diff(bound.alpha_spent, prepend=0.0))


def test_crossing_probabilities_under_drift_match_mvn_and_monte_carlo():
    info = np.array([40.0, 90.0, 150.0, 200.0])  # absolute information
    theta = 0.2  # E[Z_k] = theta sqrt(I_k): 1.26 .. 2.83
    upper = design_bounds(info / info[-1], spending="hsd", param=-2.0).efficacy
    lower = np.array([0.0, 0.8, 1.5, -np.inf])
    p_up, p_low = crossing_probabilities_nb(info, upper, lower, theta, GRID_R)
    ref_up, ref_low = mvn_first_exit(info, upper, lower, theta)
    np.testing.assert_allclose(p_up, ref_up, atol=MVN_TOL)
    np.testing.assert_allclose(p_low, ref_low, atol=MVN_TOL)
    mc_up, mc_low = mc_first_exit(brownian_z(tuple(info), theta), upper, lower)
    assert_within_mc(mc_up, p_up)
    assert_within_mc(mc_low, p_low)
    # without futility, theta = 0 recovers the spent alpha (same grid: root tolerance)
    p0, _ = crossing_probabilities_nb(info, upper, np.full(4, -np.inf), 0.0, GRID_R)
    np.testing.assert_allclose(np.cumsum(p0), spend("hsd", info / info[-1], ALPHA, -2.0),
                               atol=1e-12)


@pytest.mark.parametrize("info, theta", [(50.0, 0.4), (10.0, -0.1), (300.0, 0.05)])
def test_fixed_design_power_is_analytic(info, theta):
    z = norm.isf(ALPHA)
    p_up, p_low = crossing_probabilities_nb(np.array([info]), np.array([z]),
                                            np.array([-np.inf]), theta, GRID_R)
    # one look is integrated in closed form: agreement to rounding
    assert p_up[0] == pytest.approx(norm.cdf(theta * np.sqrt(info) - z), rel=1e-12)
    assert p_low[0] == 0.0


@pytest.mark.parametrize("binding", [False, True])
def test_beta_spending_futility(binding):
    info = np.array([0.3, 0.6, 0.8, 1.0])
    theta, beta = 3.0, 0.15  # theta: E[Z] at full information under the alternative
    b = design_bounds(info, futility={"beta": beta, "theta": theta, "spending": "hsd",
                                      "param": -2.0}, binding=binding)
    beta_inc = np.diff(spend("hsd", info, beta, -2.0), prepend=0.0)
    assert b.futility[-1] == b.efficacy[-1]
    assert np.all(b.futility[:-1] < b.efficacy[:-1])
    _, p_low = mvn_first_exit(info, b.efficacy, b.futility, theta)
    np.testing.assert_allclose(p_low[:-1], beta_inc[:-1], atol=MVN_TOL)
    # type I error: exactly alpha if binding, at most alpha if not
    p0_up, _ = crossing_probabilities_nb(info, b.efficacy, b.futility, 0.0, GRID_R)
    if binding:
        np.testing.assert_allclose(np.cumsum(p0_up), b.alpha_spent, atol=1e-9)
    else:
        np.testing.assert_array_equal(b.efficacy, design_bounds(info).efficacy)
        assert p0_up.sum() < ALPHA
    upper, lower = futility_bounds(info, b.alpha_spent, theta, beta, "hsd", -2.0, binding)
    np.testing.assert_array_equal(upper, b.efficacy)
    np.testing.assert_array_equal(lower, b.futility)


def test_futility_capped_at_efficacy_when_underpowered():
    info = np.array([0.5, 1.0])
    alpha_cum = spend("obf", info, ALPHA)
    # E[Z_1] = 0.35 and P(Z_1 < upper_1 = 2.96) = 0.995 < 0.999: the bound would exceed it
    upper, lower = beta_spending_bounds_nb(info, alpha_cum, np.array([0.999, 0.9995]), 0.5,
                                           False, GRID_R)
    assert lower[0] == upper[0]


def test_zero_alpha_increment_gives_infinite_bound():
    b = design_bounds([0.5, 1.0, 1.25])  # spending is flat beyond information fraction 1
    assert b.efficacy[2] == np.inf and b.nominal_p[2] == 0.0
    np.testing.assert_array_equal(b.efficacy[:2], design_bounds([0.5, 1.0]).efficacy)


def test_efficacy_bounds_nb_matches_design_and_grid_refinement():
    info = np.array([0.1, 0.3, 0.5, 0.75, 1.0])
    alpha_cum = spend("obf", info, ALPHA)
    none = np.full(5, -np.inf)
    default = efficacy_bounds_nb(info, alpha_cum, none, False, GRID_R)
    np.testing.assert_array_equal(default, design_bounds(info).efficacy)
    fine = efficacy_bounds_nb(info, alpha_cum, none, False, 4 * GRID_R)
    np.testing.assert_allclose(default, fine, atol=1e-6)  # grid error ~3e-7 at r = 24
    # bounds depend on information only through its ratios
    np.testing.assert_allclose(efficacy_bounds_nb(250.0 * info, alpha_cum, none, False, GRID_R),
                               default, atol=1e-9)


@pytest.mark.parametrize("ratios, control", [((1, 1), 1), ((2, 1), 1), ((1, 1, 1), 2)])
def test_dunnett_alpha_by_mvn(ratios, control):
    """Dunnett's level, checked by scipy's multivariate normal (Genz) at the critical value: the
    comparisons' z statistics are correlated sqrt(r_j r_k / ((r_j + r_c)(r_k + r_c)))."""
    c = norm.isf(dunnett_alpha(ALPHA, ratios, control))
    w = np.sqrt(np.array(ratios) / (np.array(ratios) + control))
    cov = np.outer(w, w)
    np.fill_diagonal(cov, 1.0)
    k = len(ratios)
    mvn = multivariate_normal(np.zeros(k), cov, abseps=MVN_ABSEPS, seed=MVN_SEED)
    assert 1.0 - mvn.cdf(np.full(k, c)) == pytest.approx(ALPHA, abs=MVN_TOL)


def test_dunnett_two_arms_table_value():
    """Dunnett's one-sided critical value for two arms vs a shared control (equal allocation) at
    0.025 is 2.2121 (Dunnett's tables to 4 digits)."""
    assert norm.isf(dunnett_alpha(ALPHA, [1, 1], 1)) == pytest.approx(2.2121, abs=1e-4)


def test_information_fractions():
    assert information_fractions([0.3, 1.0], [None, 200]).tolist() == [0.3, 1.0]
    assert information_fractions([None, None, None], [100, 200, 400]).tolist() == [0.25, 0.5, 1.0]
    assert information_fractions([None], [None]).tolist() == [1.0]


def test_boundaries_is_frozen():
    b = design_bounds([0.5, 1.0])
    assert isinstance(b, Boundaries)
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.binding = True


@pytest.mark.parametrize("call", [
    lambda: spend("linear", 0.5, ALPHA),
    lambda: spend("power", 0.5, ALPHA, 0.0),
    lambda: spend("obf", 0.5, 1.5),
    lambda: design_bounds([0.5, 0.5, 1.0]),
    lambda: design_bounds([0.0, 1.0]),
    lambda: design_bounds([0.5, 1.0], futility=[0.0]),
    lambda: design_bounds([0.5, 1.0], futility={"beta": 0.1}),
    lambda: design_bounds([0.5, 1.0], r=0),
    lambda: design_bounds([0.5, 1.0], futility={"beta": 0.1, "theta": 3.0, "gamma": 1.0}),
])
def test_invalid_input_raises(call):
    with pytest.raises(ValueError):
        call()
