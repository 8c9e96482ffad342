"""Paired differences, the CRN variance saving, and the observational vs causal dose contrast."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import CONFIGS, write_experiment

from simulator.cli import main
from simulator.runtime.storage import write_netcdf
from simulator.sensitivity.distributions import load_ensemble
from simulator.sweep.compare import (
    CONTRAST_COLUMNS,
    HEADLINE_METRICS,
    MONTE_CARLO,
    IntervalKind,
    capped,
    dose_contrast,
    paired_differences,
)
from simulator.sweep.experiment import load_experiment, run_sweep, simulate_replicates
from simulator.sweep.report import CompareView, compare_report, crn_saving_summary, differences_frame

ABOVE_ANY_DOSE = 50.0  # mg/m2: 6 cycles of at most 1.8 mg/m2 cannot reach it


def test_a_cap_above_any_possible_dose_changes_nothing(tmp_path):
    """The causal contrast of a cap that can never bind is exactly zero, metric by metric."""
    exp = load_experiment(write_experiment(tmp_path, {"regimen.cumulative_cap": [None, ABOVE_ANY_DOSE]}))
    diffs = paired_differences(run_sweep(exp)).sel(cumulative_cap=ABOVE_ANY_DOSE)
    for stat in ("estimate", "lower", "upper"):
        values = diffs[stat].values
        assert np.all((values == 0) | np.isnan(diffs.reference_value.values)), stat
    assert np.isnan(diffs.crn_variance_saving).all()  # identical trials: nothing to save

    c = dose_contrast(exp.scenario_at((0,)), ABOVE_ANY_DOSE, seed=exp.seed, patients=exp.patients,
                      replicates=exp.replicates)
    everyone = c.estimate.sel(column="everyone_capped")
    assert np.all((everyone == 0) | np.isnan(c.estimate.sel(column="all")))
    assert c.attrs["share_gt"][0] == 0 and np.isnan(c.estimate.sel(column="gt")).all()


def test_the_cap_leaves_patients_at_or_below_it_untouched(label):
    """Same draws, same course: a patient whose label dose stayed <= 3.3 has the same record when capped."""
    a = simulate_replicates(label, 3, 100, 0, 20)
    b = simulate_replicates(capped(label, 3.3), 3, 100, 0, 20)
    low = a["cumulative_dose"] <= 3.3 + 1e-9
    assert 0.3 < low.mean() < 0.95
    for name in a:
        assert np.array_equal(a[name][low], b[name][low], equal_nan=True), name
    assert (b["cumulative_dose"][~low] <= 3.3 + 1e-9).all()


@pytest.fixture(scope="module")
def contrast(label):
    return dose_contrast(label, 3.3, seed=8, patients=120, replicates=30)


def test_observational_contrast_is_dose_plus_selection(contrast):
    obs, dose, sel = (contrast.estimate.sel(column=c) for c in ("observational", "dose", "selection"))
    np.testing.assert_allclose(obs, dose + sel, atol=1e-12)
    assert set(CONTRAST_COLUMNS) <= set(map(str, contrast.column.values))
    # the published direction: the > 3.3 group received far more drug
    assert float(contrast.estimate.sel(metric="cumulative_dose_mean_mg_m2", column="observational")) < -1.0


def test_everyone_capped_equals_the_sweep_grid_point(tmp_path):
    """The key table's capped arm is the sweep's cap = 3.3 grid point: the same patients."""
    exp = load_experiment(write_experiment(tmp_path, {"regimen.cumulative_cap": [3.3, None]}))
    ds = run_sweep(exp)
    c = dose_contrast(exp.scenario_at(exp.reference), 3.3, seed=exp.seed, patients=exp.patients,
                      replicates=exp.replicates)
    for col, cap in (("all_capped", 3.3), ("all", np.inf)):
        np.testing.assert_allclose(c.estimate.sel(column=col), ds.pooled_estimate.sel(cumulative_cap=cap),
                                   rtol=1e-12, equal_nan=True)


def test_paired_differences_by_hand(small_sweep):
    diffs = paired_differences(small_sweep, {"cumulative_cap": np.inf, "cycle1_doses": "0.8/0.5/0.5"})
    assert diffs.attrs["reference"] == paired_differences(small_sweep, {"cumulative_cap": "none"}).attrs["reference"]
    a = small_sweep.hsct.sel(cumulative_cap=3.3, cycle1_doses="0.6/0.3/0.3").values
    b = small_sweep.hsct.sel(cumulative_cap=np.inf, cycle1_doses="0.8/0.5/0.5").values
    cell = diffs.sel(metric="hsct", cumulative_cap=3.3, cycle1_doses="0.6/0.3/0.3")
    assert float(cell.estimate) == pytest.approx(np.mean(a - b), abs=1e-15)
    half = 2.200985160082949 * np.std(a - b, ddof=1) / np.sqrt(12)  # t(0.975, 11)
    assert float(cell.upper - cell.lower) == pytest.approx(2 * half)
    saving = 1 - np.var(a - b, ddof=1) / (np.var(a, ddof=1) + np.var(b, ddof=1))
    assert float(cell.crn_variance_saving) == pytest.approx(saving)


def test_common_random_numbers_save_variance(label):
    """With the same patients in both arms the paired difference in CR/CRi between a 3.3 cap
    and label dosing varies far less than with independent patients. Under independence the
    saving would be about 0 with a standard error of about 0.18 at 60 replicates, so 0.5 is
    more than 2.7 standard errors away; with CRN it is near 1 (few patients change)."""
    trials, patients = 60, 100

    def cr(scenario, seed):
        records = simulate_replicates(scenario, seed, patients, 0, trials)
        return records["best_response"].reshape(trials, patients).mean(axis=1)

    a, b, b_independent = cr(label, 1), cr(capped(label, 3.3), 1), cr(capped(label, 3.3), 2)
    saving = 1 - np.var(a - b, ddof=1) / (np.var(a, ddof=1) + np.var(b, ddof=1))
    independent = 1 - np.var(a - b_independent, ddof=1) / (np.var(a, ddof=1) + np.var(b_independent, ddof=1))
    assert saving > 0.5 and abs(independent) < 0.5


def test_cli_compare_leads_with_a_summary(small_sweep, tmp_path, capsys):
    path = write_netcdf(small_sweep, tmp_path / "r.nc")
    assert main(["compare", str(path), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100  # a terminal's width
    first = " ".join(out.split("\n\n")[0].split())  # the first paragraph
    assert "Monte Carlo" in first and "not uncertainty in the model's parameters or structure" in first
    words = " ".join(out.split())
    for needle in ("less variance", "best", "worst", "CR/CRi rate (%; reference", "difference in pp",
                   "median OS (months; reference", "Observational vs causal contrast at 3.3 mg/m²", "selection",
                   "observed: <=3.3 minus >3.3", "dose share = dose / observed", "--at AXIS=VALUE"):
        assert needle in words, needle
    assert "Paired differences" not in out and "MRD negativity" not in out  # headline metrics, no full tables
    assert "months/months" not in out and "%/pp" in out  # a unit column of values and differences
    lines = out.splitlines()
    for column in ("everyone capped", "selection"):  # the dose contrast in two tables, a row per metric each
        head = next(i for i, line in enumerate(lines) if line.startswith("metric") and column in line)
        rows = lines[head + 2:lines.index("", head)]  # below the two header lines
        assert [r.split("  ")[0].rstrip(" *") for r in rows] == [
            "CR/CRi rate", "proceeded to HSCT", "non-relapse mortality after HSCT", "SOS/VOD at any time",
            "median OS", "overall survival at 24 months (KM)", "restricted mean OS to 24 months"]
    # best for CR/CRi is listed above worst; a lower NRM is the better one
    cr = out[out.index("CR/CRi rate (%"):out.index("proceeded to HSCT (%")]
    best, worst = (float(line.split()[1]) for line in cr.splitlines() if line.strip().startswith(("best", "worst")))
    assert best > worst
    nrm = out[out.index("non-relapse mortality after HSCT (%"):]
    best, worst = (float(line.split()[1]) for line in nrm.splitlines()[:4]
                   if line.strip().startswith(("best", "worst")))
    assert best < worst


def test_cli_compare_at_selects_grid_points(small_sweep, tmp_path, capsys):
    path = write_netcdf(small_sweep, tmp_path / "r.nc")
    assert main(["compare", str(path), "--at", "cumulative_cap=3.3", "--metric", "hsct,os_24_months"]) == 0
    out = capsys.readouterr().out
    blocks = [line for line in out.splitlines() if line.startswith("cumulative_cap=")]
    assert blocks == ["cumulative_cap=3.3,cycle1_doses=0.8/0.5/0.5", "cumulative_cap=3.3,cycle1_doses=0.6/0.3/0.3"]
    assert "proceeded to HSCT" in out and "overall survival at 24 months" in out and "CR/CRi rate" not in out
    # without --metric: the summary of the headline metrics, full tables of every metric, all within 100 columns
    assert main(["compare", str(path), "--at", "cumulative_cap=3.3"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    summary, tables = out.split("Paired differences")
    assert summary.count("difference in ") == len(HEADLINE_METRICS) and "MRD negativity" not in summary
    assert tables.count("MRD negativity, of CR/CRi") == 2 and "CRN" in tables
    # numbers, inf for no cap, a list axis' total: the same point three ways
    for at in ("cumulative_cap=none,cycle1_doses=0.6/0.3/0.3", "cumulative_cap=inf,cycle1_doses=1.2",
               "cycle1_doses=1.20,cumulative_cap=null"):
        assert main(["compare", str(path), "--at", at, "--metric", "hsct", "--format", "csv"]) == 0
        rows = capsys.readouterr().out.splitlines()
        assert len(rows) == 2 and rows[1].startswith("hsct,proceeded to HSCT,none,0.6/0.3/0.3,%,"), at
    cell = paired_differences(small_sweep).sel(metric="hsct", cumulative_cap=np.inf, cycle1_doses="0.6/0.3/0.3")
    header = rows[0].split(",")
    values = dict(zip(header, rows[1].split(",")))
    assert values["difference_unit"] == "pp"
    assert float(values["difference"]) == pytest.approx(100 * float(cell.estimate))
    assert float(values["monte_carlo_lower"]) == pytest.approx(100 * float(cell.lower))
    # csv without --metric: every metric at every grid point but the reference
    assert main(["compare", str(path), "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 5 * small_sweep.sizes["metric"]


def test_cli_compare_all_and_json(small_sweep, tmp_path, capsys):
    path = write_netcdf(small_sweep, tmp_path / "r.nc")
    assert main(["compare", str(path), "--all", "--metric", "hsct"]) == 0
    out = capsys.readouterr().out
    assert out.count("\ncumulative_cap=") == 5  # every grid point but the reference
    assert main(["compare", str(path), "--format", "json", "--metric", "cr_cri", "--cutoff", "2.7"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["reference"] == {"cumulative_cap": "none", "cycle1_doses": "0.8/0.5/0.5"}
    assert "Monte Carlo" in doc["intervals"]["monte_carlo"] and len(doc["differences"]) == 5
    assert {r["column"] for r in doc["dose_contrast"]} >= set(CONTRAST_COLUMNS)
    assert main(["compare", str(path), "--reference", "cumulative_cap=1.8", "--at", "cumulative_cap=none",
                 "--metric", "hsct"]) == 0
    out = capsys.readouterr().out
    assert "reference (cumulative_cap=1.8,cycle1_doses=0.8/0.5/0.5)" in out


def test_crn_summary_without_variance_says_so(tmp_path):
    """A cap no patient reaches gives identical trials: no 'nan%' or 'nanx'."""
    exp = load_experiment(write_experiment(tmp_path, {"regimen.cumulative_cap": [None, ABOVE_ANY_DOSE]},
                                           replicates=4, patients=30))
    text = crn_saving_summary(paired_differences(run_sweep(exp)))
    assert "nan" not in text and "identical trials" in text


@pytest.mark.parametrize(("flags", "needle"), [
    (["--reference", "nope=1"], "--reference: no axis 'nope'"),
    (["--reference", "cumulative_cap=9"], "--reference: cumulative_cap: no value '9' (values: 1.8, 3.3, none)"),
    (["--at", "cumulative_cap=3.4"], "--at: cumulative_cap: no value '3.4'"),
    (["--metric", "nope"], "--metric: no metric 'nope'"),
    (["--metric", "os24"], "did you mean 'os_24_months'?"),
])
def test_cli_compare_bad_flags_exit_2(small_sweep, tmp_path, capsys, flags, needle):
    path = write_netcdf(small_sweep, tmp_path / "r.nc")
    assert main(["compare", str(path), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err


def test_cli_compare_scenario_files(capsys):
    """Scenario files: the bottom line first (the answer over all uncertainty, P(better), whether the sign
    depends on the mechanism), then why the fitted value differs, the table, the answer by structure and
    the value of information; within 100 columns. The observational vs causal contrast only on request."""
    files = [str(CONFIGS / f) for f in ("label_dosing.yaml", "cap_3p3.yaml")]
    assert main(["compare", *files, "--replicates", "6", "--patients", "50", "--metric", "os_24_months"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("Cumulative cap 3.3 mg/m² vs label dosing, Overall survival at 24 months (KM):")
    assert out.index("P(better)") < out.index("At the fitted values") < out.index("fitted (MC 95% CI)")
    assert "The same by model structure" in out and "Value of information" in out
    assert "Add --contrast." in out and "Observational vs causal contrast" not in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert main(["compare", *files, "--replicates", "6", "--patients", "50", "--metric", "cr_cri",
                 "--contrast"]) == 0
    out = capsys.readouterr().out
    assert "Observational vs causal contrast" in out and "obs. - dose" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_cli_compare_one_scenario_file_says_what_is_missing(capsys):
    assert main(["compare", str(CONFIGS / "label_dosing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a reference and at least one strategy" in err


def test_cli_compare_uncertainty_for_grid_points(small_sweep, tmp_path, capsys):
    path = write_netcdf(small_sweep, tmp_path / "r.nc")
    ens = load_ensemble(None).isel(draw=slice(0, 400, 50))[["parameters"]]  # 8 draws, no structure table
    small = write_netcdf(ens, tmp_path / "ens.nc")
    assert main(["compare", str(path), "--at", "cumulative_cap=3.3,cycle1_doses=0.6/0.3/0.3", "--uncertainty",
                 "--ensemble", str(small), "--metric", "hsct"]) == 0
    out = capsys.readouterr().out
    assert "cumulative_cap=3.3,cycle1_doses=0.6/0.3/0.3 minus" in out and "(8 draws shared" in out.replace("\n", " ")
    assert main(["compare", str(path), "--uncertainty"]) == 2
    assert "--uncertainty: name the grid points with --at" in capsys.readouterr().err


def test_another_interval_kind_is_one_more_entry(small_sweep):
    """Parameter or structural intervals: variables in the differences and an IntervalKind; every table
    then shows them beside the Monte Carlo ones, and the first screen says what each covers."""
    diffs = paired_differences(small_sweep)
    diffs["wide_lower"], diffs["wide_upper"] = diffs.lower - 1, diffs.upper + 1
    wide = IntervalKind("parameter", "Parameter", "wide_lower", "wide_upper", "Parameter intervals cover X.")
    view = CompareView(metrics=("hsct",), at={"cumulative_cap": 1}, intervals=(MONTE_CARLO, wide))
    frame = differences_frame(diffs, view)
    np.testing.assert_allclose(frame.parameter_lower, frame.monte_carlo_lower - 100)
    text = compare_report(diffs, None, view)
    assert "Parameter intervals cover X." in " ".join(text.split("\n\n")[0].split()) and "Parameter CI" in text
    assert max(len(line) for line in text.splitlines()) <= 100
