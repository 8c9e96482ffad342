"""Every figure the command line and the examples write fits on its page (see figure_fit.py).

Each writer the command line and the scripts in ``experiments/`` call is run on a small
simulation of its kind, and every figure it saves is measured; the decision figures of
``inosim compare A.yaml B.yaml --plot-dir`` are measured in test_decision.py, but for the segment figure
of ``--by``, measured here.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from conftest import CONFIGS, ROOT, write_experiment
from figure_fit import assert_fit, fit_problems, keep_saved

SMALL = dict(patients=100, replicates=2, seed=5)  # sensitivity analyses: 200 patients per parameter set
PARAMETERS = [  # as many as the shipped tornado shows, long names and assumed ranges among them
    "resp_intercept_cycle1", "resp_dose_slope", "mrd_intercept", "progression_rate_refractory",
    "death_rate_after_progression", "relapse_rate_remission", "relapse_on_treatment", "sos_intercept_post_hsct",
    "hsct_proceed_prob", "hsct_late_rate", "nrm_rate", "nrm_cumulative_dose_slope", "relapse_rate_post_hsct",
    {"name": "relapse_mrd_positive", "low": 0.2, "high": 1.2},
    {"name": "nrm_after_sos", "low": 0.0, "high": 1.0},
    {"name": "hsct_wait_mean_days", "low": 7.0, "high": 42.0},
]
METRICS = ["os_24_months",  # a figure, a difference where lower is better, a survival curve's difference
           {"metric": "post_hsct_nrm", "strategy": "two", "minus": "base"},
           {"metric": "os_curve", "strategy": "two", "minus": "base", "times": [6, 12, 24, 36]}]


@pytest.fixture
def saved(monkeypatch):
    yield from keep_saved(monkeypatch)


def test_the_check_finds_clipped_and_overlapping_texts():
    fig, axs = plt.subplots(1, 2, figsize=(4, 3), layout="constrained")
    assert fit_problems(fig) == []
    fig.set_layout_engine("none")  # keep the panels where they are
    axs[0].annotate("+0.71 months", (1.0, 0.5), xytext=(4, 0), textcoords="offset points")  # onto the next panel
    axs[1].set_title("a title far too long for a figure only four inches wide, cut on both sides")
    axs[1].text(0.5, 0.5, "one")
    axs[1].text(0.5, 0.5, "two")
    axs[1].text(0.5, 0.5, "  ", visible=True)  # empty texts do not count
    axs[1].text(0.2, 0.2, "hidden", visible=False)
    problems = fit_problems(fig)
    assert "on another panel: '+0.71 months'" in problems and "overlap: 'one' and 'two'" in problems
    assert f"outside the figure: {axs[1].get_title()!r}" in problems
    assert not [p for p in problems if "hidden" in p or "''" in p or "'  '" in p]
    plt.close(fig)


# ----------------------------------------------------------------------------- every writer
def test_sweep_figures_fit(small_sweep, tmp_path, saved):
    """``inosim plot``: heatmaps, forest and survival, on a grid, a strategy axis and three axes (facets)."""
    from simulator.plots import plot_all
    from simulator.sweep.experiment import load_experiment, run_sweep

    plot_all(small_sweep, tmp_path / "grid", metrics=("post_hsct_nrm", "os_rmst_24_months"))  # pp; long, months
    strategies = run_sweep(load_experiment(ROOT / "experiments" / "compare_strategies.yaml", replicates=4,
                                           patients=60))
    plot_all(strategies, tmp_path / "strategies")
    faceted = write_experiment(tmp_path, {"regimen.cumulative_cap": [1.8, 3.3, None], "regimen.max_cycles": [2, 4],
                                          "regimen.cycle1_doses": [[0.8, 0.5, 0.5], [0.6, 0.3, 0.3]]},
                               replicates=2, patients=40)
    plot_all(run_sweep(load_experiment(faceted)), tmp_path / "faceted", metrics=("post_hsct_nrm",))
    assert_fit(saved, 4 + 2 + 2)


@pytest.mark.filterwarnings("ignore::simulator.sensitivity.SensitivityWarning")
@pytest.mark.parametrize("method", ["one_way", "sobol", "morris", "psa"])
def test_sensitivity_figures_fit(label, tmp_path, saved, method):
    """``inosim sensitivity`` and the sensitivity examples: each method on a figure, a difference and a curve."""
    from simulator import load_scenario, sensitivity
    from simulator.plots import plot_sensitivity

    two = {"two": load_scenario(CONFIGS / "two_cycles_then_stop.yaml")}
    run = {"one_way": lambda: sensitivity.one_way(label, PARAMETERS, METRICS, strategies=two, **SMALL),
           "sobol": lambda: sensitivity.sobol(label, PARAMETERS, METRICS, 32, strategies=two, **SMALL),
           "morris": lambda: sensitivity.morris(label, PARAMETERS, METRICS, 4, strategies=two, **SMALL),
           "psa": lambda: sensitivity.psa(label, None, METRICS, draws=20, strategies=two, **SMALL)}[method]
    plot_sensitivity(run(), tmp_path)
    assert_fit(saved, 3)


def test_trial_figures_fit(tmp_path, saved):
    """``inosim trial``: one look and one arm, three looks with futility and nine tests, a selection design."""
    from designs import SELECTION, STRATEGIES, write_design

    from simulator.plots import plot_trial
    from simulator.trial import load_design, sample_size_search, simulate_trials, trial_arrays, true_values

    for i, path in enumerate((ROOT / "experiments" / "trial_low_start.yaml", write_design(tmp_path, STRATEGIES),
                              write_design(tmp_path, SELECTION, name="selection.yaml"))):
        ta = trial_arrays(load_design(path), path.parent, path)
        ds = simulate_trials(ta, n_trials=20, seed=1)
        truth = true_values(ta, 1, 12.0, n=2000)
        search = sample_size_search(ta, [60, 120], n_trials=10, seed=1) if i == 2 else None
        plot_trial(ds, truth, tmp_path / str(i), search)
        assert_fit(saved, 2 + 2 * (i == 2))
        saved.clear()


def test_calibration_check_figure_fits(tmp_path, saved):
    """``inosim calibrate``: reported against simulated figures."""
    from simulator.calibration.check import check
    from simulator.model.files import load_parameters
    from simulator.plots import plot_check

    plot_check(check(load_parameters(CONFIGS / "parameters" / "default.yaml"), n_patients=5000),
               tmp_path / "check.png")
    assert_fit(saved, 1)



def test_segment_figure_fits(label, tmp_path, saved):
    """``inosim compare A.yaml B.yaml --by ... --plot-dir``: every split, the headline metrics, a long title."""
    from simulator import load_scenario
    from simulator.plots.decision import segment_plot
    from simulator.sensitivity.strategies import HEADLINE, compare_strategies

    others = {"low_start_1p2": load_scenario(CONFIGS / "low_start_1p2.yaml")}
    by = ["age_55,salvage_line,transplant_eligible,prior_hsct,ph_positive,bilirubin_high"]
    answers = compare_strategies(label, others, HEADLINE, by=by, draws=12, per_structure=1, patients=60,
                                 fitted_replicates=4, replicates=2, seed=5)
    segment_plot(answers, "low_start_1p2", tmp_path)
    segment_plot(answers.isel(metric=[0]), "low_start_1p2", tmp_path / "one")
    assert_fit(saved, 2)
