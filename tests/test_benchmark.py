"""The benchmark's counts and verdicts (its timings are reported, not tested)."""

from __future__ import annotations

import reference
from conftest import CONFIGS, ROOT
from reference import simulate_reference

from simulator import load_scenario
from simulator.benchmark import COMMAND_GOALS, GOALS, goal_status, kernel_call_counts
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
    values = {key: limit for key, _, limit in [*GOALS.values(), *COMMAND_GOALS.values()]}  # each exactly at its limit
    assert all(s["met"] for s in goal_status(values).values())
    values["kernel_to_rng_floor"] *= 1.01  # a ratio ('<=' goal) just above its limit
    values["speedup_2t"] *= 0.99  # a speed-up ('>=' goal) just below its limit
    status = {s["key"]: s["met"] for s in goal_status(values).values()}
    assert status["kernel_to_rng_floor"] is False and status["speedup_2t"] is False
    assert status["psa_1000x1000_seconds"] is True
    values["speedup_2t"] = None  # not measured (one CPU)
    assert {s["key"]: s["met"] for s in goal_status(values).values()}["speedup_2t"] is None
    values["trial_to_rpact"] = None  # rpact not installed: not measured, not failed
    assert {s["key"]: s["met"] for s in goal_status(values).values()}["trial_to_rpact"] is None


def _signatures() -> dict[str, int]:
    """Compiled signatures of every jitted function of the package's engines, by name."""
    import importlib

    from numba.core.registry import CPUDispatcher

    counts = {}
    for name in ("simulator.model.kernel", "simulator.analysis.reductions", "simulator.trial.engine",
                 "simulator.trial.statistics", "simulator.trial.boundaries"):
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if isinstance(value, CPUDispatcher):
                counts[f"{name}.{attr}"] = len(value.signatures)
    return counts


def test_compile_engines_leaves_nothing_for_the_shipped_trials_to_compile():
    """After the warm-up (`inosim compile`, `make run`), the example designs compile no new kernel."""
    from simulator.benchmark import compile_engines
    from simulator.trial import analytic, load_design, simulate_trials, trial_arrays, true_values

    compile_engines()
    before = _signatures()
    assert sum(before.values()) >= 15  # the entry points: kernels, trial engine, boundaries
    for path in sorted((ROOT / "experiments").glob("trial_*.yaml")):
        ta = trial_arrays(load_design(path), path.parent, path)
        ds = simulate_trials(ta, n_trials=4)
        analytic(ds, true_values(ta, 1, float(ds.cut_time.max()), n=100))
    assert _signatures() == before
