"""Strategy answers with Monte Carlo, parameter and structural uncertainty."""

from __future__ import annotations

import numpy as np
import xarray as xr
from conftest import CONFIGS

from simulator import load_scenario
from simulator.model.kernel import PARAMETER_NAMES
from simulator.sensitivity.distributions import load_comparator_ensemble, load_ensemble, varied_parameters
from simulator.sensitivity.models import SimulatorModel
from simulator.sensitivity.strategies import (
    PRECISE_REPLICATES,
    compare_strategies,
    ensemble_summary,
    format_strategy_answers,
)

SMALL = dict(patients=100, fitted_replicates=20, replicates=20, seed=3)


def _scenarios():
    return load_scenario(CONFIGS / "label_dosing.yaml"), {"two": load_scenario(CONFIGS / "two_cycles_then_stop.yaml")}


def test_one_point_ensemble_gives_the_fitted_answer():
    """An ensemble holding only the fitted values: its posterior interval is its single estimate, which
    agrees with the fitted answer within Monte Carlo error (other patients: the ensemble's blocks come
    after the fitted answer's; 4 SEs of the difference of two independent estimates)."""
    label, others = _scenarios()
    point = xr.Dataset({"parameters": (("draw", "parameter"),
                                       [[getattr(label.parameters, n) for n in PARAMETER_NAMES]])},
                       coords={"draw": [0], "parameter": list(PARAMETER_NAMES),
                               "fitted": ("parameter", [True] * len(PARAMETER_NAMES))})
    ds = compare_strategies(label, others, ("os_24_months", "post_hsct_nrm"), ensemble=point, **SMALL)
    np.testing.assert_array_equal(ds.posterior_lower.values, ds.posterior_mean.values)
    np.testing.assert_array_equal(ds.posterior_upper.values, ds.posterior_mean.values)
    fitted_se = (ds.fitted_upper - ds.fitted_lower) / (2 * 2.09)  # t quantile, 19 df
    assert (abs(ds.posterior_mean - ds.fitted) <= 4 * np.hypot(fitted_se, ds.posterior_mean_mc_se)).all()
    assert ds.sizes["structure"] == 0


def test_combined_ensemble_answer_by_structure_and_direction():
    label, others = _scenarios()
    ds = compare_strategies(label, others, ("os_24_months", "post_hsct_nrm"), draws=24, per_structure=2, **SMALL)
    ens = load_ensemble(None)
    assert list(ds.structure.values) == [str(s) for s in ens.structure.values]
    np.testing.assert_allclose(ds.structure_weight.sum(), 1.0)
    # post-HSCT NRM: lower is better, so P(better) is the share of draws with a negative difference
    assert str(ds.better.sel(metric="post_hsct_nrm").values) == "lower"
    assert ds.posterior_lower.sel(metric="post_hsct_nrm") < ds.posterior_upper.sel(metric="post_hsct_nrm")
    text = format_strategy_answers(ds)
    assert "its CI covers only the Monte Carlo error" in text
    assert "P(better)" in text and "pp" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_no_per_structure_draws():
    label, others = _scenarios()
    ds = compare_strategies(label, others, ("os_24_months",), draws=8, per_structure=0, **SMALL)
    assert ds.sizes["structure"] == 0 and np.isfinite(ds.posterior_mean).all()
    assert "by model structure" not in format_strategy_answers(ds)


def test_mc_share_of_a_known_mixture():
    """True differences N(0, 1) over 4,000 draws, each estimated from 10 replicates whose mean has
    Monte Carlo variance exactly 1: half the spread over draws is Monte Carlo noise. The estimate of a
    variance ratio from 4,000 draws has a relative SE of about sqrt(2 / 4000) x 2 = 0.045 (numerator
    and denominator), so 0.5 +- 0.05 is about 2 SEs; the old t-over-z error alone (6.5%) would be 0.03."""
    rng = np.random.default_rng(11)
    theta = rng.standard_normal(4000)
    values = theta[:, None] + rng.standard_normal((4000, 10)) * np.sqrt(10.0)
    out = ensemble_summary(values)
    assert abs(out["mc_share"] - 0.5) < 0.05
    assert ensemble_summary(theta[:, None])["mc_share"] != ensemble_summary(theta[:, None])["mc_share"]  # NaN


def test_mc_standard_errors_match_reseeds():
    """The Monte Carlo SEs given the draws predict how much a reseed moves the posterior mean and
    P(better): 400 fixed draws (a third near 0), 2,000 reseeds of their replicates; the spread of the
    figures over reseeds agrees with the mean reported SE within 10% (the SD of an SD estimated from
    2,000 reseeds is 1.6%; the split-half estimate of P(better)'s SE is conservative by a few per cent
    by construction, hence 10%)."""
    rng = np.random.default_rng(5)
    theta = np.concatenate([rng.normal(1.0, 2.0, 270), rng.normal(0.0, 0.05, 130)])
    noise_sd = 0.5 * np.sqrt(10)  # replicate SD: the mean of 10 has SD 0.5
    means, probs, mean_se, prob_se = [], [], [], []
    for _ in range(2000):
        out = ensemble_summary(theta[:, None] + rng.normal(0.0, noise_sd, (400, 10)))
        means.append(out["mean"])
        probs.append(out["prob_better"])
        mean_se.append(out["mean_mc_se"])
        prob_se.append(out["prob_better_mc_se"])
    assert abs(np.std(means) / np.mean(mean_se) - 1) < 0.1
    assert abs(np.std(probs) / np.mean(prob_se) - 1) < 0.1


def test_a_reseed_leaves_the_headline_answer():
    """Two cycles then stop vs label dosing, 2-year OS, --precise sizes (every draw its own 80 x 338
    patients): a reseed moves the posterior mean by at most 0.1 pp and P(better) by at most 0.02 (the
    issue's goals), and each by no more than 3 standard errors of the difference that the two answers
    report themselves. At this size P(better)'s Monte Carlo SE is about 0.009, so a reseed stays within
    0.02 for about 88% of seed pairs (the default size, 10 x 338, gives 0.015: within 0.02 for ~65%)."""
    label, others = _scenarios()
    a, b = (compare_strategies(label, others, ("os_24_months",), per_structure=0, fitted_replicates=2,
                               replicates=PRECISE_REPLICATES, seed=seed).sel(strategy="two", metric="os_24_months")
            for seed in (2025, 7))
    assert abs(float(a.prob_better - b.prob_better)) <= 0.02
    assert abs(float(a.posterior_mean - b.posterior_mean)) <= 0.001
    assert abs(float(a.prob_better - b.prob_better)) <= 3 * np.hypot(a.prob_better_mc_se, b.prob_better_mc_se)
    assert abs(float(a.posterior_mean - b.posterior_mean)) <= 3 * np.hypot(a.posterior_mean_mc_se,
                                                                          b.posterior_mean_mc_se)


def test_summary_leaves_out_undefined_replicates_and_draws():
    """A figure undefined in a replicate (NaN, e.g. nobody transplanted) is left out of its draw's mean
    and variance; a draw with no defined replicate is left out of the summary."""
    values = np.array([[1.0, 3.0, np.nan], [np.nan, np.nan, np.nan], [-1.0, -2.0, -3.0]])
    out = ensemble_summary(values)
    assert out["mean"] == 0.0 and out["prob_better"] == 0.5  # draws 2 and -2
    np.testing.assert_allclose(out["mean_mc_se"], np.sqrt(2.0 / 2 + 1.0 / 3) / 2)


def test_bottom_line_says_when_the_sign_depends_on_the_nrm_driver():
    """Two drivers on both sides of 0 and far apart: the sign depends on the driver; all clearly one side:
    the same sign; one driver within 2 SEs of 0 and no clear split: cannot be told from 0."""
    from simulator.sensitivity.strategies import bottom_line

    label, others = _scenarios()
    ds = compare_strategies(label, others, ("os_24_months",), draws=24, per_structure=2, **SMALL)
    drivers = np.array([str(s).split("-")[0] for s in ds.structure.values])
    weights = np.where(drivers == "pretransplant_state", 0.0, 1.0)
    ds["structure_weight"] = ("structure", weights / weights.sum())

    def line(means: dict[str, float], half_width: float = 0.001) -> str:
        mean = np.array([means.get(d, 0.0) for d in drivers])[:, None, None]
        ds["structure_mean"] = (("structure", "strategy", "metric"), mean)
        ds["structure_lower"] = (("structure", "strategy", "metric"), mean - half_width)
        ds["structure_upper"] = (("structure", "strategy", "metric"), mean + half_width)
        return bottom_line(ds, "two", "os_24_months")

    assert "its sign depends" in line({"cumulative_dose": 0.01, "cycles_before_hsct": -0.02, "time_to_hsct": -0.02})
    assert "the same sign" in line({"cumulative_dose": 0.01, "cycles_before_hsct": 0.02, "time_to_hsct": 0.02})
    assert "cannot be told from 0" in line({"cumulative_dose": 0.0, "cycles_before_hsct": 0.02,
                                            "time_to_hsct": 0.02})


def test_a_draws_module_parameters_reach_the_kernel():
    """Two sets differing only in chemo_response_intercept, on the same patients: the chemotherapy
    arm's CR rate follows it (10 trials of 300: the difference is far beyond Monte Carlo error); a set
    naming the scenario's own value gives exactly the records of a set naming none."""
    soc = load_scenario(CONFIGS / "soc_inovate.yaml")
    model = SimulatorModel(soc, ["cr_cri"], patients=300, replicates=10, seed=3)
    low, high = model.evaluate(["chemo_response_intercept"], np.array([[-1.5], [1.5]]))["cr_cri"][:, 0].mean(axis=1)
    assert high - low > 0.3
    own = model.evaluate(["chemo_response_intercept"], np.array([[soc.comparators.chemo_response_intercept]]))
    np.testing.assert_array_equal(own["cr_cri"], model.evaluate([], np.empty((1, 0)))["cr_cri"])


def test_a_compare_across_treatments_varies_the_modules_with_the_draws():
    """Standard chemotherapy vs label dosing: each draw's row also sets the modules' fitted
    parameters to that draw of their ensemble. Against the same compare with the modules held at
    their fit (an ensemble of one draw: same InO draws, same patients, the InO arm identical), a
    draw's change of difference follows its chemotherapy module's parameters, and the spread widens."""
    soc, label = load_scenario(CONFIGS / "soc_inovate.yaml"), load_scenario(CONFIGS / "label_dosing.yaml")
    modules = load_comparator_ensemble()
    names = varied_parameters(modules)
    fit = modules.isel(draw=[0]).copy(data={"parameters": soc.comparators.vector()[None, :]})
    run = dict(draws=40, per_structure=0, patients=300, replicates=10, fitted_replicates=2, seed=3)
    drawn, fixed = (compare_strategies(soc, {"label": label}, ("cr_cri",), comparator_ensemble=e, **run)
                    for e in (None, fit))
    assert [str(n) for n in drawn.parameter.values] == [*PARAMETER_NAMES, *names]
    pick = np.unique(np.linspace(0, load_ensemble(None).sizes["draw"] - 1, 40).round().astype(int))
    np.testing.assert_array_equal(drawn.draw_inputs.sel(parameter=names).values,
                                  modules["parameters"].sel(parameter=names).values[pick % modules.sizes["draw"]])
    change = (drawn.draw_difference - fixed.draw_difference).sel(strategy="label", metric="cr_cri").values
    x = drawn.draw_inputs.sel(parameter=[n for n in names if n.startswith("chemo_")]).values
    design = np.column_stack([np.ones(len(x)), x])
    residual = change - design @ np.linalg.lstsq(design, change, rcond=None)[0]
    # the chemotherapy module's 6 draws explain the change (R^2 about 0.7 under seeds 3 and 4; by chance
    # 6 regressors on 40 draws give about 0.15)
    assert 1 - residual.var() / change.var() > 0.5
    width = {k: float((d.posterior_upper - d.posterior_lower).sel(strategy="label", metric="cr_cri"))
             for k, d in (("drawn", drawn), ("fixed", fixed))}
    assert width["drawn"] > 1.2 * width["fixed"], width


def test_an_ino_only_compare_never_reads_the_modules_ensemble(tmp_path):
    label, others = _scenarios()
    ds = compare_strategies(label, others, ("os_24_months",), draws=4, per_structure=0,
                            comparator_ensemble=tmp_path / "missing.nc", **SMALL)
    assert [str(n) for n in ds.parameter.values] == list(PARAMETER_NAMES)
