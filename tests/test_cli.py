"""The ``inosim run`` command: the table, the file, and interruption safety."""

from __future__ import annotations

import pytest

from simulator.cli import main
from simulator.runtime.storage import read_netcdf


def test_run_prints_table_and_writes_file(tmp_path, capsys):
    out = tmp_path / "res.nc"
    assert main(["run", "--patients", "2000", "--seed", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("CR/CRi rate", "<= 3.3 mg/m²", "> 3.3 mg/m²", "all patients", "simulated (95% CI)",
                   "pub.", "months", "mg/m²"):
        assert needle in text
    ds = read_netcdf(out)
    assert ds.sizes["patient"] == 2000 and ds.attrs["seed"] == 4
    assert ds.attrs["scenario_name"] == "pooled_analysis"
    assert list(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize(("args", "why"), [
    (["configs/label_dosing.yaml"], "differs from the pooled analysis (pooled_analysis.yaml) in cohorts"),
    (["configs/cap_3p3.yaml"], "in regimen and cohorts"),
    (["--cutoff", "2.7"], "grouped patients at 3.3 mg/m², this run at 2.7 mg/m²"),
])
def test_run_shows_the_published_column_only_where_comparable(args, why, capsys):
    from conftest import ROOT

    args = [str(ROOT / a) if a.endswith(".yaml") else a for a in args]
    assert main(["run", *args, "--patients", "300"]) == 0
    out = capsys.readouterr().out
    assert "No published column: " in out and why in out
    assert "pub." not in out  # no published column (its values could coincide with simulated ones)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    from simulator.sweep import records

    def interrupted(*args, **kwargs):  # the records file is open, not yet complete
        assert len(list(tmp_path.iterdir())) == 1
        raise KeyboardInterrupt

    monkeypatch.setattr(records, "simulate", interrupted)
    out = tmp_path / "res.nc"
    assert main(["run", "--patients", "100", "--out", str(out)]) == 130
    assert list(tmp_path.iterdir()) == []


def test_version(capsys):
    from simulator import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"inosim {__version__}\n"


@pytest.mark.parametrize("args", [["run", "--patients", "0"], ["run", "--seed", "-1"],
                                  ["bench", "--repeats", "0"]])
def test_bad_flags_exit_2(args):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2


def test_unwritable_output_is_one_line_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "--patients", "100", "--out", str(blocker / "x.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("inosim: ") and err.count("\n") == 0


def test_compare_refuses_two_results_files(tmp_path, capsys):
    a, b = tmp_path / "a.nc", tmp_path / "b.nc"
    assert main(["compare", str(a), str(b)]) == 2
    assert "one results file" in capsys.readouterr().err


def test_calibrate_check_reports_every_structure_and_the_combined_ensemble(tmp_path, capsys):
    from simulator.model.structure import all_structures

    code = main(["calibrate", "--check", "--patients", "50000", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "MODEL STRUCTURES" in out and "Laplace evidence" in out
    for s in all_structures():
        assert s.id in out
    assert "posterior predictive check" in out and "primary targets inside" in out
    assert "remission-duration HR, > 3 vs <= 3 cycles" in out
    assert code in (0, 1) and (tmp_path / "check.png").is_file()


def test_trial_prints_characteristics_and_writes_results(tmp_path, capsys):
    from designs import SELECTION, write_design

    path = write_design(tmp_path, SELECTION)
    out = tmp_path / "t.nc"
    assert main(["trial", str(path), "--out", str(out), "--trials", "12", "--truth-patients", "3000",
                 "--null", "--sizes", "60,120"]) == 0
    text = capsys.readouterr().out
    assert "type I error: primary test rejects (any arm)" in text and "P(select low)" in text
    assert "P(correct selection)" not in text  # under the null every arm is as good
    assert "smallest size with power" in text
    ds = read_netcdf(out)
    assert ds.sizes["trial"] == 12 and "true_estimate" in ds
    assert (tmp_path / "t_plots" / "selection.png").is_file()


def test_trial_over_draws_prints_assurance_by_driver_and_evsi_beside_evpi(tmp_path, capsys):
    """``--ensemble FILE``: each draw of a (small) ensemble with structures runs its own trials."""
    import numpy as np
    import xarray as xr
    from designs import STRATEGIES, write_design

    from simulator.model import kernel as K
    from simulator.model.config import default_config_dir
    from simulator.model.files import load_parameters

    base = load_parameters(default_config_dir() / "parameters" / "default.yaml")
    rows = np.array([[getattr(base, n) for n in K.PARAMETER_NAMES]] * 4)
    j = K.PARAMETER_NAMES.index("nrm_cumulative_dose_slope")
    rows[:, j] = [0.0, 0.3, 0.0, 0.6]
    ens = xr.Dataset({"parameters": (("draw", "parameter"), rows)},
                     coords={"parameter": list(K.PARAMETER_NAMES), "draw": np.arange(4), "draw_structure": (
                         "draw", ["time_to_hsct-effect-none", "cumulative_dose-effect-none"] * 2)})
    ens.to_netcdf(tmp_path / "ens.nc")
    path = write_design(tmp_path, STRATEGIES)
    out = tmp_path / "a.nc"
    assert main(["trial", str(path), "--out", str(out), "--ensemble", str(tmp_path / "ens.nc"), "--trials", "4",
                 "--sizes", "120"]) == 0
    text = capsys.readouterr().out
    first = next(line for line in text.splitlines() if line.startswith("Assurance "))
    assert "95% MC CI" in first and text.index("Assurance ") < text.index("Over the draws")
    for needle in ("power if NRM ~ cumulative dose", "power over draws, 50% quantile", "share of draws with power",
                   "true benefit over draws", "P(success and true benefit >=", "assurance at 120 patients",
                   "P(the result points to the true NRM driver)", "EVSI", "EVPI"):
        assert needle in text, needle
    assert max(len(line) for line in text.splitlines()) <= 100
    ds = read_netcdf(out)
    assert ds.sizes["draw"] == 4 and ds.sizes["trial"] == 4 and "evsi" in ds and "figure_estimate" in ds
    assert list(ds.power_by_structure.structure_id.values) == ["cumulative_dose-effect-none", "time_to_hsct-effect-none"]
    assert list(ds.nrm_driver.values) == ["time_to_hsct", "cumulative_dose"] * 2


def test_trial_over_hazard_ratio_prior(tmp_path, capsys):
    from designs import RPACT, write_design

    arms = [RPACT["arms"][0], {**RPACT["arms"][1], "log_hazard_ratio": {"mean": -0.36, "sd": 0.2}}]
    path = write_design(tmp_path, {**RPACT, "arms": arms, "assurance": {"draws": 20, "trials_per_draw": 10}})
    out = tmp_path / "a.nc"
    assert main(["trial", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "over 20 draws of the arms' normal priors on the log hazard ratio" in " ".join(text.split())
    assert "Assurance " in text
    assert read_netcdf(out).log_hr.sel(arm="experimental").std() > 0.1


def test_trial_bad_design_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("trial: {name: x}\n")
    assert main(["trial", str(path), "--out", str(tmp_path / "t.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"inosim: {path}: trial.arms: required key missing") and "\n" not in err
    assert not (tmp_path / "t.nc").exists()


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n"])
def test_an_empty_scenario_file_is_named_as_empty(tmp_path, capsys, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    assert main(["run", str(path), "--patients", "10"]) == 2
    err = capsys.readouterr().err
    assert err == f"inosim: {path}: the file is empty (expected a mapping of keys)\n"


def test_trial_on_a_scenario_file_names_the_command_that_runs_it(tmp_path, capsys):
    from conftest import CONFIGS

    path = CONFIGS / "cap_3p3.yaml"
    assert main(["trial", str(path), "--out", str(tmp_path / "t.nc")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"inosim: {path}: a scenario file, not a trial design") and err.count("\n") == 1
    assert err.endswith(f"run a scenario with `inosim run {path}`\n")
    assert not (tmp_path / "t.nc").exists()
