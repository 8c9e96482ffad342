"""Figures: every file written as PNG and SVG, with titles, units and interval bands."""

from __future__ import annotations

import matplotlib.image as mpimg
import pytest

from simulator.cli import main
from simulator.plots import forest, heatmap, km_curves
from simulator.sweep.storage import write_netcdf


def test_heatmap_shows_estimates_and_intervals(small_sweep, tmp_path):
    png, svg = heatmap(small_sweep, "os_24_months", tmp_path)
    assert (png.name, svg.name) == ("heatmap_os_24_months.png", "heatmap_os_24_months.svg")
    height, width, _ = mpimg.imread(png).shape
    assert width > height > 100
    text = svg.read_text()
    cell = small_sweep.pooled_estimate.sel(metric="os_24_months", cumulative_cap="3.3", cycle1_doses="0.8/0.5/0.5")
    for needle in ("overall survival at 24 months (KM) (%)", "95% CI", "cumulative_cap", "cycle1_doses",
                   f"{100 * float(cell):.3g}"):
        assert needle in text, needle


def test_km_curves_and_forest(small_sweep, tmp_path):
    km = km_curves(small_sweep, tmp_path, along="cumulative_cap")
    text = km[1].read_text()
    for needle in ("Kaplan-Meier overall survival", "progression-free survival (%)", "months from the first dose",
                   "cumulative_cap=none", "Monte Carlo CI"):
        assert needle in text, needle
    fig = forest(small_sweep, tmp_path, ("hsct", "os_median_months"))
    text = fig[1].read_text()
    assert "difference (pp)" in text and "difference (months)" in text and "paired differences" in text
    assert "cumulative_cap=1.8, cycle1_doses=0.6/0.3/0.3" in text  # a row per non-reference point


def test_cli_plot(small_sweep, tmp_path, capsys):
    path = write_netcdf(small_sweep, tmp_path / "r.nc")
    assert main(["plot", str(path), "--metric", "cr_cri"]) == 0
    folder = tmp_path / "r_plots"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(f"{stem}.{ext}" for stem in ("heatmap_cr_cri", "km_os_pfs", "forest")
                           for ext in ("png", "svg"))
    assert "6 files written" in capsys.readouterr().out


@pytest.mark.parametrize(("flags", "needle"), [(["--x", "replicate"], "--x: no axis 'replicate'"),
                                               (["--metric", "nope"], "--metric: no metric 'nope'")])
def test_cli_plot_bad_flags_exit_2(small_sweep, tmp_path, capsys, flags, needle):
    path = write_netcdf(small_sweep, tmp_path / "r.nc")
    assert main(["plot", str(path), *flags]) == 2
    assert needle in capsys.readouterr().err


def test_cli_plot_refuses_a_file_that_is_not_sweep_results(tmp_path, capsys):
    records = tmp_path / "records.nc"
    assert main(["run", "--patients", "50", "--out", str(records)]) == 0
    capsys.readouterr()
    assert main(["plot", str(records)]) == 2
    assert "not the results of 'inosim sweep'" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing.nc")]) == 2
