"""Doses and parameters far outside the calibration: one clear warning, not a refusal."""

from __future__ import annotations

import warnings

import pytest
from conftest import CONFIGS, SCENARIOS, write_experiment

from simulator import load_scenario
from simulator.cli import main
from simulator.model.extrapolation import (
    LABEL_CYCLE_DOSE,
    LABEL_DAY_DOSE,
    OUTSIDE_FACTOR,
    PARAMETER_MARGIN,
    OutsideCalibrationWarning,
    calibrated_ranges,
)

LABEL = CONFIGS / "label_dosing.yaml"


def scenario_file(tmp_path, body: str):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {LABEL}\nname: s\n{body}")
    return path


def warnings_of(path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_scenario(path)
    return [str(w.message) for w in caught if issubclass(w.category, OutsideCalibrationWarning)]


@pytest.mark.parametrize("name", SCENARIOS)
def test_shipped_scenarios_are_inside_the_calibration(name):
    assert warnings_of(CONFIGS / f"{name}.yaml") == []


@pytest.mark.parametrize(("doses", "warned"), [
    ([0.8, 0.5, 0.5], False),
    ([OUTSIDE_FACTOR * LABEL_DAY_DOSE, 1.0, 1.0], False),  # at both limits: 1.6 a day, 3.6 a cycle
    ([OUTSIDE_FACTOR * LABEL_DAY_DOSE + 0.01, 0.5, 0.5], True),  # one day too high
    ([1.5, 1.5, OUTSIDE_FACTOR * LABEL_CYCLE_DOSE - 2.9], True),  # each day allowed, the cycle not
    ([8.0, 5.0, 5.0], True),  # the 10x label dose
])
def test_doses_far_above_the_label_are_warned_about_naming_the_key_path(tmp_path, doses, warned):
    path = scenario_file(tmp_path, f"regimen: {{cycle1_doses: {doses}}}\n")
    found = warnings_of(path)
    assert len(found) == warned
    if warned:
        msg = found[0]
        assert "\n" not in msg and msg.startswith(f"{path}: regimen.cycle1_doses: ")
        assert "0.8 mg/m2 a day, 1.8 per cycle" in msg and "extrapolation" in msg


def test_a_cohort_dose_names_the_cohort(tmp_path):
    path = scenario_file(tmp_path, "cohorts:\n  - {name: a, weight: 1}\n"
                                   "  - {name: b, weight: 1, regimen: {later_doses_not_in_cr: [2.0, 0.5, 0.5]}}\n")
    assert [m.split(": ")[1] for m in warnings_of(path)] == ["cohorts.1.regimen.later_doses_not_in_cr"]


def test_parameters_beyond_the_ensemble_range_by_the_margin_are_warned_about(tmp_path):
    lo, hi = calibrated_ranges()["nrm_rate"]
    margin = PARAMETER_MARGIN * (hi - lo)
    inside = scenario_file(tmp_path, f"parameters: {{overrides: {{nrm_rate: {hi + 0.99 * margin!r}}}}}\n")
    assert warnings_of(inside) == []
    outside = scenario_file(tmp_path, f"parameters: {{overrides: {{nrm_rate: {hi + 1.01 * margin!r}}}}}\n")
    (msg,) = warnings_of(outside)
    assert msg.startswith(f"{outside}: parameters.nrm_rate: ") and f"{lo:.4g} to {hi:.4g}" in msg


def test_parameters_the_calibration_did_not_fit_have_no_range():
    from simulator.calibration.parameters import FIT_PARAMETERS, STRUCTURE_FIT_PARAMETERS

    fitted = {p.name for p in FIT_PARAMETERS} | set(STRUCTURE_FIT_PARAMETERS)  # 36 shared + 5 structure slopes
    assert "sos_short_interval" not in calibrated_ranges() and set(calibrated_ranges()) == fitted


def test_cli_warns_once_in_one_line_and_still_runs(tmp_path, capsys):
    scenario = scenario_file(tmp_path, "regimen: {cycle1_doses: [8.0, 5.0, 5.0]}\n")
    assert main(["run", str(scenario), "--patients", "50"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"inosim: warning: {scenario}: regimen.cycle1_doses: ")
    # a sweep checks every grid point, and says it once
    exp = write_experiment(tmp_path, {"regimen.cycle1_doses": [[0.8, 0.5, 0.5], [8.0, 5.0, 5.0]],
                                      "regimen.max_cycles": [1, 2, 3]}, replicates=2, patients=5)
    assert main(["sweep", str(exp), "--out", str(tmp_path / "r.nc")]) == 0
    err = capsys.readouterr().err
    assert err.count("inosim: warning:") == 1 and "regimen.cycle1_doses" in err
