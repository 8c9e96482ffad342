"""The decision figures: the answer with its three uncertainties and P(better), and the value of information."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import CONFIGS
from figure_fit import assert_fit, keep_saved

from simulator import load_scenario
from simulator.analysis.labels import scale
from simulator.plots.decision import MIN_DRIVER_DRAWS, answer_plot, decision_title, value_of_information_plot
from simulator.sensitivity.strategies import HEADLINE, compare_strategies, value_of_information

STRATEGIES = ("two_cycles_then_stop", "cap_3p3")


@pytest.fixture(scope="module")
def answers(label):
    """Two strategies against label dosing on the headline metrics, over 60 draws of the combined ensemble."""
    others = {name: load_scenario(CONFIGS / f"{name}.yaml") for name in STRATEGIES}
    return compare_strategies(label, others, HEADLINE, draws=60, per_structure=2, patients=100, fitted_replicates=10,
                              replicates=5, seed=3)


@pytest.fixture
def saved(monkeypatch):
    yield from keep_saved(monkeypatch)


def test_decision_figures_fit(answers, tmp_path, saved):
    """``inosim compare A.yaml B.yaml C.yaml --plot-dir`` and experiments/strategy_answers.py write these."""
    for name in STRATEGIES:
        answer_plot(answers, name, tmp_path)
        value_of_information_plot(value_of_information(answers, name, "os_24_months"), tmp_path,
                                  decision_title(answers, name), stem=f"value_of_information_{name}")
    assert_fit(saved, 4)


def test_the_answer_shows_monte_carlo_posterior_and_nrm_drivers_with_p_better(answers, tmp_path, saved):
    path = answer_plot(answers, "two_cycles_then_stop", tmp_path)
    assert path.name == "answer_two_cycles_then_stop.png"
    fig = saved[f"{tmp_path.name}/{path.name}"]
    one = answers.sel(strategy="two_cycles_then_stop")
    drivers = {str(s).split("-")[0] for s in answers.draw_structure.values}
    shown = [d for d in drivers if (np.char.find(answers.draw_structure.values.astype(str), d) == 0).sum()
             >= MIN_DRIVER_DRAWS]
    assert 1 <= len(shown) < len(drivers)  # one driver at least with an interval, one with too few draws
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]  # top to bottom
    assert rows[:2] == ["At the fitted values (Monte Carlo)", "Parameters and model structures (posterior)"]
    assert len(rows) == 2 + len(shown) and all(t.startswith("NRM ~ ") for t in rows[2:])
    for ax, metric in zip(fig.axes, HEADLINE):
        r = one.sel(metric=metric)
        column = [t.get_text() for t in ax.texts]
        assert column[-1] == "P(better)" and len(column) == len(rows)  # a row each, but the Monte Carlo one
        if str(r.better.values) == "none":  # e.g. the HSCT rate: neither direction is better for patients
            assert "(no better direction)" in ax.get_title() and column[:-1] == ["-"] * (len(rows) - 1)
        else:
            assert f"({r.better.values} is better)" in ax.get_title()
            assert column[0] == f"{float(r.prob_better):.2f}"
        monte_carlo = ax.collections[0].get_segments()[0][:, 0]  # the first bar: the Monte Carlo CI, in pp or months
        np.testing.assert_allclose(monte_carlo, scale(str(r.unit.values)) * np.array([r.fitted_lower, r.fitted_upper]))
    (note,) = [t.get_text().replace("\n", " ") for t in fig.texts if t.get_text().startswith("Monte Carlo:")]
    assert "Too few draws to show" in note and "P(better)" in note
    plt.close(fig)


def test_the_segment_figure_shows_each_segment_with_its_share_and_p_better(label, tmp_path, saved):
    from simulator.plots.decision import segment_plot

    two = {"two_cycles_then_stop": load_scenario(CONFIGS / "two_cycles_then_stop.yaml")}
    answers = compare_strategies(label, two, ("os_24_months", "hsct"), by=["age_55,transplant_eligible"], draws=8,
                                 per_structure=1, patients=60, fitted_replicates=4, replicates=2, seed=3)
    path = segment_plot(answers, "two_cycles_then_stop", tmp_path)
    assert path.name == "segments_two_cycles_then_stop.png"
    fig = saved[f"{tmp_path.name}/{path.name}"]
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]  # top to bottom
    assert rows == [f"{g} ({float(s):.0%})" for g, s in zip(answers.segment.values, answers.share.values)]
    assert rows[0] == "all patients (100%)" and rows[1].startswith("age < 55 (")
    os_column = [t.get_text() for t in fig.axes[0].texts]
    p = answers.prob_better.sel(strategy="two_cycles_then_stop", metric="os_24_months").values
    assert os_column == [f"{v:.2f}" for v in p] + ["P(better)"]
    assert [t.get_text() for t in fig.axes[1].texts][:-1] == ["-"] * len(rows)  # HSCT: no better direction
    assert "For whom is two cycles, then stop better than label dosing?" in fig._suptitle.get_text()
    plt.close(fig)
