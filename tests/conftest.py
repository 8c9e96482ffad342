"""Shared fixtures: shipped scenarios and a scenario factory with overrides."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SCENARIOS = ("pooled_analysis", "label_dosing", "two_cycles_then_stop", "cap_3p3", "low_start_1p2", "soc_inovate",
             "blinatumomab_tower", "brexucabtagene_zuma3", "ino_then_car_t")

sys.path.insert(0, str(Path(__file__).parent))  # conftest itself, for its helpers
sys.path.insert(0, str(Path(__file__).parent / "model"))  # tests/model/reference.py
sys.path.insert(0, str(Path(__file__).parent / "trial"))  # tests/trial/designs.py


@pytest.fixture(scope="session")
def label():
    from simulator import load_scenario

    return load_scenario(CONFIGS / "label_dosing.yaml")


def with_changes(scenario, **sections):
    """A copy of ``scenario`` with ``section={key: value}`` changes, re-validated (not warned about)."""
    from simulator.model.files import derive_scenario

    return derive_scenario(scenario, sections, "with_changes", warn=False)


def write_experiment(folder: Path, axes: dict, name: str = "exp.yaml", **keys) -> Path:
    """Write an experiment file on the shipped label-dosing scenario (small by default)."""
    import yaml

    doc = {"name": "test_experiment", "scenario": str(CONFIGS / "label_dosing.yaml"), "axes": axes,
           "replicates": 8, "patients": 60, "seed": 11, **keys}
    path = folder / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory):
    """Results of a 3 x 2 sweep (cap x cycle-1 doses), 12 trials of 80 patients per point."""
    from simulator.sweep.experiment import load_experiment, run_sweep

    folder = tmp_path_factory.mktemp("sweep")
    path = write_experiment(folder, {"regimen.cumulative_cap": [1.8, 3.3, None],
                                     "regimen.cycle1_doses": [[0.8, 0.5, 0.5], [0.6, 0.3, 0.3]]},
                            replicates=12, patients=80)
    return run_sweep(load_experiment(path), folder / "results.nc")
