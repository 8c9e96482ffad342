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
    assert max(len(line) for line in text.splitlines() if " written to " not in line) <= 100  # paths as they are
    dose_groups = text.index("<= 3.3 mg/m²")
    assert text.index("all patients") > text.index("median OS ", dose_groups)  # all patients in a table of its own
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
    out = " ".join(capsys.readouterr().out.split())
    assert "No published column: " in out and why in out
    assert "pub." not in out  # no published column (its values could coincide with simulated ones)


@pytest.mark.parametrize(("config", "title"), [
    ("soc_inovate.yaml", "INO-VATE control arm: standard chemotherapy"),
    ("blinatumomab_tower.yaml", "TOWER blinatumomab arm"),
    ("brexucabtagene_zuma3.yaml", "ZUMA-3 phase 2: brexucabtagene autoleucel"),
])
def test_run_prints_the_pivotal_trials_figures_beside_the_published_ones(config, title, capsys):
    from conftest import CONFIGS

    assert main(["run", str(CONFIGS / config), "--patients", "3000"]) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 100  # a terminal's width
    out = " ".join(text.split())
    assert "in treatment" in out  # the pooled analysis' InO figures do not describe another treatment
    table = out[out.index(title):]
    assert "3,000 simulated patients" in table and "published" in table and "fitted: " in table
    assert "median OS" in table


def test_run_of_an_ino_scenario_prints_no_trial_table(capsys):
    from conftest import CONFIGS

    assert main(["run", str(CONFIGS / "label_dosing.yaml"), "--patients", "300"]) == 0
    assert "fitted: " not in capsys.readouterr().out


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
    assert max(len(line) for line in out.splitlines() if str(tmp_path) not in line) <= 100  # paths as they are
    words = " ".join(out.split())
    assert "MODEL STRUCTURES" in out and "Laplace evidence" in words and "NRM driver slope" in out
    for s in all_structures():
        assert out.count(s.id) == 2  # its weight and fit, and its NRM slope
    assert "posterior predictive check" in words and "primary targets inside" in words
    assert "remission-duration HR, > 3 vs <= 3 cycles" in out
    # a label too long for the room left wraps, whole: its numbers on its first line
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("median time to CR/CRi among responders"))
    more = [line.strip() for line in lines[i + 1:i + 4] if line.startswith("  ")]
    assert " ".join([lines[i].split("  ")[0], *more]) == ("median time to CR/CRi among responders (reported as "
                                                          "roughly 0.8 months in both groups) [le]")
    assert lines[i].split()[-1] in ("yes", "NO") and "months" in lines[i]
    assert code in (0, 1) and (tmp_path / "check.png").is_file()


def test_trial_prints_characteristics_and_writes_results(tmp_path, capsys):
    """One run prints the power and, from a null run of the same design, the type I error."""
    from designs import SELECTION, write_design

    path = write_design(tmp_path, SELECTION)
    out = tmp_path / "t.nc"
    assert main(["trial", str(path), "--out", str(out), "--trials", "12", "--null-trials", "30",
                 "--truth-patients", "3000", "--sizes", "60,120"]) == 0
    text = capsys.readouterr().out
    assert "power: primary test rejects (any arm)" in text and "type I error: primary test rejects (any arm)" in text
    assert "Type I error" in text.split("Operating characteristics")[0]  # in the verdict, beside the power
    assert "P(select low)" in text and "P(correct selection)" in text and "smallest size with power" in text
    ds = read_netcdf(out)
    assert ds.sizes["trial"] == 12 and "true_estimate" in ds and ds.attrs["null_trials"] == 30
    assert ds.attrs["type_one_error_lower"] <= ds.attrs["type_one_error"] <= ds.attrs["type_one_error_upper"]
    assert (tmp_path / "t_plots" / "selection.png").is_file()
    # a design that is itself a null run (null: true) prints its type I error, without a second run
    null = write_design(tmp_path, SELECTION, name="null.yaml", null=True)
    assert main(["trial", str(null), "--out", str(tmp_path / "n.nc"), "--trials", "12", "--truth-patients", "3000",
                 "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "type I error: primary test rejects (any arm)" in text and "power:" not in text
    assert "P(correct selection)" not in text  # under the null every arm is as good


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


def test_compare_by_segment_prints_writes_and_draws(tmp_path, capsys):
    """``inosim compare A.yaml B.yaml --by``: the segment sentence first, the table with each segment's size,
    the whole-population answer after it; the answers with a segment dimension in --out; the segment figure."""
    from conftest import CONFIGS

    from simulator.runtime.storage import write_netcdf
    from simulator.sensitivity.distributions import load_ensemble

    ens = write_netcdf(load_ensemble(None).isel(draw=slice(0, 400, 50))[["parameters"]], tmp_path / "ens.nc")
    files = [str(CONFIGS / f) for f in ("label_dosing.yaml", "two_cycles_then_stop.yaml")]
    out = tmp_path / "answers.nc"
    assert main(["compare", *files, "--patients", "30", "--metric", "os_24_months", "--ensemble", str(ens),
                 "--by", "age_55,salvage_line", "--by", "ph_positive", "--out", str(out),
                 "--plot-dir", str(tmp_path / "fig")]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("By patient segment, Two cycles, then stop vs label dosing, Overall survival at "
                               "24 months (KM): ")
    assert max(len(line) for line in lines if " written to " not in line) <= 100  # paths are as long as they are
    table = lines.index("Two cycles, then stop minus Label dosing, Overall survival at 24 months (KM) (pp):")
    assert lines[table + 1].split()[:3] == ["segment", "share", "patients"]
    rows = [line.split("  ")[1].strip() for line in lines[table + 2:table + 9]]
    assert rows == ["all patients", "age < 55", "age >= 55", "first salvage", "second salvage", "Ph-negative",
                    "Ph-positive"]
    assert text.index("By patient segment") < text.index("Two cycles, then stop vs label dosing, Overall survival")
    ds = read_netcdf(out)
    assert list(ds.segment.values)[0] == "all patients" and ds.sizes["segment"] == 7
    assert ds.fitted.dims == ("segment", "strategy", "metric") and float(ds.share.sel(segment="all patients")) == 1
    assert (tmp_path / "fig" / "segments_two_cycles_then_stop.png").exists()


@pytest.mark.parametrize(("flags", "needle"), [
    (["--by", "age_55,eligible"], "--by: no segment split 'eligible' (valid: age_<years> (e.g. age_55), "
                                  "salvage_line, transplant_eligible"),
    (["--by", "age_55", "--format", "csv"], "--by: applies to the answers over the ensemble"),
])
def test_compare_by_unknown_segment_is_one_line(flags, needle, capsys):
    from conftest import CONFIGS

    files = [str(CONFIGS / f) for f in ("label_dosing.yaml", "two_cycles_then_stop.yaml")]
    assert main(["compare", *files, *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


@pytest.mark.parametrize("name", ["cap_3p3.yaml", "README.md"])
def test_plot_on_a_file_that_is_not_netcdf_is_one_line_naming_it(tmp_path, capsys, name):
    from conftest import CONFIGS, ROOT

    path = CONFIGS / name if name.endswith(".yaml") else ROOT / name
    assert main(["plot", str(path), "--out-dir", str(tmp_path / "plots")]) == 2
    err = capsys.readouterr().err
    assert err == (f"inosim: {path}: not a results file of 'inosim sweep' (a netCDF file, not YAML or text); "
                   "make one with `inosim sweep EXPERIMENT.yaml --out results.nc`\n")
    assert not (tmp_path / "plots").exists()
