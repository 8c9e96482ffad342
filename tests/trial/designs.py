"""Design files for the trial tests (imported by them; tests/conftest.py puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
EXPERIMENTS = ROOT / "experiments"

# rpact 3.3.4's piecewise-exponential example (issue 11): HR 0.7, control median 8 months,
# 400 patients entering evenly over 24 months, 5% dropout by 12 months per arm, one analysis at
# 250 events, 1:1, one-sided alpha 0.025; rpact: power 0.7997 (10,000 trials), mean analysis
# time 27.96 months.
LOG2 = 0.6931471805599453
RPACT = {
    "name": "rpact_piecewise_exponential",
    "arms": [{"name": "control", "piecewise_exponential": {"rates": [LOG2 / 8]}},
             {"name": "experimental", "piecewise_exponential": {"rates": [0.7 * LOG2 / 8]}}],
    "control": "control",
    "sample_size": 400,
    "enrollment": {"rates": [400 / 24], "random": False},
    "dropout": {"probability": 0.05, "months": 12},
    "analyses": [{"events": 250}],
    "tests": [{"name": "logrank", "type": "logrank", "endpoint": "os"},
              {"name": "cox", "type": "cox", "endpoint": "os"}],
    "n_trials": 10_000,
    "seed": 11,
}

# Two strategy arms with strata, three looks, every kind of test: small, for the engine's invariants.
STRATEGIES = {
    "name": "small_strategies",
    "scenario": str(CONFIGS / "label_dosing.yaml"),
    "arms": [{"name": "label"}, {"name": "two_cycles", "overrides": {"regimen": {"max_cycles": 2}}}],
    "control": "label",
    "randomization": {"block_size": 4, "strata": ["salvage_line", "age_55"]},
    "sample_size": 90,
    "enrollment": {"rates": [3, 9], "durations": [2]},
    "dropout": {"rate": 0.01},
    "analyses": [{"events": 30, "information": 0.4}, {"events": 50, "gap": 3, "information": 0.7},
                 {"min_follow_up": 6, "max_extension": 60, "information": 1.0}],
    "tests": [{"name": "logrank", "type": "logrank", "endpoint": "os", "stratified": True},
              {"name": "fh", "type": "logrank", "endpoint": "pfs", "rho": 0, "gamma": 0.5},
              {"name": "maxcombo", "type": "maxcombo", "endpoint": "os"},
              {"name": "cox", "type": "cox", "endpoint": "os", "ties": "breslow"},
              {"name": "rmst", "type": "rmst", "endpoint": "os", "tau": 12},
              {"name": "milestone", "type": "milestone", "endpoint": "pfs", "time": 6},
              {"name": "cr", "type": "proportions", "endpoint": "cr_cri", "evaluation_months": 2},
              {"name": "sos", "type": "fisher", "endpoint": "sos_post_hsct"},
              {"name": "ae", "type": "cmh", "endpoint": "grade3_ae", "stratified": True}],
    "spending": {"function": "hsd", "param": -2, "futility": {"z": [-1.0, 0.0, -10.0]}},
    "n_trials": 24,
    "seed": 5,
}

# Three arms, selection at an interim, Dunnett final test.
SELECTION = {
    "name": "small_selection",
    "scenario": str(CONFIGS / "label_dosing.yaml"),
    "arms": [{"name": "label"}, {"name": "low", "scenario": str(CONFIGS / "low_start_1p2.yaml")},
             {"name": "capped", "overrides": {"regimen": {"cumulative_cap": 3.3}}}],
    "control": "label",
    "randomization": {"strata": ["prior_hsct"]},
    "sample_size": 120,
    "enrollment": {"rates": [10]},
    "analyses": [{"calendar": 6, "information": 0.4}, {"events": 70, "information": 1.0}],
    "tests": [{"name": "logrank", "type": "logrank", "endpoint": "os"},
              {"name": "cr", "type": "proportions", "endpoint": "cr_cri"}],
    "selection": {"look": 1, "weight": 2.0, "evaluation_months": 1, "multiplicity": "dunnett"},
    "n_trials": 20,
    "seed": 3,
}


def write_design(folder: Path, trial: dict, name: str = "design.yaml", **changes) -> Path:
    """Write ``{trial: ...}`` with top-level changes into ``folder``."""
    path = folder / name
    path.write_text(yaml.safe_dump({"trial": {**trial, **changes}}, sort_keys=False))
    return path
