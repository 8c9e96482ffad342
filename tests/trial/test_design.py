"""Design files: the shipped designs load; bad input is one line naming the file and the key path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from designs import EXPERIMENTS, RPACT, SELECTION, STRATEGIES, write_design

from simulator.model.config import ConfigError
from simulator.trial import load_design, trial_arrays
from simulator.trial.run import comparison_alpha, dropout_rate


@pytest.mark.parametrize("name", ["trial_two_cycles_vs_label", "trial_low_start", "trial_dose_selection",
                                  "trial_inovate", "trial_tower"])
def test_shipped_designs_load(name):
    path = EXPERIMENTS / f"{name}.yaml"
    design = load_design(path)
    ta = trial_arrays(design, path.parent, path)
    assert ta.constants.upper.shape == (len(design.analyses),)


@pytest.mark.parametrize("trial, changes, message", [
    (RPACT, {"control": "nobody"}, "trial: control: 'nobody' is not an arm"),
    (RPACT, {"sample_size": 1}, "trial.sample_size: input should be greater than or equal to 2, got 1"),
    (RPACT, {"analyses": [{"events": 200}, {"events": 100}]}, "trial: analyses: event targets must increase"),
    (RPACT, {"analyses": [{"endpoint": "os"}]}, "trial.analyses.0: give at least one of events"),
    (RPACT, {"tests": [{"name": "x", "type": "fisher", "endpoint": "os"}]},
     "trial.tests.0: type fisher does not apply to a time-to-event endpoint"),
    (RPACT, {"tests": [{"name": "x", "type": "rmst", "endpoint": "os"}]}, "trial.tests.0: rmst needs tau"),
    (RPACT, {"colour": 1}, "trial.colour: unknown key"),
    (RPACT, {"tests": [{"name": "x", "type": "proportions", "endpoint": "cr_cri"}]},
     "trial: tests: x: binary endpoints need strategy arms"),
    (STRATEGIES, {"randomization": {"block_size": 3, "strata": ["age_55"]}},
     "trial: randomization.block_size: 3 is not a multiple"),
    (STRATEGIES, {"arms": [{"name": "label"}, {"name": "b", "overrides": {"regimen": {"max_cycles": 0}}}]},
     "trial.arms.1.overrides: regimen.max_cycles: input should be greater than or equal to 1, got 0"),
    (STRATEGIES, {"arms": [{"name": "label"}, {"name": "b", "scenario": "missing.yaml"}]},
     "trial.arms.1.scenario: "),
    (SELECTION, {"selection": {"look": 2}}, "trial: selection.look: 2 must be an interim look"),
    (SELECTION, {"selection": {"look": 1, "rule": "threshold"}}, "trial.selection: rule threshold needs threshold"),
])
def test_one_line_errors_name_file_and_key(tmp_path, trial, changes, message):
    path = write_design(tmp_path, trial, **changes)
    with pytest.raises(ConfigError) as err:
        load_design(path)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    assert message in text, text


def test_top_level_must_be_trial(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: not_a_trial\n")
    with pytest.raises(ConfigError, match=r"x.yaml: trial: required key missing"):
        load_design(path)


def test_dropout_probability_and_rate_agree():
    from simulator.trial.design import Dropout

    rate = dropout_rate(Dropout(probability=0.05, months=12))
    assert rate == pytest.approx(-__import__("math").log(0.95) / 12, rel=1e-15)


def test_comparison_alpha_dunnett_or_bonferroni(tmp_path):
    """With selection, multiplicity dunnett gives Dunnett's level (2.2121 for two arms at 0.025:
    alpha per comparison 0.01348); bonferroni the share alpha / 2."""
    from simulator.trial.boundaries import dunnett_alpha

    design = load_design(write_design(tmp_path, SELECTION))
    assert comparison_alpha(design) == dunnett_alpha(0.025, [1, 1], 1)
    assert comparison_alpha(design) == pytest.approx(0.01348, abs=1e-5)
    bonf = load_design(write_design(tmp_path, SELECTION, selection={**SELECTION["selection"],
                                                                   "multiplicity": "bonferroni"}))
    assert comparison_alpha(bonf) == pytest.approx(0.0125)


@pytest.mark.parametrize(("name", "cut", "published"), [
    ("trial_inovate", 53.0, (0.57, 0.99)),  # S1: HR 0.75, 97.5% CI 0.57-0.99
    ("trial_tower", 19.3, (0.55, 0.93)),  # S27: HR 0.71, 95% CI 0.55-0.93
])
def test_pivotal_trials_on_the_virtual_patients_land_in_the_published_interval(name, cut, published):
    """The large-sample (true) Cox hazard ratio of overall survival, experimental vs control, of the
    simulated pivotal trial lies inside the published trial's confidence interval."""
    from simulator.trial import true_values

    path = EXPERIMENTS / f"{name}.yaml"
    ta = trial_arrays(load_design(path), path.parent, path)
    truth = true_values(ta, seed=7, cut=cut, n=50_000)
    hr = float(truth["true_estimate"].sel(test=[t for t in truth.test.values if "os_cox" in str(t)][0]).squeeze())
    assert published[0] < hr < published[1]


def test_load_trial_reads_each_scenario_once(tmp_path, monkeypatch):
    """The trial command's design and scenarios are read once (load_design then trial_arrays read
    each scenario twice), converted as trial_arrays converts them, with the same one-line errors."""
    import simulator.trial.design as design_module
    from simulator.trial import load_trial

    read = []
    load = design_module.load_scenario
    monkeypatch.setattr(design_module, "load_scenario", lambda path: read.append(path) or load(path))
    path = write_design(tmp_path, STRATEGIES)
    ta = load_trial(path)
    assert len(read) == 1  # the base scenario; the second arm overrides it
    expected = trial_arrays(load_design(path), tmp_path, path)
    assert ta.design == expected.design
    for got, want in zip(ta.model, expected.model):
        assert all(np.array_equal(getattr(got, f.name), getattr(want, f.name)) for f in dataclasses.fields(got))
    bad = write_design(tmp_path, STRATEGIES, name="bad.yaml",
                       arms=[{"name": "label"}, {"name": "b", "scenario": "missing.yaml"}])
    with pytest.raises(ConfigError, match=rf"^{bad}: trial.arms.1.scenario: "):
        load_trial(bad)
