"""Experiment files, grid validation, common random numbers, resume, and the results file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
import yaml
from conftest import CONFIGS, write_experiment

from simulator import ConfigError, load_scenario, simulate
from simulator.analysis.outcomes import POOLED_ANALYSIS_PATIENTS
from simulator.cli import main
from simulator.runtime.storage import write_netcdf
from simulator.sweep import experiment as E
from simulator.sweep.experiment import (
    ChunkSpec,
    experiment_from_json,
    load_experiment,
    load_results,
    partial_dir,
    run_chunk,
    run_sweep,
    simulate_replicates,
)

REAL_RUN_CHUNK = run_chunk

COVARIATES = ("age", "salvage", "prior_hsct", "ph_positive", "marrow_blasts", "bilirubin_high",
              "transplant_eligible", "censor_day")
AXES = {"regimen.cumulative_cap": [1.8, 3.3, None], "regimen.max_cycles": [2, 6],
        "regimen.cycle1_doses": [[0.8, 0.5, 0.5], [0.6, 0.3, 0.3]]}


# ----------------------------------------------------------------------------- axes and validation
def test_axes_expand_to_a_grid_of_validated_scenarios(tmp_path):
    exp = load_experiment(write_experiment(tmp_path, AXES))
    assert exp.shape == (3, 2, 2) and exp.dims == ("cumulative_cap", "max_cycles", "cycle1_doses")
    assert exp.axes[0].labels == ("1.8", "3.3", "none") and exp.axes[2].labels == ("0.8/0.5/0.5", "0.6/0.3/0.3")
    # the reference is the base scenario's own value on every axis: label dosing
    assert exp.reference == (2, 1, 0)
    s = exp.scenario_at((1, 0, 1))
    assert (s.regimen.cumulative_cap, s.regimen.max_cycles, s.regimen.cycle1_doses) == (3.3, 2, [0.6, 0.3, 0.3])
    label = load_scenario(CONFIGS / "label_dosing.yaml")
    assert s.regimen.later_doses_in_cr == label.regimen.later_doses_in_cr  # the rest is the base's
    assert exp.scenario_at(exp.reference) == label


def test_strategy_axis_takes_files_and_override_sets(tmp_path):
    axes = {"strategy": {"label": str(CONFIGS / "label_dosing.yaml"),
                         "two_cycles": str(CONFIGS / "two_cycles_then_stop.yaml"),
                         "start_1p2": {"regimen": {"cycle1_doses": [0.6, 0.3, 0.3]}}}}
    exp = load_experiment(write_experiment(tmp_path, axes, reference={"strategy": "two_cycles"}))
    assert exp.axes[0].labels == ("label", "two_cycles", "start_1p2") and exp.reference == (1,)
    assert exp.scenario_at((1,)) == load_scenario(CONFIGS / "two_cycles_then_stop.yaml")
    assert exp.scenario_at((2,)).regimen.cycle1_doses == [0.6, 0.3, 0.3]


@pytest.mark.parametrize("written", ["parameters.overrides.nrm_rate", "parameters.nrm_rate"])
def test_a_model_parameter_is_an_axis_as_a_scenario_file_writes_it(tmp_path, written):
    exp = load_experiment(write_experiment(tmp_path, {written: [0.01, 0.05]},
                                           reference={written: 0.05}))
    # one canonical form whichever way it was written: the resolved scenario's key path
    assert exp.dims == ("nrm_rate",) and exp.axes[0].key == "parameters.nrm_rate" and exp.reference == (1,)
    low, high = exp.scenario_at((0,)), exp.scenario_at((1,))
    label = load_scenario(CONFIGS / "label_dosing.yaml")
    assert (low.parameters.nrm_rate, high.parameters.nrm_rate) == (0.01, 0.05)
    assert low.parameters.model_copy(update={"nrm_rate": label.parameters.nrm_rate}) == label.parameters


def test_a_strategy_overrides_parameters_as_a_scenario_file_does(tmp_path):
    values = yaml.safe_load((CONFIGS / "parameters" / "default.yaml").read_text())
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({**values, "nrm_shape": 0.4}))
    axes = {"strategy": {"label": {},
                         "low_nrm": {"parameters": {"overrides": {"nrm_rate": 0.01}}},
                         "other_file": {"parameters": {"file": "other.yaml", "overrides": {"nrm_rate": 0.02}}}}}
    exp = load_experiment(write_experiment(tmp_path, axes))
    label = load_scenario(CONFIGS / "label_dosing.yaml").parameters
    same, low, other_file = (exp.scenario_at((i,)).parameters for i in range(3))
    assert same == label
    assert low == label.model_copy(update={"nrm_rate": 0.01})
    assert other_file == label.model_copy(update={"nrm_rate": 0.02, "nrm_shape": 0.4})
    # the stored override set is the canonical one: values, no file or overrides keys
    assert exp.axes[0].overrides[1] == {"parameters": {**label.model_dump(), "nrm_rate": 0.01}}


def test_documented_parameter_axes_run_and_differ_only_where_they_should(tmp_path):
    """A sweep over parameters.overrides.X equals the strategy form, point by point (same patients)."""
    axis = load_experiment(write_experiment(tmp_path, {"parameters.overrides.sos_fatal_prob": [0.0, 0.3]},
                                            name="a.yaml", replicates=2, patients=40))
    strategies = load_experiment(write_experiment(
        tmp_path, {"strategy": {f"p{v}": {"parameters": {"overrides": {"sos_fatal_prob": v}}} for v in (0.0, 0.3)}},
        name="b.yaml", replicates=2, patients=40))
    a, b = run_sweep(axis), run_sweep(strategies)
    for metric in ("cr_cri", "post_hsct_nrm", "os_24_months"):
        np.testing.assert_array_equal(a[metric].values, b[metric].values)


def test_sizes_from_the_command_line_override_the_file(tmp_path):
    exp = load_experiment(write_experiment(tmp_path, AXES), replicates=3, patients=7, seed=9)
    assert (exp.replicates, exp.patients, exp.seed) == (3, 7, 9)


@pytest.mark.parametrize(("axes", "keys", "expected"), [
    ({"regimen.max_cycle": [1, 2]}, {},
     "axes.regimen.max_cycle: unknown key path ('max_cycle' is not a key of regimen)"),
    ({"regiment.max_cycles": [1, 2]}, {}, "axes.regiment.max_cycles: unknown key path"),
    ({"regimen.max_cycles.x": [1]}, {}, "axes.regimen.max_cycles.x: unknown key path"),
    ({"regimen.max_cycles": [1, 0]}, {}, "regimen.max_cycles: input should be greater than or equal to 1, got 0"),
    ({"regimen.max_cycles": [2, "six"]}, {}, "regimen.max_cycles: input should be a valid integer, got 'six'"),
    ({"regimen.cumulative_cap": [3.3, -1]}, {}, "regimen.cumulative_cap:"),
    ({"regimen.cycle1_doses": [[0.8, 0.5]]}, {}, "regimen: cycle1: 2 doses but 3 days"),
    ({"regimen.max_cycles": []}, {}, "axes.regimen.max_cycles: expected a non-empty list"),
    ({"regimen.max_cycles": [2, 2]}, {}, "axes.regimen.max_cycles: values must differ"),
    ({"simulation.patients": [10, 20]}, {}, "axes.simulation.patients: set by the experiment's 'patients'"),
    ({"strategy": {"x": {"regimen": {"max_cycle": 2}}}}, {}, "axes.strategy.x: regimen.max_cycle: unknown key"),
    ({"strategy": ["a", "b"]}, {}, "axes.strategy: expected a mapping"),
    ({"parameters.overrides.nrm_rat": [0.1, 0.2]}, {},
     "axes.parameters.overrides.nrm_rat: unknown key path ('nrm_rat' is not a key of parameters)"),
    ({"parameters.overrides.nrm_rate": [0.1], "parameters.nrm_rate": [0.2]}, {},
     "axes.parameters.nrm_rate: the same key as axes.parameters.overrides.nrm_rate"),
    ({"parameters.overrides.nrm_rate": [0.1, -1.0]}, {}, "parameters.nrm_rate: input should be greater than"),
    ({"strategy": {"x": {"parameters": {"overrides": {"nrm_rat": 0.1}}}}}, {},
     "axes.strategy.x: parameters.overrides.nrm_rat: unknown parameter"),
    ({"strategy": {"x": {"parameters": {"override": {"nrm_rate": 0.1}}}}}, {},
     "axes.strategy.x: parameters.override: unknown key"),
    ({"regimen.max_cycles": [2, 6]}, {"reference": {"regimen.max_cycles": 3}},
     "reference.regimen.max_cycles: 3 is not one of the axis' values"),
    ({"regimen.max_cycles": [2, 6]}, {"reference": {"regimen.hsct_cycles": 2}},
     "reference.regimen.hsct_cycles: not an axis"),
    ({"regimen.max_cycles": [2, 6]}, {"replicates": 1}, "replicates: input should be greater than or equal to 2"),
    ({"regimen.max_cycles": [2, 6]}, {"sweep": 1}, "sweep: unknown key"),
])
def test_bad_experiments_give_one_line_naming_file_and_key_path(tmp_path, axes, keys, expected):
    path = write_experiment(tmp_path, axes, **keys)
    with pytest.raises(ConfigError) as exc:
        load_experiment(path)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(path)) and expected in msg, msg


def test_a_bad_grid_point_names_itself(tmp_path):
    path = write_experiment(tmp_path, {"regimen.max_cycles": [2, 6], "regimen.later_days": [[1, 8, 15], [1, 8]]})
    with pytest.raises(ConfigError, match=r"later_in_cr: 3 doses but 2 days \(grid point max_cycles=2, "
                                          r"later_days=1/8\)"):
        load_experiment(path)


def test_cli_refuses_a_bad_last_grid_point_before_any_work(tmp_path, capsys):
    path = write_experiment(tmp_path, {"regimen.max_cycles": [1, 2, 3, 4, 13]})
    out = tmp_path / "r.nc"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "regimen.max_cycles" in err and "Traceback" not in err
    assert not out.exists() and not partial_dir(out).exists()


@pytest.mark.parametrize("name", ["dose_cutoff_sweep", "hsct_bound_cycles", "compare_strategies"])
def test_shipped_experiments_load(name):
    exp = load_experiment(CONFIGS.parent / "experiments" / f"{name}.yaml")
    assert exp.name == name and exp.patients == POOLED_ANALYSIS_PATIENTS


def test_shipped_dose_sweep_is_about_six_million_patients():
    exp = load_experiment(CONFIGS.parent / "experiments" / "dose_cutoff_sweep.yaml")
    assert exp.dims == ("cumulative_cap", "max_cycles", "cycle1_doses")
    assert 5.5e6 < np.prod(exp.shape) * exp.replicates * exp.patients < 6.5e6


# ----------------------------------------------------------------------------- common random numbers
def test_replicate_r_holds_the_same_patients_at_every_grid_point(tmp_path):
    exp = load_experiment(write_experiment(tmp_path, AXES))
    records = [simulate_replicates(exp.scenario_at(i), exp.seed, exp.patients, 0, exp.replicates)
               for i in ((0, 0, 0), (2, 1, 1), exp.reference)]
    for name in COVARIATES:
        assert np.array_equal(records[0][name], records[1][name]) and np.array_equal(records[0][name], records[2][name])
    # and the strategies do differ
    assert not np.array_equal(records[0]["cumulative_dose"], records[2]["cumulative_dose"])
    # replicate r is patients r*N .. (r+1)*N-1 of an ordinary simulation, variable for variable
    ds = simulate(exp.scenario_at((0, 0, 0)), n_patients=exp.replicates * exp.patients, seed=exp.seed)
    assert list(records[0]) == list(ds.data_vars)
    for name, column in records[0].items():
        assert np.array_equal(column, ds[name].values, equal_nan=True), name


def test_chunks_do_not_depend_on_how_replicates_are_blocked(label):
    whole = run_chunk(ChunkSpec((0,), label, 4, 50, 0, 6))
    parts = [run_chunk(ChunkSpec((0,), label, 4, 50, first, 3)) for first in (0, 3)]
    xr.testing.assert_identical(whole.drop_attrs(), xr.concat(parts, "replicate").drop_attrs())


# ----------------------------------------------------------------------------- results, resume, round trip
def _interrupt_at(index: tuple[int, ...]):
    """A run_chunk that is interrupted (as by Ctrl-C) at one grid point."""
    def run(spec: ChunkSpec) -> xr.Dataset:
        if spec.index == index:
            raise KeyboardInterrupt
        return REAL_RUN_CHUNK(spec)
    return run


def test_results_dataset_contract(small_sweep):
    ds = small_sweep
    dims = ("cumulative_cap", "cycle1_doses")
    for name in ("cr_cri", "mrd_negative", "hsct", "sos_any", "sos_grade34", "post_hsct_sos_any",
                 "post_hsct_nrm", "grade3plus_ae", "discontinued_for_ae", "pfs_median_months",
                 "os_median_months", "os_12_months", "os_24_months", "os_rmst_24_months", "deaths_progression",
                 "deaths_nrm_post_hsct", "deaths_toxicity", "deaths_other_progression_free",
                 "deaths_other_after_progression", "cumulative_dose_mean_mg_m2",
                 "cumulative_dose_median_mg_m2"):
        assert ds[name].dims == (*dims, "replicate") and "units" in ds[name].attrs, name
    assert ds.os_curve.dims == (*dims, "replicate", "month")
    assert ds.pooled_estimate.dims == ("metric", *dims)
    assert ds.cr_cri.attrs["units"] == "1" and ds.os_median_months.attrs["units"] == "months"
    assert ds.attrs["seed"] == 11 and ds.attrs["replicates"] == 12 and ds.attrs["patients_per_replicate"] == 80
    assert ds.attrs["inosim_version"] and json.loads(ds.attrs["experiment"])["name"] == "test_experiment"
    assert ds.cumulative_cap.attrs["key_path"] == "regimen.cumulative_cap"
    assert float(ds.cumulative_dose_mean_mg_m2.sel(cumulative_cap=1.8).max()) <= 1.8 + 1e-9


def test_numeric_axes_hold_numbers_and_list_axes_labels_with_their_total(small_sweep):
    ds = small_sweep
    assert ds.cumulative_cap.dtype == float and list(ds.cumulative_cap.values) == [1.8, 3.3, np.inf]
    assert ds.cumulative_cap.attrs["units"] == "mg/m²" and "no cap" in ds.cumulative_cap.attrs["inf_means"]
    assert list(ds.cumulative_cap_label.values) == ["1.8", "3.3", "none"]
    assert list(ds.cycle1_doses.values) == ["0.8/0.5/0.5", "0.6/0.3/0.3"]
    np.testing.assert_allclose(ds.cycle1_doses_total.values, [1.8, 1.2])
    # sel with numbers, inf for no cap, labels for lists
    a = ds.pooled_estimate.sel(metric="hsct", cumulative_cap=3.3, cycle1_doses="0.6/0.3/0.3")
    b = ds.pooled_estimate.sel(metric="hsct").isel(cumulative_cap=1, cycle1_doses=1)
    assert float(a) == float(b)
    assert ds.sel(cumulative_cap=np.inf).sizes["cycle1_doses"] == 2
    # a tidy table with numeric index levels
    frame = ds.pooled_estimate.sel(metric="cr_cri").to_dataframe()
    assert frame.index.names == ["cumulative_cap", "cycle1_doses"] and len(frame) == 6
    assert frame.loc[(3.3, "0.8/0.5/0.5"), "pooled_estimate"] == pytest.approx(float(
        ds.pooled_estimate.sel(metric="cr_cri", cumulative_cap=3.3, cycle1_doses="0.8/0.5/0.5")))
    assert frame.loc[(3.3, "0.6/0.3/0.3"), "cycle1_doses_total"] == pytest.approx(1.2)
    # ds.plot: lines over a numeric axis; a 2-D plot over the labels (inf is not a position)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cr = ds.pooled_estimate.sel(metric="cr_cri")
    cr.plot.line(x="cumulative_cap", hue="cycle1_doses")
    cr.swap_dims(cumulative_cap="cumulative_cap_label").plot()
    plt.close("all")


def test_integer_axis_is_stored_as_integers(tmp_path):
    ds = run_sweep(load_experiment(write_experiment(tmp_path, {"regimen.max_cycles": [1, 2, 6]},
                                                    replicates=2, patients=20)))
    assert ds.max_cycles.dtype.kind == "i" and ds.sel(max_cycles=2).sizes["replicate"] == 2
    assert "max_cycles_label" not in ds.coords and ds.max_cycles.attrs["long_name"] == "Maximum cycles"


def test_pooled_estimate_is_the_rate_of_all_patients_of_the_grid_point(small_sweep):
    """With equal trial sizes the mean of per-trial rates is the rate over all of them."""
    exp = experiment_from_json(small_sweep.attrs["experiment"], "x")
    ds = simulate(exp.scenario_at((1, 0)), n_patients=exp.replicates * exp.patients, seed=exp.seed)
    est = small_sweep.pooled_estimate.sel(metric="cr_cri", cumulative_cap=3.3, cycle1_doses="0.8/0.5/0.5")
    assert float(est) == pytest.approx(float(ds.best_response.mean()), abs=1e-12)


def test_pooled_interval_covers_a_large_independent_estimate(label):
    """MC check, fixed seeds: the pooled CR/CRi rate lies within 4 combined standard errors
    of an independent 200,000-patient estimate (a failure rate below 1e-4 if correct)."""
    from simulator.sweep.experiment import assemble

    spec = ChunkSpec((), label, 17, 338, 0, 100)
    ds = assemble(E.Experiment("t", "", "t", label.model_dump(), (), (), 100, 338, 17), [(spec, run_chunk(spec))])
    est, lo, hi = (float(ds[f"pooled_{s}"].sel(metric="cr_cri")) for s in ("estimate", "lower", "upper"))
    big = simulate(label, n_patients=200_000, seed=99).best_response.values.mean()
    se_pooled = (hi - lo) / 2 / 1.984  # t(0.975, 99)
    se_big = np.sqrt(big * (1 - big) / 200_000)
    assert abs(est - big) < 4 * np.hypot(se_pooled, se_big)
    # and the interval width is the binomial one for 33,800 patients, within 20%
    assert se_pooled == pytest.approx(np.sqrt(big * (1 - big) / 33_800), rel=0.2)


def test_netcdf_round_trip(small_sweep, tmp_path):
    ds = small_sweep
    path = write_netcdf(ds, tmp_path / "again.nc")
    back = load_results(path)
    xr.testing.assert_identical(back, ds)
    exp = experiment_from_json(back.attrs["experiment"], path)
    assert exp.fingerprint() == experiment_from_json(ds.attrs["experiment"], "elsewhere").fingerprint()


def test_interrupted_sweep_resumes_bit_identical(tmp_path, monkeypatch):
    path = write_experiment(tmp_path, AXES, replicates=4, patients=40)
    exp = load_experiment(path)
    whole = run_sweep(exp, tmp_path / "whole.nc")
    monkeypatch.setattr(E, "run_chunk", _interrupt_at((1, 0, 0)))  # the 5th of 12 grid points
    out = tmp_path / "resumed.nc"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(exp, out)
    assert not out.exists() and len(list(partial_dir(out).glob("chunk-*.npz"))) == 4
    calls = []
    monkeypatch.setattr(E, "run_chunk", lambda spec: calls.append(spec.index) or REAL_RUN_CHUNK(spec))
    resumed = run_sweep(exp, out, resume=True)
    assert len(calls) == 12 - 4  # the finished chunks are not redone
    xr.testing.assert_identical(resumed, whole)
    assert out.read_bytes() == (tmp_path / "whole.nc").read_bytes()
    assert not partial_dir(out).exists()


def test_resume_with_another_chunk_size_reuses_only_the_same_blocks(tmp_path, monkeypatch):
    exp = load_experiment(write_experiment(tmp_path, {"regimen.max_cycles": [2, 6]}, replicates=6, patients=30))
    out = tmp_path / "r.nc"
    monkeypatch.setattr(E, "run_chunk", _interrupt_at((1,)))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(exp, out, replicates_per_chunk=4)  # grid point 0 finished: replicates 0-3 and 4-5
    calls = []
    monkeypatch.setattr(E, "run_chunk", lambda spec: calls.append((spec.index, spec.first_replicate)) or
                        REAL_RUN_CHUNK(spec))
    resumed = run_sweep(exp, out, resume=True, replicates_per_chunk=2)
    assert calls == [((0,), 0), ((0,), 2), ((1,), 0), ((1,), 2), ((1,), 4)]  # block 4-5 of point 0 reused
    xr.testing.assert_identical(resumed, run_sweep(exp))
    assert not partial_dir(out).exists()


def test_resume_refuses_chunks_of_another_experiment(tmp_path, monkeypatch):
    path = write_experiment(tmp_path, AXES, replicates=3, patients=30)
    out = tmp_path / "r.nc"
    monkeypatch.setattr(E, "run_chunk", _interrupt_at((1, 0, 0)))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(load_experiment(path), out)
    with pytest.raises(ConfigError, match="different experiment"):
        run_sweep(load_experiment(path, seed=12), out, resume=True)
    monkeypatch.undo()
    run_sweep(load_experiment(path, seed=12), out)  # without --resume: starts over
    assert out.exists() and not partial_dir(out).exists()


def test_cli_sweep_interrupt_then_resume(tmp_path, monkeypatch, capsys):
    path = write_experiment(tmp_path, {"regimen.max_cycles": [1, 2, 6]}, replicates=3, patients=30)
    out = tmp_path / "r.nc"
    monkeypatch.setattr(E, "run_chunk", _interrupt_at((2,)))
    assert main(["sweep", str(path), "--out", str(out)]) == 130
    assert "--resume" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["sweep", str(path), "--out", str(out), "--resume"]) == 0
    text = capsys.readouterr().out
    assert "3 grid points" in " ".join(text.split()) and "less variance" in " ".join(text.split())  # wrapped
    assert load_results(out).sizes["max_cycles"] == 3
    assert [line.split()[0] for line in text.splitlines() if line.startswith(("1 ", "2 ", "6 "))] == ["1", "2", "6"]


def test_cli_sweep_fits_a_terminal_and_gives_every_metric_as_csv_or_json(tmp_path, capsys):
    """The screen: the headline metrics at each grid point, within 100 columns, saying where the rest is;
    --format csv|json: every metric at every grid point with its CI, alone on stdout."""
    import io

    import pandas as pd

    path = write_experiment(tmp_path, {"regimen.cumulative_cap": [1.8, None], "regimen.max_cycles": [2, 6],
                                       "regimen.cycle1_doses": [[0.8, 0.5, 0.5], [0.6, 0.3, 0.3]]},
                            replicates=3, patients=30)
    out = tmp_path / "r.nc"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines() if str(tmp_path) not in line) <= 100  # paths as they are
    head = next(line for line in text.splitlines() if line.startswith("cumulative_cap"))
    assert head.split() == ["cumulative_cap", "max_cycles", "cycle1_doses", "CR/CRi", "HSCT", "NRM", "SOS/VOD",
                            "med.", "OS", "OS", "24m", "RMST", "24m"]
    assert "1.8             2           0.6/0.3/0.3" in text  # a grid point, value by value
    words = " ".join(text.split())
    assert "NRM: non-relapse mortality after HSCT, +-" in words and "--format csv|json" in words
    ds = load_results(out)
    for fmt in ("csv", "json"):
        assert main(["sweep", str(path), "--out", str(out), "--format", fmt]) == 0
        captured = capsys.readouterr()
        assert "grid points" in captured.err and "grid points" not in captured.out
        if fmt == "csv":
            frame = pd.read_csv(io.StringIO(captured.out), dtype={"cumulative_cap": str, "max_cycles": str})
        else:
            frame = pd.DataFrame(json.loads(captured.out)["pooled"]).astype({"max_cycles": str})
        assert len(frame) == 8 * ds.sizes["metric"] and set(frame.metric) == set(map(str, ds.metric.values))
        row = frame[(frame.metric == "hsct") & (frame.cumulative_cap == "none") & (frame.max_cycles == "2")
                    & (frame.cycle1_doses == "0.6/0.3/0.3")].iloc[0]
        cell = ds.sel(metric="hsct", cumulative_cap=np.inf, max_cycles=2, cycle1_doses="0.6/0.3/0.3")
        assert row.unit == "%" and row.estimate == pytest.approx(100 * float(cell.pooled_estimate))
        assert row.lower == pytest.approx(100 * float(cell.pooled_lower))
