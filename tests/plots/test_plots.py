"""Figures: which files, clinical labels with units from the label table, the reference marked, P(better)."""

from __future__ import annotations

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import CONFIGS

from simulator import load_scenario
from simulator.analysis.labels import axis_label, metric_label
from simulator.cli import main
from simulator.plots import forest, heatmap, plot_all, survival
from simulator.plots.sensitivity import psa_scatter, psa_time_course
from simulator.plots.sweep import REFERENCE_GID
from simulator.runtime.storage import write_netcdf
from simulator.sensitivity import psa
from simulator.sweep.compare import paired_differences


def _texts(fig: plt.Figure) -> str:
    """Every text of a figure (titles, labels, ticks, annotations, legends), one per line, unwrapped."""
    return "\n".join(t.get_text().replace("\n", " ") for t in fig.findobj(plt.Text))


def test_heatmap_shows_differences_with_units_and_frames_the_reference(small_sweep):
    fig = heatmap(small_sweep, "os_24_months")
    text = _texts(fig)
    for needle in (axis_label("regimen.cumulative_cap").text(), "Cumulative dose cap (mg/m²)",
                   metric_label("os_24_months").name, "difference (pp)", "Monte Carlo", "reference",
                   "no cap", "Cycle-1 doses (mg/m²)", "0.6/0.3/0.3"):
        assert needle in text, needle
    # the cells hold the paired differences in percentage points
    cell = paired_differences(small_sweep).sel(metric="os_24_months", cumulative_cap=3.3, cycle1_doses="0.6/0.3/0.3")
    assert f"{100 * float(cell.estimate):+.1f}" in text.splitlines()
    # the reference (no cap, 0.8/0.5/0.5) is framed, at x = 2 (no cap), y = 0 (0.8/0.5/0.5)
    frames = [a for a in fig.findobj() if a.get_gid() == REFERENCE_GID]
    assert len(frames) == 1 and frames[0].axes is fig.axes[0]
    assert frames[0].get_xy() == (1.5, -0.5)
    # a diverging scale centred on no difference
    (image,) = fig.axes[0].get_images()
    low, high = image.get_clim()
    assert low == -high and high > 0
    plt.close(fig)


def test_forest_for_a_handful_of_points(small_sweep):
    fig = forest(small_sweep, ("hsct", "os_median_months"))
    text = _texts(fig)
    for needle in ("difference (pp)", "difference (months)", "Proceeded to HSCT", "Median OS",
                   "Cumulative dose cap 1.8 mg/m², Cycle-1 doses 0.6/0.3/0.3 mg/m² (1.2 total)", "Monte Carlo CI"):
        assert needle in text, needle
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(rows) == 5  # every grid point but the reference
    plt.close(fig)


def test_survival_plots_differences_with_bands_and_the_curves(small_sweep):
    fig = survival(small_sweep, along="cumulative_cap")
    text = _texts(fig)
    for needle in ("Overall survival: difference from the reference", "difference in survival (pp)",
                   "band: 95% Monte Carlo CI", "months from the first dose", "Cumulative dose cap: 1.8 mg/m²",
                   "reference: Cumulative dose cap: no cap", "mean Kaplan-Meier curves"):
        assert needle in text, needle
    top = fig.axes[0]
    assert any(line.get_ydata()[0] == 0 and len(set(line.get_ydata())) == 1 for line in top.get_lines())  # zero
    assert len(top.collections) == 2  # a Monte Carlo band per non-reference cap
    plt.close(fig)


def test_plot_all_writes_what_suits_the_results(small_sweep, tmp_path):
    names = sorted(p.name for p in plot_all(small_sweep, tmp_path, ("cr_cri", "hsct")))
    assert names == ["forest.png", "heatmap_cr_cri.png", "heatmap_hsct.png", "survival.png"]
    height, width, _ = mpimg.imread(tmp_path / "heatmap_cr_cri.png").shape
    assert width > height > 100
    assert [p.name for p in plot_all(small_sweep, tmp_path / "pdf", ("hsct",), fmt="pdf")][0] == "heatmap_hsct.pdf"


def test_cli_plot(small_sweep, tmp_path, capsys):
    path = write_netcdf(small_sweep, tmp_path / "r.nc")
    assert main(["plot", str(path), "--metric", "cr_cri"]) == 0
    folder = tmp_path / "r_plots"
    assert sorted(p.name for p in folder.iterdir()) == ["forest.png", "heatmap_cr_cri.png", "survival.png"]
    assert "3 files written" in capsys.readouterr().out
    assert main(["plot", str(path), "--metric", "hsct", "--format", "svg", "--out-dir", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "heatmap_hsct.svg").read_text().startswith("<?xml")


@pytest.mark.parametrize(("flags", "needle"), [(["--x", "replicate"], "--x: no axis 'replicate'"),
                                               (["--metric", "nope"], "--metric: no metric 'nope'"),
                                               (["--metric", "os24"], "did you mean 'os_24_months'?")])
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


def test_every_axis_of_the_shipped_experiments_has_a_display_unit_or_is_a_count():
    """The label table covers the shipped experiments' axes (no humanised fallbacks)."""
    import yaml
    from conftest import ROOT

    from simulator.analysis.labels import AXES

    for path in (ROOT / "experiments").glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        for key in doc.get("axes", {}):
            assert key in AXES, (path.name, key)


def test_psa_figures_say_p_better_in_the_better_direction(label):
    """NRM after HSCT: lower is better, so P(better) is the share of draws with a negative difference."""
    ds = psa(label, None, [{"metric": "post_hsct_nrm", "strategy": "two", "minus": "base"},
                           {"metric": "os_curve", "strategy": "two", "minus": "base", "times": [12, 24]}],
             draws=20, strategies={"two": load_scenario(CONFIGS / "two_cycles_then_stop.yaml")}, patients=100,
             replicates=2, seed=5)
    nrm = ds["post_hsct_nrm_two_minus_base"].sel(statistic="estimate").values
    assert 0 < np.mean(nrm < 0) < 1 and np.mean(nrm < 0) != np.mean(nrm > 0)  # the directions differ here
    fig = psa_scatter(ds, "post_hsct_nrm_two_minus_base")
    assert f"P(better) = {np.mean(nrm < 0):.2f}" in _texts(fig) and "(lower is better)" in _texts(fig)
    assert "P(difference" not in _texts(fig)
    plt.close(fig)
    fig = psa_time_course(ds, "os_curve_two_minus_base")
    (line,) = [ln for ln in fig.axes[1].get_lines() if ln.get_label().startswith("P(better)")]
    survival = ds["os_curve_two_minus_base"].sel(statistic="estimate").transpose("time", "draw").values
    np.testing.assert_allclose(line.get_ydata(), np.mean(survival > 0, axis=1))  # survival: higher is better
    assert fig.axes[1].get_ylabel() == "P(better)"
    plt.close(fig)
