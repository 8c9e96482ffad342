"""The benchmark's counts and verdicts (its timings are reported, not tested)."""

from __future__ import annotations

import reference
from conftest import CONFIGS
from reference import simulate_reference

from simulator import load_scenario
from simulator.benchmark import GOALS, goal_status, kernel_call_counts
from simulator.model.simulation import model_arrays

N_COUNTED = 400


def test_counted_draws_equal_the_reference_generator_calls(monkeypatch):
    """The instrumented kernel consumes exactly as many uniforms as the reference draws."""
    path = CONFIGS / "pooled_analysis.yaml"
    counts = kernel_call_counts(path, n_patients=N_COUNTED, seed=3)
    calls = 0
    draw = reference.draw

    def counted(*args):
        nonlocal calls
        calls += 1
        return draw(*args)

    monkeypatch.setattr(reference, "draw", counted)
    simulate_reference(model_arrays(load_scenario(path)), seed=3, n=N_COUNTED)
    assert round(counts["draws"] * N_COUNTED) == calls
    assert counts["exp"] > 0 and counts["log"] > 0


def test_goal_verdicts():
    values = {key: limit for key, _, limit in GOALS.values()}  # every goal exactly at its limit
    assert all(s["met"] for s in goal_status(values).values())
    values["kernel_to_rng_floor"] *= 1.01  # a ratio ('<=' goal) just above its limit
    values["speedup_2t"] *= 0.99  # a speed-up ('>=' goal) just below its limit
    status = {s["key"]: s["met"] for s in goal_status(values).values()}
    assert status["kernel_to_rng_floor"] is False and status["speedup_2t"] is False
    assert status["psa_1000x1000_seconds"] is True
    values["speedup_2t"] = None  # not measured (one CPU)
    assert {s["key"]: s["met"] for s in goal_status(values).values()}["speedup_2t"] is None
