"""Shared fixtures: shipped scenarios and a scenario factory with overrides."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SCENARIOS = ("pooled_analysis", "label_dosing", "two_cycles_then_stop", "cap_3p3", "low_start_1p2")

sys.path.insert(0, str(Path(__file__).parent))  # tests/reference.py


@pytest.fixture(scope="session")
def label():
    from simulator import load_scenario

    return load_scenario(CONFIGS / "label_dosing.yaml")


def with_changes(scenario, **sections):
    """A copy of ``scenario`` with ``section={key: value}`` changes, re-validated."""
    from simulator.config import Scenario, deep_merge

    return Scenario.model_validate(deep_merge(scenario.model_dump(), sections))
