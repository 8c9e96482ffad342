"""Sensitivity analysis: Sobol on a function with known indices, zero indices, monotone one-way
results, PSA against plain runs, the sensitivity file and command, and the figures."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import xarray as xr
import yaml
from conftest import CONFIGS, with_changes
from scipy import stats

from simulator import ConfigError, simulate
from simulator.analysis.labels import parameter_label
from simulator.analysis.outcomes import patient_columns
from simulator.analysis.trial_metrics import trial_figures
from simulator.cli import main
from simulator.plots import plot_sensitivity
from simulator.plots.sensitivity import STEMS
from simulator.runtime.storage import read_netcdf
from simulator.sensitivity import (
    FunctionModel,
    SensitivityWarning,
    format_result,
    morris,
    one_way,
    psa,
    sobol,
)
from simulator.sensitivity.distributions import SpecError, load_ensemble, varied_parameters
from simulator.sensitivity.models import METRIC_BY_ID

ISHIGAMI_A, ISHIGAMI_B = 7.0, 0.1
ISHIGAMI_N = 1024  # base samples: the bootstrap CIs are then about +-0.07 (S1) and +-0.04 (ST)
SMALL = dict(patients=100, replicates=2, seed=5)  # 200 virtual patients per parameter set
EXACT = 1e-12  # indices of a parameter the figure does not use: zero up to rounding
UNUSED = {"name": "nrm_after_sos", "low": 0.0, "high": 1.0}  # acts after post-HSCT SOS is decided


def ishigami(x: np.ndarray) -> dict[str, np.ndarray]:
    """Ishigami-Homma function of the first three columns (the fourth is unused)."""
    return {"y": np.sin(x[:, 0]) + ISHIGAMI_A * np.sin(x[:, 1]) ** 2
            + ISHIGAMI_B * x[:, 2] ** 4 * np.sin(x[:, 0])}


def ishigami_indices() -> tuple[np.ndarray, np.ndarray]:
    """Analytic first- and total-order indices of x1, x2, x3 for uniform inputs on [-pi, pi]."""
    a, b, pi = ISHIGAMI_A, ISHIGAMI_B, math.pi
    v1, v2, v13 = 0.5 * (1 + b * pi**4 / 5) ** 2, a**2 / 8, b**2 * pi**8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / v, np.array([v1 + v13, v2, v13]) / v


ISHIGAMI_PROBLEM = [{"name": f"x{i}", "low": -math.pi, "high": math.pi} for i in (1, 2, 3)] + [
    {"name": "x4", "low": 0.0, "high": 1.0}]


# ----------------------------------------------------------------------------- Sobol
def test_sobol_indices_of_the_ishigami_function_match_the_analytic_values():
    """The same path as the simulator's (specs -> SALib sample -> model -> SALib analyze).

    Tolerance: each estimate lies within its own 95% bootstrap half-width of the true
    value (fixed seed), i.e. the estimates are as good as their reported CIs say.
    """
    ds = sobol(FunctionModel(ishigami, ("y",)), ISHIGAMI_PROBLEM, None, ISHIGAMI_N, seed=1)
    s1, st = ishigami_indices()
    idx = ds["y"].sel(parameter=["x1", "x2", "x3"])
    for key, truth in (("S1", s1), ("ST", st)):
        error = np.abs(idx.sel(index=key).values - truth)
        assert np.all(error <= idx.sel(index=f"{key}_conf").values), (key, error)
    unused = ds["y"].sel(parameter="x4").values
    assert np.all(np.abs(unused) < EXACT)
    assert list(ds.base_samples.values) == [32, 64, 128, 256, 512, 1024]
    assert json.loads(ds.attrs["warnings"]) == []


def test_too_few_samples_warn():
    with pytest.warns(SensitivityWarning, match="too small for stable indices"):
        ds = sobol(FunctionModel(ishigami, ("y",)), ISHIGAMI_PROBLEM, None, 8, seed=1)
    assert "too small" in json.loads(ds.attrs["warnings"])[0]
    with pytest.raises(ValueError, match="power of 2"):
        sobol(FunctionModel(ishigami, ("y",)), ISHIGAMI_PROBLEM, None, 24)


@pytest.mark.filterwarnings("ignore::simulator.sensitivity.SensitivityWarning")  # n = 32 is small on purpose
def test_a_parameter_the_metric_does_not_use_gets_zero_indices(label):
    """Common random numbers: changing an unused parameter changes no patient's course."""
    ds = sobol(label, ["sos_intercept_post_hsct", UNUSED], ["post_hsct_sos_any"], 32, **SMALL)
    idx = ds["post_hsct_sos_any"]
    assert np.all(np.abs(idx.sel(parameter="nrm_after_sos").values) < EXACT)
    assert float(idx.sel(parameter="sos_intercept_post_hsct", index="ST")) > 0.5
    assert ds["inputs"].sizes == {"sample": 32 * 4, "parameter": 2}
    m = morris(label, ["sos_intercept_post_hsct", UNUSED], ["post_hsct_sos_any"], 4, **SMALL)
    assert float(m["post_hsct_sos_any"].sel(parameter="nrm_after_sos", index="mu_star")) == 0.0
    assert float(m["post_hsct_sos_any"].sel(parameter="sos_intercept_post_hsct", index="mu_star")) > 0.05


def test_survival_indices_over_time_and_strategy_differences(label):
    metrics = [{"metric": "os_curve", "times": [12, 24]},
               {"metric": "os_24_months", "strategy": "two_cycles", "minus": "base"}]
    ds = sobol(label, ["nrm_cumulative_dose_slope", "hsct_late_rate"], metrics, 32,
               strategies={"two_cycles": {"regimen": {"max_cycles": 2}}}, **SMALL)
    assert ds["os_curve"].dims == ("parameter", "time", "index") and list(ds.time.values) == [12.0, 24.0]
    assert ds["os_curve_convergence"].dims == ("base_samples", "parameter", "time", "index")
    assert ds["os_24_months_two_cycles_minus_base"].dims == ("parameter", "index")
    assert "overall survival at 24 months (KM) at 24 months" not in format_result(ds)
    assert "overall survival (KM) at 12 months (%)" in format_result(ds)


# ----------------------------------------------------------------------------- one-way
@pytest.mark.parametrize(("parameter", "metric"), [("sos_intercept_post_hsct", "post_hsct_sos_any"),
                                                   ("resp_intercept_cycle1", "cr_cri")])
def test_one_way_is_monotone_where_the_model_is(label, parameter, metric):
    """More SOS risk cannot remove an SOS case, nor a higher cycle-1 response a responder (same draws)."""
    ds = one_way(label, [parameter], [metric], points=5, patients=338, replicates=4, seed=3)
    est = ds[metric].sel(parameter=parameter, statistic="estimate").values
    assert np.all(np.diff(ds.value.sel(parameter=parameter).values) > 0)
    assert np.all(np.diff(est) > 0), est
    change = ds[f"{metric}_change"].sel(parameter=parameter, statistic="estimate").values
    np.testing.assert_allclose(change, est - float(ds[f"{metric}_baseline"].sel(statistic="estimate")), atol=EXACT)


def test_one_way_range_comes_from_the_spec(label):
    ds = one_way(label, ["sos_cumulative_dose_slope", {"name": "sos_dual_alkylator", "low": 0.0, "high": 1.4}],
                 ["post_hsct_sos_any"], **SMALL)
    ens = load_ensemble()["parameters"].sel(parameter="sos_cumulative_dose_slope").values
    low, high = ds.value.sel(parameter="sos_cumulative_dose_slope").values
    assert low == pytest.approx(ens.mean() + stats.norm.ppf(0.025) * ens.std(ddof=1)) and high > low
    assert list(ds.value.sel(parameter="sos_dual_alkylator").values) == [0.0, 1.4]
    assert float(ds.baseline_value.sel(parameter="sos_dual_alkylator")) == label.parameters.sos_dual_alkylator


# ----------------------------------------------------------------------------- PSA
def plain(scenario, metrics: tuple[str, ...], patients: int, replicates: int, seed: int) -> dict[str, np.ndarray]:
    """Per-replicate figures of an ordinary run (simulate -> trial_figures)."""
    d = patient_columns(simulate(scenario, patients * replicates, seed))
    values, _ = trial_figures(d, replicates, patients, metrics=tuple(METRIC_BY_ID[m] for m in metrics), curves=False)
    return values


def one_point_ensemble(scenario) -> xr.Dataset:
    """An ensemble of one draw: the scenario's parameter values, fitted as in the shipped one."""
    shipped = load_ensemble()
    names = [str(n) for n in shipped.parameter.values]
    varied = set(varied_parameters(shipped))
    return xr.Dataset({"parameters": (("draw", "parameter"), [[getattr(scenario.parameters, n) for n in names]])},
                      coords={"draw": [0], "parameter": names, "fitted": ("parameter", [n in varied for n in names])})


@pytest.mark.parametrize("override", [{}, {"sos_intercept_post_hsct": -2.0, "nrm_rate": 0.1}])
def test_psa_with_a_one_point_ensemble_equals_a_plain_run(label, override):
    scenario = with_changes(label, parameters=override)
    two = with_changes(scenario, regimen={"max_cycles": 2})
    metrics = ("post_hsct_sos_any", "os_24_months", "hsct")
    sizes = dict(patients=150, replicates=4, seed=9)
    ds = psa(label, one_point_ensemble(scenario), [*metrics, {"metric": "os_24_months", "strategy": "two",
                                                              "minus": "base"}],
             strategies={"two": {"regimen": {"max_cycles": 2}}}, **sizes)
    expected, expected_two = plain(scenario, metrics, **sizes), plain(two, metrics, **sizes)
    for m in metrics:
        assert float(ds[m].sel(statistic="estimate")[0]) == pytest.approx(np.mean(expected[m]), abs=EXACT)
    diff = np.mean(expected_two["os_24_months"] - expected["os_24_months"])
    assert float(ds["os_24_months_two_minus_base"].sel(statistic="estimate")[0]) == pytest.approx(diff, abs=EXACT)


def test_psa_summary_counts_draws(label):
    ds = psa(label, None, [{"metric": "os_24_months", "strategy": "two", "minus": "base"}], draws=7,
             strategies={"two": {"regimen": {"max_cycles": 2}}}, **SMALL)
    name = "os_24_months_two_minus_base"
    est = ds[name].sel(statistic="estimate").values
    s = ds[f"{name}_summary"]
    evenly = np.linspace(0, load_ensemble().sizes["draw"] - 1, 7).round().astype(int)
    assert ds.sizes["draw"] == 7 and list(ds.draw.values) == list(evenly)
    assert float(s.sel(summary="prob_positive")) == pytest.approx(np.mean(est > 0))
    assert float(s.sel(summary="prob_positive_lower")) <= float(s.sel(summary="prob_positive"))
    assert float(s.sel(summary="prob_positive_mc_low")) <= float(s.sel(summary="prob_positive_mc_high"))
    assert ds[f"{name}_rank_correlation"].dims == ("parameter",)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("parameters", "metrics", "needle"), [
    (["nope"], ["hsct"], "parameters.0: name: unknown parameter 'nope'"),
    (["hsct_proceed_prob", {"name": "sos_fatal_prob"}], ["hsct"], "parameters.1: name: no ensemble draws"),
    ([{"name": "hsct_proceed_prob", "low": 0.2}], ["hsct"], "parameters.0: give both low and high"),
    (["hsct_proceed_prob"], [{"metric": "hsct", "times": [12]}], "metrics.0: times: only survival curves"),
    (["hsct_proceed_prob"], ["nope"], "metrics.0.metric: unknown metric 'nope'"),
    (["hsct_proceed_prob"], [{"metric": "hsct", "strategy": "x"}], "metrics.0.strategy: unknown strategy 'x'"),
    (["hsct_proceed_prob", "hsct_proceed_prob"], ["hsct"], "parameters: 'hsct_proceed_prob' is given twice"),
])
def test_bad_specs_name_the_key(label, parameters, metrics, needle):
    """One line, starting with the key path (a ConfigError: exit status 2 from the command line)."""
    with pytest.raises(ConfigError, match=f"^{re.escape(needle)}"):
        one_way(label, parameters, metrics, **SMALL)


def test_a_strategy_may_not_change_the_parameters(label):
    with pytest.raises(SpecError, match="strategies.other: its parameters differ"):
        one_way(label, ["hsct_proceed_prob"], ["hsct"], strategies={"other": {"parameters": {"nrm_rate": 0.2}}},
                **SMALL)


# ----------------------------------------------------------------------------- file, command, figures
def write_config(folder, **keys) -> str:
    doc = {"name": "test_sa", "method": "one_way", "scenario": str(CONFIGS / "label_dosing.yaml"),
           "strategies": {"two": str(CONFIGS / "two_cycles_then_stop.yaml")},
           "metrics": ["post_hsct_sos_any", {"metric": "os_24_months", "strategy": "two", "minus": "base"}],
           "parameters": ["sos_intercept_post_hsct", {"name": "sos_dual_alkylator", "low": 0.0, "high": 1.4}],
           "patients": 100, "replicates": 2, "seed": 4, **keys}
    path = folder / "sa.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def test_cli_runs_a_sensitivity_file(tmp_path, capsys):
    out = tmp_path / "sa.nc"
    assert main(["sensitivity", write_config(tmp_path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "method one_way" in " ".join(text.split()) and "sos_dual_alkylator" in text and "swing" in text
    assert max(len(line) for line in text.splitlines() if str(tmp_path) not in line) <= 100  # paths as they are
    ds = read_netcdf(out)
    assert ds.attrs["method"] == "one_way" and ds.attrs["name"] == "test_sa"
    assert sorted(p.name for p in (tmp_path / "sa_plots").iterdir()) == [
        f"tornado_{o}.png" for o in ("os_24_months_two_minus_base", "post_hsct_sos_any")]
    assert main(["sensitivity", write_config(tmp_path), "--out", str(out), "--plot-format", "pdf",
                 "--plot-dir", str(tmp_path / "pdf")]) == 0
    assert sorted(p.suffix for p in (tmp_path / "pdf").iterdir()) == [".pdf", ".pdf"]


@pytest.mark.parametrize(("keys", "needle"), [
    ({"parameters": [{"name": "sos_dual_alkylator", "low": 1.0}]}, "parameters.0: give both low and high"),
    ({"method": "sobol", "n": 24}, "n: must be a power of 2 for sobol, got 24"),
    ({"method": "psa"}, "parameters: psa varies the ensemble's fitted parameters"),
    ({"points": 3, "method": "sobol"}, "points: applies to method one_way only"),
    ({"parameters": ["nope"]}, "parameters.0: name: unknown parameter 'nope'"),
    ({"metrics": [{"metric": "hsct", "minus": "nope"}]}, "metrics.0.minus: unknown strategy 'nope'"),
    ({"strategies": {"two": {"regimen": {"max_cycles": 0}}}}, "strategies.two: regimen.max_cycles:"),
    ({"scenario": "missing.yaml"}, "scenario: "),
])
def test_cli_config_errors_are_one_line_exit_2(tmp_path, capsys, keys, needle):
    path = write_config(tmp_path, **keys)
    assert main(["sensitivity", path, "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"inosim: {path}: ") and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.nc").exists()


@pytest.mark.filterwarnings("ignore::simulator.sensitivity.SensitivityWarning")
@pytest.mark.parametrize(("method", "needles"), [
    ("one_way", ("baseline", "change at low", "(95% CI)", "swing")),
    ("sobol", ("S1 (95% CI)", "ST at n = 32", "sum of S1")),
    ("morris", ("mu* (95% CI)", "sigma")),
    ("psa", ("95% of draws in", "P(> 0)", "rank correlation with the parameters")),
])
def test_every_method_reports_within_100_columns(label, method, needles):
    """Every table within a terminal's width; each parameter named whole, with its own numbers."""
    metrics = ["post_hsct_sos_any", {"metric": "os_curve", "times": [12, 24]}]
    params = [{"name": "relapse_post_hsct_mrd_positive", "low": 0.2, "high": 1.2}, "sos_intercept_post_hsct"]
    run = {"one_way": lambda: one_way(label, params, metrics, **SMALL),
           "sobol": lambda: sobol(label, params, metrics, 32, **SMALL),
           "morris": lambda: morris(label, params, metrics, 4, **SMALL),
           "psa": lambda: psa(label, None, metrics, draws=5, **SMALL)}[method]
    text = format_result(run())
    assert max(len(line) for line in text.splitlines()) <= 100
    for needle in (*needles, "SOS after HSCT, of transplanted (%)", "overall survival (KM) at 24 months (%)"):
        assert needle in text, needle
    if method != "psa":
        rows = [line.split() for line in text.splitlines() if line.strip().startswith("relapse_post_hsct_mrd")]
        assert len(rows) == 3 and all(len(r) > 3 for r in rows)  # one row per figure, the numbers on its line


@pytest.mark.filterwarnings("ignore::simulator.sensitivity.SensitivityWarning")
def test_figures_of_every_method(label, tmp_path):
    metrics = ["post_hsct_sos_any", {"metric": "os_curve", "times": [12, 24]}]
    params = ["sos_intercept_post_hsct", UNUSED]
    results = {"one_way": one_way(label, params, metrics, **SMALL),
               "sobol": sobol(label, params, metrics, 32, **SMALL),
               "morris": morris(label, params, metrics, 4, **SMALL),
               "psa": psa(label, None, metrics, draws=5, **SMALL)}
    unused = parameter_label(UNUSED["name"]).name  # parameters by their display names
    needles = {"one_way": ("One parameter at a time", "low end of the range", unused, ),
               "sobol": ("Sobol indices", "total order ST", "convergence", unused),
               "morris": ("Morris screen", "mu*", unused),
               "psa": ("Probabilistic sensitivity analysis", "95% of draws in", "rank correlation")}
    for method, ds in results.items():
        paths = plot_sensitivity(ds, tmp_path / method, fmt="svg")
        assert sorted(p.name for p in paths) == sorted(f"{STEMS[method]}_{o}.svg" for o in ("post_hsct_sos_any",
                                                                                             "os_curve"))
        svg = next(p for p in paths if p.name.endswith("post_hsct_sos_any.svg")).read_text()
        for needle in needles[method]:
            assert needle in svg, (method, needle)
        svg = next(p for p in paths if p.name.endswith("os_curve.svg")).read_text()
        if method == "psa":  # a survival curve: its time course, not one time point
            assert "changes over time" in svg and "months from the first dose" in svg and "at 24 months" not in svg
        elif method == "one_way":  # a tornado at each time point
            assert "When does each assumption matter" in svg and "at 12 months" in svg
        else:
            assert "at 24 months" in svg and (method != "sobol" or "over time" in svg)


def test_a_tornado_of_a_difference_marks_no_difference(label, tmp_path):
    two = {"two": {"regimen": {"max_cycles": 2}}}
    ds = one_way(label, ["nrm_rate"], [{"metric": "os_24_months", "strategy": "two", "minus": "base"}],
                 strategies=two, **SMALL)
    svg = plot_sensitivity(ds, tmp_path, fmt="svg")[0].read_text()
    for needle in ("no difference between the strategies", "baseline", "(pp)", "Two minus Label dosing",
                   parameter_label("nrm_rate").name):
        assert needle in svg, needle
