"""Calibration: the likelihood pieces, reproducibility, and the shipped fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from simulator.calibration import check as C
from simulator.calibration import figures as F
from simulator.calibration import parameters as FP
from simulator.calibration import run as R
from simulator.model.config import default_config_dir
from simulator.model.files import load_parameter_file, load_parameters
from simulator.model.structure import ModelStructure, all_structures, structure_from_id
from simulator.runtime.storage import read_netcdf


def _figure(value, n, kind="rate"):
    return F.Figure("t", "t", "pooled", value, n, kind, True, True, 100, "", lambda d: None)


def test_rate_residual_is_binomial_deviance():
    f = _figure(0.5, 100)
    assert f.residual(F._rate(50, 100, 100)) == 0.0
    r = f.residual(F._rate(60, 100, 100))
    dev = 2 * (stats.binom.logpmf(50, 100, 0.5) - stats.binom.logpmf(50, 100, 0.6))
    assert r > 0 and r**2 == pytest.approx(dev, rel=1e-12)
    assert f.residual(F._rate(40, 100, 100)) < 0


def test_missing_n_is_derived_from_simulated_share():
    f = _figure(0.3, None)  # group size 100
    sim = F._rate(30, 2_000, 10_000)  # the subgroup is 20% of the simulated group
    assert f.n_used(sim) == pytest.approx(20.0)


def test_median_precision_and_residual():
    assert _figure(0.8, None, "median").precision == pytest.approx(0.05)
    assert _figure(2.09, 161, "median").precision == pytest.approx(0.005)
    assert _figure(3.0, 164, "median").precision == pytest.approx(0.5)
    x = np.linspace(0.0, 2.0, 20_001)  # median 1.0
    sim = F._median_of_sample(x, len(x))
    assert _figure(1.0, 100, "median").residual(sim) == 0.0
    # 1.02 is reported to +-0.005: mass below 1.015 is 0.5075, i.e. 0.0075 / (0.5 / 10) SD
    assert _figure(1.02, 100, "median").residual(sim) == pytest.approx(0.15, abs=1e-3)


def test_median_residual_uses_greenwood_scale():
    x = np.linspace(0.0, 2.0, 20_001)
    sim = F._median_of_sample(x, len(x))
    r = _figure(1.2, 100, "median").residual(sim)  # precision 0.05: edge 1.15, mass below 0.575
    assert r == pytest.approx((0.575 - 0.5) / (0.5 / 10.0), abs=1e-3)


def test_check_intervals_are_clopper_pearson_at_published_n():
    f = _figure(0.509, 161)
    lo, hi = f.interval(F._rate(1, 2, 2))
    ci = stats.binomtest(82, 161).proportion_ci(method="exact")
    assert (lo, hi) == pytest.approx((ci.low, ci.high))


def test_free_transforms_round_trip():
    for p in FP.FIT_PARAMETERS:
        x = 0.3 if p.transform == "logit" else 1.7
        assert p.from_free(p.to_free(x)) == pytest.approx(x)


def test_parameter_file_keeps_comments(tmp_path):
    template = default_config_dir() / "parameters" / "starting.yaml"
    out = R.write_parameter_file(template, {"nrm_rate": 0.123456789, "hsct_proceed_prob": 0.5},
                                 tmp_path / "p.yaml", "# STATUS: header\n", ModelStructure(nrm_driver="time_to_hsct"))
    text = out.read_text()
    assert text.startswith("# STATUS: header\n") and text.count("# STATUS:") == 1
    assert "nrm_rate: 0.123457" in text
    assert "# Weibull NRM" in text
    assert load_parameters(out).nrm_rate == pytest.approx(0.123457)
    assert load_parameter_file(out)[1] == ModelStructure(nrm_driver="time_to_hsct")


TINY = R.CalibrationSize(fit_patients=3_000, starts=1, max_nfev=2, smc_patients=2_000, particles=64,
                         moves=1)


def test_tiny_calibration_is_reproducible(tmp_path):
    a = R.calibrate(tmp_path / "a", TINY, log=lambda *_: None)
    b = R.calibrate(tmp_path / "b", TINY, log=lambda *_: None)
    assert a["parameters"].read_text() == b["parameters"].read_text()
    ea, eb = read_netcdf(a["posterior"]), read_netcdf(b["posterior"])
    np.testing.assert_array_equal(ea.parameters.values, eb.parameters.values)
    assert ea.sizes["draw"] == 64
    fitted = [n for n, f in zip(ea.parameter.values, ea.fitted.values) if f]
    assert set(fitted) == set(FP.FIT_NAMES)
    load_parameters(a["parameters"])  # a valid parameter file


def test_shipped_defaults_pass_the_check():
    """Every primary target inside its 95% interval with >= 200,000 simulated patients."""
    rows = C.check(load_parameters(default_config_dir() / "parameters" / "default.yaml"), 200_000)
    primary = [r for r in rows if r.section == "primary"]
    assert len(primary) == 36  # 33 of the pooled dose analysis, 3 of INO-VATE's durability
    outside = [(r.figure.key, r.figure.value, r.sim.estimate, r.interval) for r in primary if not r.inside]
    assert not outside, outside
    assert all(math.isfinite(r.sim.estimate) for r in rows)


def test_shipped_posterior_ensemble():
    """The combined ensemble: every structure, weights from the evidence, draws shared by weight."""
    ens = read_netcdf(default_config_dir() / "parameters" / "posterior.nc")
    structures = [str(s) for s in ens.structure.values]
    assert sorted(structures) == sorted(s.id for s in all_structures())
    w = ens.structure_weight.values
    np.testing.assert_allclose(w.sum(), 1.0)
    np.testing.assert_allclose(w, R.structure_weights(ens.structure_log_evidence_by_seed.values.mean(axis=0)))
    assert ens.sizes["seed"] == len(R.EVIDENCE_SEEDS)
    assert (ens.structure_weight_lower <= w + 1e-12).all() and (w <= ens.structure_weight_upper + 1e-12).all()
    counts = {s: int((ens.draw_structure.values == s).sum()) for s in structures}
    assert sum(counts.values()) == ens.sizes["draw"] >= 200
    for s, weight in zip(structures, w):  # largest remainder: within one draw of the exact share
        assert abs(counts[s] - weight * ens.sizes["draw"]) < 1
        own = ens.structure_parameters.sel(structure=s)
        for name in structure_from_id(s).unused:  # a structure's unused slopes are exactly 0
            assert (own.sel(parameter=name) == 0).all()
    varying = ens.structure_parameters.sel(parameter=list(FP.FIT_NAMES)).std("particle")
    assert (varying > 0).mean() > 0.5


def test_weight_spread_over_seeds():
    """Weights from the mean log evidence; the range is that of the single seeds' weights (closed form:
    two structures, log evidence differences 0 and log 3 in two seeds -> weights 1/2 and 3/4 for the
    second, sqrt(3) : 1 odds from the mean)."""
    w, lo, hi = R.weight_spread(np.array([[0.0, 0.0], [0.0, math.log(3.0)]]))
    np.testing.assert_allclose(w, [1 / (1 + math.sqrt(3)), math.sqrt(3) / (1 + math.sqrt(3))])
    np.testing.assert_allclose(lo, [0.25, 0.5])
    np.testing.assert_allclose(hi, [0.5, 0.75])


def test_draw_counts_and_weights():
    np.testing.assert_array_equal(R.draw_counts(np.array([0.5, 0.3, 0.2]), 7), [4, 2, 1])
    assert R.draw_counts(np.array([1 / 3] * 3), 400).sum() == 400
    np.testing.assert_allclose(R.structure_weights(np.array([0.0, math.log(3.0)])), [0.25, 0.75])
