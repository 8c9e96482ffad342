"""Scenario files and derived scenarios: one way to build a scenario from another, warned alike everywhere."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml
from conftest import CONFIGS, write_experiment

from simulator import ConfigError, load_scenario
from simulator.model.extrapolation import OutsideCalibrationWarning
from simulator.model.files import derive_scenario, read_yaml

LABEL = CONFIGS / "label_dosing.yaml"
HIGH = {"regimen": {"cycle1_doses": [2.4, 1.5, 1.5]}}  # three times the label's day dose


def outside_warnings(load) -> list[str]:
    """The calibration warnings ``load()`` gives, every one (not once per message)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load()
    return [str(w.message) for w in caught if issubclass(w.category, OutsideCalibrationWarning)]


def as_scenario_file(tmp_path: Path) -> tuple[Path, str, object]:
    path = tmp_path / "high.yaml"
    path.write_text(yaml.safe_dump({"extends": str(LABEL), "name": "high", **HIGH}))
    return path, "", lambda: load_scenario(path)


def as_trial_arm(tmp_path: Path) -> tuple[Path, str, object]:
    from designs import STRATEGIES, write_design

    from simulator.trial import load_design

    path = write_design(tmp_path, STRATEGIES, arms=[{"name": "label"}, {"name": "high", "overrides": HIGH}])
    return path, "trial.arms.1.overrides: ", lambda: load_design(path)


def as_sensitivity_strategy(tmp_path: Path) -> tuple[Path, str, object]:
    from simulator.sensitivity.files import load_sensitivity

    path = tmp_path / "sa.yaml"
    path.write_text(yaml.safe_dump({
        "name": "sa", "method": "one_way", "scenario": str(LABEL), "strategies": {"high": HIGH},
        "metrics": [{"metric": "hsct", "strategy": "high"}],
        "parameters": [{"name": "sos_dual_alkylator", "low": 0.0, "high": 1.4}]}))
    return path, "strategies.high: ", lambda: load_sensitivity(path)


def as_sweep_strategy(tmp_path: Path) -> tuple[Path, str, object]:
    from simulator.sweep.experiment import load_experiment

    path = write_experiment(tmp_path, {"strategy": {"label": {}, "high": HIGH}})
    return path, "axes.strategy.high: ", lambda: load_experiment(path)


@pytest.mark.parametrize("written", [as_scenario_file, as_trial_arm, as_sensitivity_strategy, as_sweep_strategy])
def test_one_override_is_warned_about_once_wherever_it_is_written(tmp_path, written):
    path, where, load = written(tmp_path)
    (msg,) = outside_warnings(load)  # the command line also says a message repeated by grid points once
    assert "\n" not in msg and msg.startswith(f"{path}: {where}regimen.cycle1_doses: 5.4 mg/m2 per cycle, up to 2.4 ")


def test_a_derived_scenario_is_the_base_with_the_overrides_validated(label):
    two = derive_scenario(label, {"regimen": {"max_cycles": 2}}, "here")
    assert two == load_scenario(CONFIGS / "two_cycles_then_stop.yaml").model_copy(update={"name": label.name,
                                                                                            "description": label.description})
    with pytest.raises(ConfigError, match=r"^here: regimen\.max_cycles: input should be greater than or equal to 1, got 0$"):
        derive_scenario(label, {"regimen": {"max_cycles": 0}}, "here")


def test_only_what_the_overrides_bring_is_warned_about(label):
    high = derive_scenario(label, HIGH, "base.yaml", warn=False)
    assert outside_warnings(lambda: derive_scenario(high, {"regimen": {"max_cycles": 2}}, "arm")) == []
    (msg,) = outside_warnings(lambda: derive_scenario(high, {"regimen": {"later_doses_not_in_cr": [2.0, 0.5, 0.5]}},
                                                      "arm"))
    assert msg.startswith("arm: regimen.later_doses_not_in_cr: 3 mg/m2 per cycle, up to 2 on one day")
    assert outside_warnings(lambda: derive_scenario(label, HIGH, "calibration", warn=False)) == []



def test_a_file_read_again_is_its_current_content_and_the_callers_own_copy(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("a: {b: 1}\n")
    first = read_yaml(path)
    first["a"]["b"] = 99  # a caller changing what it got does not change the next read
    assert read_yaml(path) == {"a": {"b": 1}}
    path.write_text("a: {b: 2, c: 3}\n")  # rewritten: read again, not the earlier parse
    assert read_yaml(path) == {"a": {"b": 2, "c": 3}}
    path.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        read_yaml(path)
