"""Model structures: validation, files, the kernel against the reference under each, and invariants."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from conftest import CONFIGS, with_changes
from reference import simulate_reference

from simulator import ConfigError, load_scenario, simulate
from simulator.model.files import scenario_from_dict
from simulator.model.kernel import PARAMETER_NAMES
from simulator.model.simulation import model_arrays, records_to_dataset, run_kernel
from simulator.model.structure import STRUCTURE_PARAMETERS, ModelStructure, all_structures, structure_from_id

# every structure slope non-zero at once: the reference must follow each term
ALL_SLOPES = {"nrm_cycles_slope": 0.4, "nrm_time_to_hsct_slope": 0.3, "nrm_salvage2": 0.5,
              "nrm_dual_alkylator": 0.6, "hsct_prior_hsct": -1.0, "nrm_cumulative_dose_slope": 0.2}


def test_structures_enumerate_and_name_their_parameters():
    structures = all_structures()
    assert len(structures) == 16 and len({s.id for s in structures}) == 16
    for s in structures:
        assert structure_from_id(s.id) == s
        assert s.used | s.unused == STRUCTURE_PARAMETERS and not s.used & s.unused
    assert ModelStructure(nrm_driver="pretransplant_state", relapse_on_treatment="none").used == {
        "nrm_salvage2", "nrm_dual_alkylator"}


def test_unused_structure_parameter_must_be_zero(label, tmp_path):
    with pytest.raises(ValueError, match="nrm_cycles_slope: must be 0 under model structure cumulative_dose"):
        with_changes(label, parameters={"nrm_cycles_slope": 0.3})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "extends": str(CONFIGS / "label_dosing.yaml"),
                                    "parameters": {"file": "parameters/default.yaml",
                                                   "overrides": {"hsct_prior_hsct": -0.5}}}))
    with pytest.raises(ConfigError, match=r"s\.yaml: parameters\.hsct_prior_hsct: must be 0"):
        load_scenario(path)


def test_scenario_model_key_selects_the_structure_fit(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "extends": str(CONFIGS / "label_dosing.yaml"),
                                    "model": {"nrm_driver": "cycles_before_hsct"}}))
    s = load_scenario(path)
    assert s.model.nrm_driver == "cycles_before_hsct"
    assert s.parameters.nrm_cumulative_dose_slope == 0.0 and s.parameters.nrm_cycles_slope != 0.0
    path.write_text(yaml.safe_dump({"name": "s", "extends": str(CONFIGS / "label_dosing.yaml"),
                                    "model": {"nrm_driver": "time_to_hsct"},
                                    "parameters": {"file": "parameters/default.yaml"}}))
    with pytest.raises(ConfigError, match="holds parameters of structure cumulative_dose-effect-none"):
        load_scenario(path)
    path.write_text(yaml.safe_dump({"name": "s", "extends": str(CONFIGS / "label_dosing.yaml"), "model": {"nrm_driver": "x"}}))
    with pytest.raises(ConfigError, match=r"s\.yaml: model: nrm_driver"):
        load_scenario(path)


def test_every_shipped_structure_file_loads_under_its_structure(label):
    for s in all_structures():
        doc = {**label.model_dump(exclude={"parameters", "model"}), "model": s.model_dump()}
        scenario = scenario_from_dict(doc, f"{s.id}.yaml")
        assert scenario.model == s
        used = {n for n in s.used if getattr(scenario.parameters, n) != 0.0}
        assert used == s.used, f"{s.id}: fitted slopes at exactly 0"


def test_kernel_equals_reference_with_every_structure_term(label):
    """No single structure uses every term, so the parameter vector is set directly (no validation)."""
    scenario = with_changes(label, population={"prior_hsct": 0.4, "salvage2": 0.5})
    arrays = model_arrays(scenario)
    par = arrays.par.copy()
    for name, value in ALL_SLOPES.items():
        par[PARAMETER_NAMES.index(name)] = value
    arrays = dataclasses.replace(arrays, par=par)
    ds = records_to_dataset(*run_kernel(arrays, 21, 0, 800), scenario, 21)
    ref = simulate_reference(arrays, seed=21, n=800)
    assert ds.hsct.sum() > 100
    for field in ref[0]:
        np.testing.assert_array_equal(ds[field].values, [r[field] for r in ref], err_msg=field)


def _dose_free(driver: str, slope: str) -> dict:
    """Parameters under which the dose in a cycle changes nothing but the cumulative dose itself."""
    return {"resp_dose_slope": 0.0, "mrd_dose_slope": 0.0, "g3ae_dose_slope": 0.0, "sae_dose_slope": 0.0,
            "discontinue_cumulative_slope": 0.0, "sos_cumulative_dose_slope": 0.0,
            "nrm_cumulative_dose_slope": 0.0, slope: 1.0}


@pytest.mark.parametrize("driver,slope,invariant", [
    ("cycles_before_hsct", "nrm_cycles_slope", True),
    ("time_to_hsct", "nrm_time_to_hsct_slope", True),
    ("cumulative_dose", "nrm_cumulative_dose_slope", False),
])
def test_nrm_driver_sees_dose_only_under_the_dose_structure(label, driver, slope, invariant):
    """Two regimens with the same cycles and days but different doses: identical patients under
    the cycles and time drivers (NRM ignores the dose), different NRM under the dose driver."""
    params = _dose_free(driver, slope)
    full = with_changes(label, model={"nrm_driver": driver}, parameters=params)
    low = with_changes(full, regimen={"cycle1_doses": [0.4, 0.3, 0.3], "later_doses_in_cr": [0.3, 0.3, 0.3],
                                      "later_doses_not_in_cr": [0.4, 0.3, 0.3]})
    a, b = simulate(full, n_patients=20_000, seed=4), simulate(low, n_patients=20_000, seed=4)
    assert a.hsct.sum() > 1000 and (a.cumulative_dose.values > b.cumulative_dose.values).mean() > 0.9
    same = np.array_equal(a.death_day.values, b.death_day.values, equal_nan=True) and \
        np.array_equal(a.death_cause.values, b.death_cause.values)
    assert same == invariant
