"""Bad input: one line naming the file and key path, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import CONFIGS, SCENARIOS

from simulator import ConfigError, load_scenario
from simulator.cli import main

GOOD = (CONFIGS / "label_dosing.yaml").read_text()


def write(tmp_path, text, name="x.yaml"):
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "parameters").mkdir(exist_ok=True)
    (tmp_path / "parameters" / "default.yaml").write_text(
        (CONFIGS / "parameters" / "default.yaml").read_text())
    return path


def error_of(path) -> str:
    with pytest.raises(ConfigError) as exc:
        load_scenario(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    return msg


@pytest.mark.parametrize("name", SCENARIOS)
def test_shipped_scenarios_load(name):
    assert load_scenario(CONFIGS / f"{name}.yaml").name == name


def test_malformed_yaml(tmp_path):
    msg = error_of(write(tmp_path, "name: x\nregimen: [1, 2\n"))
    assert "malformed YAML" in msg and "line" in msg


def test_unknown_key(tmp_path):
    msg = error_of(write(tmp_path, GOOD.replace("max_cycles: 6", "max_cycles: 6\n  max_cycle: 6")))
    assert "regimen.max_cycle: unknown key" in msg


def test_wrong_type(tmp_path):
    msg = error_of(write(tmp_path, GOOD.replace("max_cycles: 6", "max_cycles: six")))
    assert "regimen.max_cycles:" in msg and "'six'" in msg


@pytest.mark.parametrize(("old", "new", "path"), [
    ("max_cycles: 6", "max_cycles: 0", "regimen.max_cycles"),
    ("cycle1_doses: [0.8, 0.5, 0.5]", "cycle1_doses: [0.8, -0.5, 0.5]", "regimen.cycle1_doses.1"),
    ("cumulative_cap: null", "cumulative_cap: -1", "regimen.cumulative_cap"),
    ("prior_hsct: 0.17", "prior_hsct: 1.7", "population.prior_hsct"),
    ("patients: 100000", "patients: 0", "simulation.patients"),
])
def test_impossible_values(tmp_path, old, new, path):
    assert old in GOOD
    msg = error_of(write(tmp_path, GOOD.replace(old, new)))
    assert f": {path}: " in msg and "got" in msg


def test_probability_outside_unit_interval_in_parameters(tmp_path):
    text = GOOD + "parameters:\n  file: parameters/default.yaml\n  overrides: {hsct_proceed_prob: 1.5}\n"
    assert "parameters.hsct_proceed_prob" in error_of(write(tmp_path, text))


def test_parameter_overrides_without_a_file_apply_to_the_shipped_values(tmp_path):
    text = GOOD + "parameters:\n  overrides: {nrm_rate: 0.011}\n"
    scenario = load_scenario(write(tmp_path, text))
    label = load_scenario(CONFIGS / "label_dosing.yaml")
    assert scenario.parameters == label.parameters.model_copy(update={"nrm_rate": 0.011})


@pytest.mark.parametrize(("text", "expected"), [
    ("name: a\nname: b\n", "line 2: name: duplicate key (first on line 1)"),
    (GOOD.replace("max_cycles: 6", "max_cycles: 6\n  max_cycles: 2"),
     "regimen.max_cycles: duplicate key (first on line"),
    (GOOD + "cohorts:\n  - {name: a, weight: 1, regimen: {max_cycles: 1, hsct_cycles: 1, max_cycles: 2}}\n",
     "cohorts.0.regimen.max_cycles: duplicate key"),
    (GOOD + "parameters:\n  file: parameters/default.yaml\n  overrides: {nrm_rate: 0.1, nrm_rate: 0.2}\n",
     "parameters.overrides.nrm_rate: duplicate key"),
])
def test_duplicate_keys_refused_naming_the_key_path(tmp_path, text, expected):
    assert expected in error_of(write(tmp_path, text))


def test_duplicate_keys_refused_in_parameter_files(tmp_path):
    path = write(tmp_path, GOOD)
    params = tmp_path / "parameters" / "default.yaml"
    params.write_text(params.read_text() + "nrm_rate: 0.5\n")
    with pytest.raises(ConfigError, match=r"parameters/default.yaml: line \d+: nrm_rate: duplicate key"):
        load_scenario(path)


@pytest.mark.parametrize(("open_", "close"), [("[", "]"), ("{a: ", "}")])
def test_deep_nesting_is_a_one_line_error_not_a_recursion_error(tmp_path, open_, close):
    text = "name: deep\nfoo: " + open_ * 5000 + "1" * (open_ == "{a: ") + close * 5000 + "\n"
    assert "line 2: nested deeper than 50 levels" in error_of(write(tmp_path, text))


def test_cohort_override_error_names_cohort(tmp_path):
    text = GOOD + "cohorts:\n  - {name: a, weight: 1, regimen: {max_cycles: 99}}\n"
    assert "cohorts.0.regimen.max_cycles" in error_of(write(tmp_path, text))


def test_alias_bomb_refused(tmp_path):
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
    assert "aliases are not allowed" in error_of(write(tmp_path, bomb))


def test_python_tags_refused(tmp_path):
    msg = error_of(write(tmp_path, "name: !!python/object/apply:os.system ['echo hi']\n"))
    assert "malformed YAML" in msg


def test_cli_exit_2_one_line_no_traceback(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("max_cycles: 6", "max_cycles: 0"))
    assert main(["run", str(path), "--patients", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "regimen.max_cycles" in err


@pytest.mark.parametrize("text", ["name: [unclosed\n", "name: " + "[" * 5000 + "]" * 5000 + "\n"])
def test_cli_subprocess_bad_file_has_no_traceback(tmp_path, text):
    path = write(tmp_path, text)
    proc = subprocess.run([sys.executable, "-m", "simulator", "run", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.parametrize(("text", "expected"), [
    ("treatment: chemo\n", "treatment: input should be 'inotuzumab', 'soc_chemotherapy', 'blinatumomab' or 'brexucabtagene', "
     "got 'chemo'"),
    ("comparators: {chemo_fatal_toxicity: 1.5}\n", "comparators.chemo_fatal_toxicity: input should be less than"),
    ("comparators: {chemo_typo: 1.0}\n", "comparators.chemo_typo: unknown key"),
    ("comparators: 3\n", "comparators: expected a mapping of parameter values, got 3"),
])
def test_treatment_errors_name_the_key(tmp_path, text, expected):
    assert expected in error_of(write(tmp_path, GOOD + text))


def test_comparator_overrides_apply_to_the_shipped_values(tmp_path):
    scenario = load_scenario(write(tmp_path, GOOD + "treatment: soc_chemotherapy\n"
                                              "comparators: {chemo_hsct_prob: 0.25}\n"))
    shipped = load_scenario(CONFIGS / "soc_inovate.yaml").comparators
    assert scenario.treatment == "soc_chemotherapy"
    assert scenario.comparators == shipped.model_copy(update={"chemo_hsct_prob": 0.25})
