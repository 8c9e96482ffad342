"""EVSI by regression against the normal-normal closed form and a nested Monte Carlo estimate; its
bounds (EVPI, one draw); which NRM driver a trial points to."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from scipy import special, stats

from simulator.sensitivity.evsi import (
    driver_discrimination,
    evpi,
    regression_evsi,
    regression_fit,
    spline_basis,
    value_of_trial,
)

MU0, SD0 = 0.01, 0.03  # prior of the benefit: N(1 pp, 3 pp)
K, M = 400, 50


def _theta() -> np.ndarray:
    return MU0 + SD0 * special.ndtri((np.arange(K) + 0.5) / K)


def closed_form_evsi(sd_trial: float) -> float:
    """theta ~ N(mu0, sd0^2), x ~ N(theta, sd_trial^2): E[theta | x] ~ N(mu0, tau^2) with
    tau^2 = sd0^4 / (sd0^2 + sd_trial^2), so EVSI = tau phi(mu0/tau) + mu0 Phi(mu0/tau) - max(mu0, 0)."""
    tau = SD0 ** 2 / math.hypot(SD0, sd_trial)
    return tau * stats.norm.pdf(MU0 / tau) + MU0 * stats.norm.cdf(MU0 / tau) - max(MU0, 0.0)


def nested_evsi(sd_trial: float, outer: int = 4000, inner: int = 2000, seed: int = 1) -> float:
    """Nested Monte Carlo: outer trials from the prior predictive, inner draws of the conjugate posterior."""
    rng = np.random.default_rng(seed)
    x = MU0 + SD0 * rng.standard_normal(outer) + sd_trial * rng.standard_normal(outer)
    w = SD0 ** 2 / (SD0 ** 2 + sd_trial ** 2)
    post_mean, post_sd = MU0 + w * (x - MU0), math.sqrt(w) * sd_trial
    inner_mean = (post_mean[:, None] + post_sd * rng.standard_normal((outer, inner))).mean(axis=1)
    return float(np.mean(np.maximum(inner_mean, 0.0)) - max(MU0, 0.0))


def _summaries(sd_trial: float, seed: int = 0) -> np.ndarray:
    return _theta()[:, None, None] + sd_trial * np.random.default_rng(seed).standard_normal((K, M, 1))


@pytest.mark.parametrize("sd_trial", [0.1, 0.03, 0.01])
def test_regression_evsi_matches_closed_form_and_nested_monte_carlo(sd_trial):
    r = regression_evsi(_theta(), _summaries(sd_trial), resamples=20)
    exact = closed_form_evsi(sd_trial)
    nested = nested_evsi(sd_trial)
    tol = 3 * max((r["upper"] - r["lower"]) / (2 * 1.96), 1e-5)
    assert abs(r["evsi"] - exact) < tol + 0.05 * exact, (r, exact)
    assert abs(nested - exact) < 0.05 * exact + 2e-4, (nested, exact)
    assert r["lower"] <= r["evsi"] <= r["upper"]


def test_evsi_grows_with_the_trial_towards_evpi_and_stays_below_it():
    theta = _theta()
    values = [regression_evsi(theta, _summaries(sd))["evsi"] for sd in (0.3, 0.1, 0.03, 0.01, 0.003)]
    assert all(b > a for a, b in zip(values, values[1:])), values
    assert values[-1] <= evpi(theta) and values[-1] > 0.9 * evpi(theta)


def test_uninformative_trial_is_worth_nothing_and_one_draw_gives_zero():
    theta = _theta()
    noise = np.random.default_rng(3).standard_normal((K, M, 2))  # unrelated to theta
    assert regression_evsi(theta, noise)["evsi"] < 0.05 * evpi(theta)
    one = regression_evsi(np.array([0.02]), np.random.default_rng(4).standard_normal((1, M, 1)))
    assert one["evsi"] == pytest.approx(0.0, abs=1e-15) and evpi(np.array([0.02])) == 0.0


def test_regression_fit_is_the_least_squares_projection():
    x = np.random.default_rng(5).normal(size=(500, 2))
    basis = spline_basis(x)
    y = np.sin(x[:, 0]) + x[:, 1] ** 2
    expected = basis @ np.linalg.lstsq(basis, y, rcond=None)[0]
    np.testing.assert_allclose(regression_fit(basis, y), expected, atol=1e-8)


def _trial_dataset(benefit: np.ndarray, summaries: np.ndarray, structure: list[str]) -> xr.Dataset:
    k, m, p = summaries.shape
    return xr.Dataset(
        {"estimate": (("draw", "trial", "test"), summaries), "z": (("draw", "trial", "test"), summaries),
         "true_benefit": (("draw", "experimental"), benefit[:, None]),
         "true_benefit_se": (("draw", "experimental"), np.full((k, 1), 0.001))},
        coords={"test": [f"t{i}" for i in range(p)], "ratio": ("test", [False] * p), "experimental": ["e"],
                "structure": ("draw", structure), "nrm_driver": ("draw", [s.split("-")[0] for s in structure])},
        attrs={"benefit": "share alive at 24 months"})


def test_value_of_trial_reports_evsi_below_evpi_and_the_structures_partial_evpi():
    rng = np.random.default_rng(6)
    structure = [("cumulative_dose-a" if i % 2 else "time_to_hsct-b") for i in range(K)]
    benefit = np.where(np.arange(K) % 2, 0.02, -0.02) + 0.005 * rng.standard_normal(K)  # structure decides
    summaries = benefit[:, None, None] + 0.02 * rng.standard_normal((K, M, 1))
    v = value_of_trial(_trial_dataset(benefit, summaries, structure))
    assert 0 < float(v.evsi) <= float(v.evpi)
    assert float(v.evpi_lower) < float(v.evpi) < float(v.evpi_upper)
    assert float(v.evsi_lower) <= float(v.evsi) <= float(v.evsi_upper)
    structure_value = float(v.evppi.sel(input="model structure"))
    assert structure_value == pytest.approx(0.01, rel=0.1)  # E max(+-2 pp, 0) - max(0, 0) = 1 pp
    assert structure_value <= float(v.evpi)


def test_driver_discrimination_finds_a_driver_the_trial_measures_and_not_one_it_does_not():
    rng = np.random.default_rng(7)
    structure = [("cumulative_dose-a" if i % 3 == 0 else "time_to_hsct-b") for i in range(K)]
    driver = np.array([s.startswith("cumulative") for s in structure], dtype=float)
    clear = driver[:, None, None] + 0.1 * rng.standard_normal((K, M, 1))
    figures = {f.name: f for f in driver_discrimination(_trial_dataset(np.zeros(K), clear, structure))}
    assert figures["P(the result points to the true NRM driver)"].estimate > 0.99
    blind = rng.standard_normal((K, M, 1))
    figures = {f.name: f for f in driver_discrimination(_trial_dataset(np.zeros(K), blind, structure))}
    f = figures["P(the result points to the true NRM driver)"]
    assert abs(f.estimate - 2 / 3) < 0.03 and f.lower <= f.estimate <= f.upper  # always the most frequent driver
