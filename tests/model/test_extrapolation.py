"""Doses and parameters far outside the calibration: one clear warning, not a refusal."""

from __future__ import annotations

import warnings

import pytest
from conftest import CONFIGS, SCENARIOS, write_experiment

from simulator import load_scenario
from simulator.cli import main
from simulator.model.extrapolation import (
    DOSING_RANGES,
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


@pytest.mark.parametrize(("key", "inside", "outside", "unit"), [
    ("cumulative_cap", 10.8, 10.9, "mg/m2"),  # six label cycles
    ("cumulative_cap", 0.6, 0.5, "mg/m2"),  # the smallest calibrated first dose
    ("max_cycles", 6, 7, "cycles"),
    ("stop_if_no_response_after", 6, 7, "cycles"),
    ("hsct_cycles", 6, 7, "cycles"),
    ("cycle1_length_days", 21, 16, "days"),
    ("later_length_days", 28, 35, "days"),
    ("cycle1_extension_in_cr_days", 7, 8, "days"),
    ("dose_reduction", OUTSIDE_FACTOR * 0.25, 0.6, "of a dose"),
])
def test_every_dosing_quantity_outside_its_calibrated_range_is_warned_about_with_its_unit(
        tmp_path, key, inside, outside, unit):
    assert warnings_of(scenario_file(tmp_path, f"regimen: {{{key}: {inside}}}\n")) == []
    path = scenario_file(tmp_path, f"regimen: {{{key}: {outside}}}\n")
    (msg,) = warnings_of(path)
    r = DOSING_RANGES[key]
    assert msg.startswith(f"{path}: regimen.{key}: {outside:g} {unit} is outside what the model was calibrated on "
                          f"({r.low:g} to {r.high:g} {unit}, ") and "\n" not in msg


def test_the_regimen_has_no_unchecked_dosing_quantity():
    from simulator.model.config import Regimen
    from simulator.model.extrapolation import REGIMEN_KEYS

    not_dosing = {"cycle1_days", "later_days", "hsct_extra_cycle_if_mrd_positive", "dual_alkylator_conditioning"}
    assert set(Regimen.model_fields) - set(REGIMEN_KEYS) == not_dosing


def test_a_cap_in_micrograms_suggests_the_unit_and_says_it_never_binds(tmp_path, capsys):
    path = scenario_file(tmp_path, "regimen: {cumulative_cap: 1800}\n")  # meant 1.8 mg/m2
    assert main(["run", str(path), "--patients", "50"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"inosim: warning: {path}: regimen.cumulative_cap: 1800 mg/m2 ")
    assert "if that is micrograms/m2, write 1.8 (the unit is mg/m2)" in err
    assert "it never binds (this regimen gives at most 10.8 mg/m2)" in err
    (msg,) = warnings_of(scenario_file(tmp_path, "regimen: {cumulative_cap: 33}\n"))  # meant 3.3
    assert "regimen.cumulative_cap: 33 mg/m2" in msg and "never binds" in msg and "micrograms/m2" not in msg
    cap, cycles = warnings_of(scenario_file(tmp_path, "regimen: {cumulative_cap: 12, max_cycles: 8}\n"))
    assert "regimen.cumulative_cap: 12 mg/m2" in cap and "regimen.max_cycles: 8 cycles" in cycles
    assert cap.endswith("results there are an extrapolation")  # 8 label cycles reach 14.4 mg/m2: it binds


def test_a_cohort_dosing_quantity_names_the_cohort(tmp_path):
    path = scenario_file(tmp_path, "cohorts:\n  - {name: a, weight: 1}\n"
                                   "  - {name: b, weight: 1, regimen: {max_cycles: 9}}\n")
    assert [m.split(": ")[1] for m in warnings_of(path)] == ["cohorts.1.regimen.max_cycles"]


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
