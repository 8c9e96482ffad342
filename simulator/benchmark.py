"""Performance measurements behind ``inosim bench`` and ``benchmarks/bench.py``.

Every function returns plain numbers or dicts. Throughput is the median of several
runs after a warm-up run (JIT compilation or cache loading excluded); start-up,
cold compilation, draw counting and peak memory are measured in fresh interpreters
(subprocesses), because they depend on process state.

The figures and the goals they are held against (issue 6):

* patients/second with 1 and 2 numba threads; 2 threads at least 1.8x faster than 1;
* the *random-number floor*: patients/second numpy's ``Generator(PCG64)`` achieves
  producing just the uniforms a patient consumes (counted, not estimated); the
  kernel's time per patient at most 2.5x that (one thread). For context, the
  *libm floor* is the same for the kernel's scalar ``exp``/``log`` calls (counted too);
* the workload of hesim's published benchmark: 1,000 patients x 1,000 parameter
  sets (PSA) in at most 0.5 s (hesim: 6 s for a 6-state model);
* cold JIT compilation, and start-up of ``inosim run`` with a warm cache (at most 1.5 s
  until its first kernel call has returned);
* peak memory of :func:`simulator.simulate` at most 1.2x its output arrays;
* the trial engine (issue 11), 10,000 trials x 400 patients end to end: piecewise-exponential
  arms with log-rank + Cox at most 0.6 s (rpact's simulation time for it is measured when R is there); InOSim strategy
  arms with log-rank + Cox + RMST at most 3 s; a 3-look design with O'Brien-Fleming spending
  and beta-spending futility at most 4 s (rpact's time on its own design is measured as a whole command);
  the boundaries of one design (3 looks, efficacy and futility) at most 10 ms.

Memory figures read ``/proc/self``, so they need Linux.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

if TYPE_CHECKING:
    from simulator.model.simulation import ModelArrays

DEFAULT_PATIENTS = 1_000_000  # patients per throughput and memory run
DEFAULT_REPEATS = 5  # timed runs per figure (the median is reported)
COUNT_PATIENTS = 5_000  # patients of the plain-Python run that counts draws and libm calls
RNG_CHUNK = 1 << 20  # uniforms per PCG64 call of the floor measurement
LIBM_SAMPLE = 1 << 22  # arguments per libm timing loop
PSA_PATIENTS = 1_000  # hesim's benchmark: 1,000 patients ...
PSA_SETS = 1_000  # ... x 1,000 PSA parameter sets
PSA_JITTER_SD = 0.1  # log-scale spread of the benchmark's parameter sets around the scenario's
HESIM_PSA_SECONDS = 6.0  # hesim vignettes/benchmarks.Rmd: 6-state leukemia model, same workload
START_PATIENTS = 1_000  # patients of the `inosim run` whose start-up is timed
START_RUNS = 3  # start-up runs (median)
WARMUP_PATIENTS = 1_000  # patients of the run that loads the kernel before memory is measured
MILLION = 1_000_000
MEBIBYTE = 1 << 20
KIBIBYTE = 1 << 10  # unit of /proc/self/status
CLEAR_PEAK_RSS = "5"  # written to /proc/self/clear_refs: resets the peak (VmHWM) to the current RSS
SEED = 1

GOALS = {  # (measured key, comparison, limit)
    "kernel time per patient <= 2.5x the PCG64 time for its draws (1 thread)":
        ("kernel_to_rng_floor", "<=", 2.5),
    "2 threads >= 1.8x faster than 1": ("speedup_2t", ">=", 1.8),
    "1,000 x 1,000 PSA workload <= 0.5 s": ("psa_1000x1000_seconds", "<=", 0.5),
    "`inosim run` warm start <= 1.5 s": ("cached_start_seconds", "<=", 1.5),
    "peak memory <= 1.2x the output arrays": ("memory_to_output", "<=", 1.2),
    "10,000 trials x 400, piecewise-exponential, log-rank + Cox <= 0.6 s": ("trial_piecewise_seconds", "<=", 0.6),
    "10,000 trials x 400, strategy arms, log-rank + Cox + RMST <= 3 s": ("trial_strategies_seconds", "<=", 3.0),
    "10,000 trials x 400, strategy arms, 3 looks, spending + futility <= 4 s":
        ("trial_group_sequential_seconds", "<=", 4.0),
    "boundaries of one design (3 looks, futility) <= 10 ms": ("boundaries_seconds", "<=", 0.010),
}
TRIAL_TRIALS = 10_000  # trial-engine workloads: 10,000 trials ...
TRIAL_SAMPLE_SIZE = 400  # ... of 400 patients
BOUNDARY_REPEATS = 50  # boundary computations timed (median)


def _trial_designs() -> dict[str, dict]:
    """The benchmark's trial designs (``trial:`` mappings), on the shipped scenarios."""
    from simulator.model.config import default_config_dir

    configs = default_config_dir()
    log2 = math.log(2.0)
    common = {"control": "control", "sample_size": TRIAL_SAMPLE_SIZE, "enrollment": {"rates": [TRIAL_SAMPLE_SIZE / 24]},
              "dropout": {"probability": 0.05, "months": 12}, "n_trials": TRIAL_TRIALS, "seed": SEED}
    strategies = [{"name": "control", "scenario": str(configs / "label_dosing.yaml")},
                  {"name": "two_cycles", "scenario": str(configs / "two_cycles_then_stop.yaml")}]
    logrank = {"name": "logrank", "type": "logrank", "endpoint": "os"}
    cox = {"name": "cox", "type": "cox", "endpoint": "os"}
    return {
        "piecewise": {**common, "name": "bench_piecewise", "analyses": [{"events": 250}], "tests": [logrank, cox],
                      "arms": [{"name": "control", "piecewise_exponential": {"rates": [log2 / 8]}},
                               {"name": "experimental", "piecewise_exponential": {"rates": [0.7 * log2 / 8]}}]},
        "strategies": {**common, "name": "bench_strategies", "arms": strategies, "analyses": [{"events": 250}],
                       "tests": [logrank, cox, {"name": "rmst", "type": "rmst", "endpoint": "os", "tau": 12}]},
        "group_sequential": {**common, "name": "bench_group_sequential", "arms": strategies, "tests": [logrank],
                             "analyses": [{"events": 100}, {"events": 200}, {"events": 300}],
                             "spending": {"function": "obf", "futility": {"beta": 0.2, "theta": 2.8}}},
    }


def trial_seconds(repeats: int) -> dict[str, float]:
    """End-to-end times of :func:`simulator.trial.simulate_trials` on the benchmark designs, and of
    the boundaries of one design (median of ``repeats`` runs after a warm-up run)."""
    from simulator.trial import simulate_trials
    from simulator.trial.boundaries import design_bounds
    from simulator.trial.design import design_from_dict

    out = {}
    for key, doc in _trial_designs().items():
        design = design_from_dict({"trial": doc}, f"benchmark design {key}")
        simulate_trials(design, n_trials=100)  # compiles or loads the kernels
        out[f"trial_{key}_seconds"] = median_seconds(lambda d=design: simulate_trials(d), repeats)
    futility = {"beta": 0.2, "theta": 2.8}
    design_bounds([1 / 3, 2 / 3, 1.0], futility=futility)
    out["boundaries_seconds"] = median_seconds(lambda: design_bounds([1 / 3, 2 / 3, 1.0], futility=futility),
                                               BOUNDARY_REPEATS)
    return out



def _warm_up_designs() -> dict[str, dict]:
    """Trial designs that together reach every kernel of the trial engine: the benchmark's, and
    one with strata, dose selection and every type of test (a few trials each)."""
    from simulator.model.config import default_config_dir

    configs = default_config_dir()
    designs = {key: {**doc, "n_trials": 4} for key, doc in _trial_designs().items()}
    time_tests = [{"name": "logrank", "type": "logrank", "endpoint": "os", "stratified": True},
                  {"name": "cox", "type": "cox", "endpoint": "os"},
                  {"name": "rmst", "type": "rmst", "endpoint": "os", "tau": 12},
                  {"name": "milestone", "type": "milestone", "endpoint": "os", "time": 12},
                  {"name": "maxcombo", "type": "maxcombo", "endpoint": "os"}]
    binary_tests = [{"name": "fisher", "type": "fisher", "endpoint": "cr_cri"},
                    {"name": "proportions", "type": "proportions", "endpoint": "cr_cri"},
                    {"name": "cmh", "type": "cmh", "endpoint": "cr_cri", "stratified": True}]
    designs["selection"] = {
        "name": "warm_up_selection", "control": "control", "sample_size": 60, "n_trials": 4, "seed": SEED,
        "arms": [{"name": "control", "scenario": str(configs / "label_dosing.yaml")},
                 {"name": "low_start", "scenario": str(configs / "low_start_1p2.yaml")},
                 {"name": "two_cycles", "scenario": str(configs / "two_cycles_then_stop.yaml")}],
        "randomization": {"block_size": 6, "strata": ["salvage_line", "age_55"]},
        "enrollment": {"rates": [5]}, "dropout": {"probability": 0.05, "months": 12},
        "analyses": [{"calendar": 6, "information": 0.3}, {"events": 30, "information": 1.0}],
        "tests": time_tests + binary_tests, "primary": "logrank", "spending": {"function": "obf"},
        "selection": {"look": 1, "rule": "best", "weight": 2.0, "evaluation_months": 3, "multiplicity": "dunnett"},
    }
    return designs


def compile_engines(progress: Callable[[str], None] | None = None) -> None:
    """Compile, or load from numba's cache, every jitted engine the commands use, on tiny workloads.

    numba keeps the machine code on disk (``NUMBA_CACHE_DIR``, one folder per version of the
    sources: ``simulator/__init__.py``), so the first ``inosim run``, ``sweep``, ``compare``,
    ``sensitivity`` or ``trial`` after this loads it instead of compiling for up to a minute.
    ``inosim compile`` runs this; ``make run`` runs that once after installing.
    """
    from simulator.model.config import default_config_dir
    from simulator.model.files import default_scenario_path, load_scenario
    from simulator.model.simulation import model_arrays, run_parameter_sets, simulate
    from simulator.sweep.experiment import run_sweep, strategies_experiment
    from simulator.trial import analytic, simulate_trials, true_values
    from simulator.trial.design import design_from_dict
    from simulator.trial.run import trial_arrays

    say = progress or (lambda stage: None)
    say("patient kernel")
    scenario = load_scenario(default_scenario_path())
    simulate(scenario, n_patients=10, seed=SEED)
    arrays = model_arrays(scenario)
    say("parameter sets (PSA, compare over the ensemble)")
    run_parameter_sets(arrays, arrays.par[None, :], SEED, 10)
    say("sweep reductions")
    configs = default_config_dir()
    run_sweep(strategies_experiment([configs / "label_dosing.yaml", configs / "two_cycles_then_stop.yaml"],
                                    replicates=2, patients=20, seed=SEED))
    for key, doc in _warm_up_designs().items():
        say(f"trial engine ({key})")
        ta = trial_arrays(design_from_dict({"trial": doc}, f"warm-up design {key}"))
        ds = simulate_trials(ta)
        analytic(ds, true_values(ta, SEED, float(ds.cut_time.max()), n=100))


# ---- whole commands (issue 19): each run is a process; wall-clock and CPU seconds of each
COMMAND_RUNS = 3  # runs of each whole command (median reported)
COMMAND_GOALS = {  # (measured key, comparison, limit), as GOALS
    "first `inosim trial` after install (`make run` compiled the engines) <= 10 s": ("first_trial_seconds", "<=", 10.0),
    "`inosim trial` on rpact's 3-look design, warm, <= rpact's time (same run)": ("trial_to_rpact", "<=", 1.0),
    "`inosim compare A.yaml B.yaml` <= 5 s": ("compare_seconds", "<=", 5.0),
    "`inosim run` warm start, whole command <= 0.6 s": ("run_command_seconds", "<=", 0.6),
}
RPACT_SCRIPT = """\
suppressMessages(library(rpact))
design <- getDesignGroupSequential(kMax = 3, alpha = 0.025, beta = 0.2, sided = 1, typeOfDesign = "asOF",
                                   typeBetaSpending = "bsOF", informationRates = c(1, 2, 3) / 3)
sim <- getSimulationSurvival(design, lambda2 = log(2) / 8, hazardRatio = 0.7, plannedEvents = c(100, 200, 300),
                             maxNumberOfSubjects = 400, accrualTime = c(0, 24), dropoutRate1 = 0.05,
                             dropoutRate2 = 0.05, dropoutTime = 12, directionUpper = FALSE,
                             maxNumberOfIterations = 10000, seed = 1)
cat(packageDescription("rpact")$Version, sum(sim$overallReject), "\\n")
"""  # rpact's simulation of the same design as _rpact_design (10,000 trials): version, power. directionUpper =
# FALSE: H1 is a hazard ratio below 1 (rpact's default tests above 1 and stops 94% of trials for futility at look 1)
RPACT_FIXED_SCRIPT = """\
suppressMessages(library(rpact))
design <- getDesignGroupSequential(kMax = 1, alpha = 0.025, sided = 1)
seconds <- system.time(sim <- getSimulationSurvival(
    design, lambda2 = log(2) / 8, hazardRatio = 0.7, plannedEvents = 250, maxNumberOfSubjects = 400,
    accrualTime = c(0, 24), dropoutRate1 = 0.05, dropoutRate2 = 0.05, dropoutTime = 12, directionUpper = FALSE,
    maxNumberOfIterations = 10000, seed = 1))[["elapsed"]]
cat(seconds, sim$overallReject, "\\n")
"""  # rpact's simulation of the trial-engine row's fixed design ("piecewise"): seconds inside R, power


def _rpact_design() -> dict:
    """rpact's 3-look design (``RPACT_SCRIPT``) as a ``trial:`` mapping: piecewise-exponential arms,
    median 8 months in control, HR 0.7, 400 patients over 24 months, looks at 100, 200 and 300
    deaths, O'Brien-Fleming spending and beta-spending futility, 10,000 trials."""
    designs = _trial_designs()
    return {**designs["group_sequential"], "name": "bench_rpact", "arms": designs["piecewise"]["arms"]}


def command_seconds(args: list[str], runs: int = COMMAND_RUNS, env: dict[str, str] | None = None,
                    program: list[str] | None = None) -> dict[str, float]:
    """Median wall-clock and CPU seconds (user + system, the process and its children) of a
    whole command run ``runs`` times, each a fresh process (``python -m simulator ARGS`` by
    default, as ``inosim ARGS``; ``program`` to run another)."""
    import resource

    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([*(program or [sys.executable, "-m", "simulator"]), *args], capture_output=True,
                              text=True, env={**os.environ, **(env or {})})
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark command {args} failed ({proc.returncode}):\n{proc.stderr}")
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "stdout": proc.stdout}


def rpact_seconds(folder: Path, runs: int = COMMAND_RUNS) -> dict[str, object] | None:
    """rpact's time for its 3-look design as a whole ``Rscript`` process, and its simulation time inside R
    for the trial-engine row's fixed design (median of ``runs``); None without R and rpact."""
    import shutil

    rscript = shutil.which("Rscript")
    if rscript is None or subprocess.run([rscript, "-e", "library(rpact)"], capture_output=True).returncode != 0:
        return None
    script = folder / "rpact.R"
    script.write_text(RPACT_SCRIPT)
    out = command_seconds([str(script)], runs, program=[rscript])
    version, rejections = out["stdout"].split()[:2]
    fixed = folder / "rpact_fixed.R"
    fixed.write_text(RPACT_FIXED_SCRIPT)
    inside = [command_seconds([str(fixed)], 1, program=[rscript])["stdout"].split() for _ in range(runs)]
    return {"wall": out["wall"], "cpu": out["cpu"], "version": version, "power": float(rejections),
            "fixed_seconds": statistics.median(float(seconds) for seconds, _ in inside),
            "fixed_power": float(inside[0][1])}


def command_rows(scenario_path: str | Path, say: Callable[[str], None]) -> dict[str, object]:
    """The whole-command rows of issue 19: ``inosim run`` warm start, ``compare A B``, ``trial``
    on rpact's design (and rpact itself when ``Rscript`` and rpact are installed), and the
    first ``trial`` in a fresh numba cache filled by ``inosim compile`` only, as after ``make run``."""
    import yaml

    from simulator.model.config import default_config_dir

    configs = default_config_dir()
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        say("whole command: inosim run (warm start)")
        row = command_seconds(["run", str(scenario_path), "--patients", str(START_PATIENTS)])
        out["run_command_seconds"], out["run_command_cpu_seconds"] = row["wall"], row["cpu"]
        say("whole command: inosim compare A.yaml B.yaml")
        row = command_seconds(["compare", str(configs / "label_dosing.yaml"), str(configs / "two_cycles_then_stop.yaml")])
        out["compare_seconds"], out["compare_cpu_seconds"] = row["wall"], row["cpu"]
        rpact_design = folder / "rpact_design.yaml"
        rpact_design.write_text(yaml.safe_dump({"trial": _rpact_design()}))
        # no null trials: rpact simulates the alternative only
        trial = ["trial", str(rpact_design), "--out", str(folder / "t.nc"), "--no-plots", "--null-trials", "0"]
        say("whole command: inosim trial, rpact's 3-look design (warm)")
        row = command_seconds(trial)
        out["trial_rpact_seconds"], out["trial_rpact_cpu_seconds"] = row["wall"], row["cpu"]
        say("rpact, the same design (when Rscript and rpact are installed)")
        rpact = rpact_seconds(folder)
        out["rpact"] = rpact
        out["trial_to_rpact"] = None if rpact is None else out["trial_rpact_seconds"] / rpact["wall"]
        say("first inosim trial after install: inosim compile into a fresh numba cache, then inosim trial")
        cache = {"NUMBA_CACHE_DIR": str(folder / "numba")}
        row = command_seconds(["compile"], runs=1, env=cache)
        out["compile_seconds"], out["compile_cpu_seconds"] = row["wall"], row["cpu"]
        first = folder / "first_design.yaml"
        first.write_text(yaml.safe_dump({"trial": _trial_designs()["group_sequential"]}))
        row = command_seconds(["trial", str(first), "--out", str(folder / "first.nc")], runs=1, env=cache)
        out["first_trial_seconds"], out["first_trial_cpu_seconds"] = row["wall"], row["cpu"]
    return out


# ---------------------------------------------------------------------------------------
# trials over the posterior ensemble (issue 17): assurance and EVSI
# ---------------------------------------------------------------------------------------

ASSURANCE_DRAWS = 400  # every draw of the shipped ensemble ...
ASSURANCE_TRIALS = 50  # ... x 50 trials of its own ...
ASSURANCE_SAMPLE_SIZE = 600  # ... of 600 strategy-arm patients, 3 looks
GOALS.update({
    "400 draws x 50 trials x 600, strategy arms, 3 looks (with each draw's truth) <= 20 s":
        ("assurance_seconds", "<=", 20.0),
    "EVSI by regression of those 20,000 trials <= 5 s": ("evsi_seconds", "<=", 5.0),
})


def assurance_seconds() -> dict[str, float]:
    """Wall and CPU seconds (all threads) of :func:`simulator.trial.assurance.simulate_assurance` on the
    benchmark's workload, and of :func:`simulator.sensitivity.evsi.value_of_trial` on its result (one
    timed run each after a warm-up on 2 draws: the workload takes seconds)."""
    from simulator.sensitivity.evsi import ensemble_draws, value_of_trial
    from simulator.trial.assurance import simulate_assurance
    from simulator.trial.design import Assurance, design_from_dict
    from simulator.trial.run import trial_arrays

    doc = {**_trial_designs()["group_sequential"], "name": "bench_assurance", "sample_size": ASSURANCE_SAMPLE_SIZE,
           "enrollment": {"rates": [25]}, "analyses": [{"events": 150}, {"events": 300}, {"events": 450}]}
    ta = trial_arrays(design_from_dict({"trial": doc}, "benchmark design assurance"))
    settings = Assurance(trials_per_draw=ASSURANCE_TRIALS)
    simulate_assurance(ta, ensemble_draws(ta, None, 2), settings=settings)  # compiles or loads the kernels
    draws = ensemble_draws(ta, None, ASSURANCE_DRAWS)
    wall, cpu = time.perf_counter(), time.process_time()
    ds = simulate_assurance(ta, draws, settings=settings)
    out = {"assurance_seconds": time.perf_counter() - wall, "assurance_cpu_seconds": time.process_time() - cpu}
    wall, cpu = time.perf_counter(), time.process_time()
    value_of_trial(ds)
    out.update(evsi_seconds=time.perf_counter() - wall, evsi_cpu_seconds=time.process_time() - cpu)
    return out


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock time of ``repeats`` calls of ``fn``, seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def kernel_patients_per_second(arrays: ModelArrays, n_patients: int, threads: int, repeats: int,
                               seed: int = SEED) -> float:
    """Kernel throughput with ``threads`` numba threads, writing into reused record arrays.

    Parameters
    ----------
    arrays : ModelArrays
        The scenario as the kernel sees it.
    n_patients, threads, repeats : int
        Patients per run, numba threads, timed runs.

    Returns
    -------
    float
        Patients per second (median run; the warm-up run is not timed).
    """
    import numba

    from simulator.model.simulation import run_kernel

    out = run_kernel(arrays, seed, 0, n_patients)  # compiles or loads the kernel, touches the pages
    saved = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        seconds = median_seconds(lambda: run_kernel(arrays, seed, 0, n_patients, out=out), repeats)
    finally:
        numba.set_num_threads(saved)
    return n_patients / seconds


def rng_floor_patients_per_second(draws_per_patient: float, n_patients: int, repeats: int,
                                  seed: int = SEED) -> float:
    """Patients per second if a patient cost only its uniforms from numpy's PCG64 (one thread).

    The uniforms are written into a reused buffer, in chunks of ``RNG_CHUNK``.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    total = round(draws_per_patient * n_patients)
    buffer = np.empty(min(total, RNG_CHUNK))

    def produce() -> None:
        left = total
        while left > 0:
            k = min(left, buffer.shape[0])
            rng.random(out=buffer[:k])
            left -= k

    produce()
    return n_patients / median_seconds(produce, repeats)


@njit(cache=True)
def sum_exp(x):
    """Sum of ``exp(-x[i])``: scalar libm ``exp`` calls as the kernel makes them (libm floor)."""
    total = 0.0
    for i in range(x.shape[0]):
        total += math.exp(-x[i])
    return total


@njit(cache=True)
def sum_log(x):
    """Sum of ``log(x[i])``: scalar libm ``log`` calls as the kernel makes them (libm floor)."""
    total = 0.0
    for i in range(x.shape[0]):
        total += math.log(x[i])
    return total


def libm_floor_patients_per_second(exp_per_patient: float, log_per_patient: float,
                                   repeats: int, seed: int = SEED) -> float:
    """Patients per second if a patient cost only its scalar libm ``exp`` and ``log`` calls."""
    x = np.random.Generator(np.random.PCG64(seed)).random(LIBM_SAMPLE)
    sum_exp(x)  # compile or load
    sum_log(x)
    per_exp = median_seconds(lambda: sum_exp(x), repeats) / LIBM_SAMPLE
    per_log = median_seconds(lambda: sum_log(x), repeats) / LIBM_SAMPLE
    return 1.0 / (exp_per_patient * per_exp + log_per_patient * per_log)


class _CountingMath:
    """Stands in for the kernel's ``math`` module, counting calls of the functions in ``counts``."""

    def __init__(self, counts: dict[str, int]):
        self._counts = counts

    def __getattr__(self, name: str):
        attr = getattr(math, name)
        if name not in self._counts:
            return attr

        def counted(*args):
            self._counts[name] += 1
            return attr(*args)

        return counted


def count_kernel_calls(arrays: ModelArrays, n_patients: int, seed: int = SEED) -> dict[str, float]:
    """Generator draws and libm ``exp``/``log`` calls per patient, counted on the kernel itself.

    The kernel runs as plain Python (``NUMBA_DISABLE_JIT=1`` must be set before numba
    is imported; :func:`kernel_call_counts` does this in a subprocess) with its
    generator and its ``math`` module wrapped in counters, so every draw of every
    branch taken is counted, for the same patients the jitted kernel simulates.

    Returns
    -------
    dict
        ``{"draws": ..., "exp": ..., "log": ...}``, mean calls per patient.
    """
    import numba

    from simulator.model import kernel as K
    from simulator.model.simulation import run_kernel

    if not numba.config.DISABLE_JIT:
        raise RuntimeError("counting runs the kernel as plain Python: set NUMBA_DISABLE_JIT=1")
    counts = {"draws": 0, "exp": 0, "log": 0}
    real_draw = K.draw

    def counted_draw(key, stream):
        counts["draws"] += 1
        return real_draw(key, stream)

    K.draw, K.math = counted_draw, _CountingMath(counts)
    try:
        with np.errstate(over="ignore"):  # the uint64 hash wraps around by design
            run_kernel(arrays, seed, 0, n_patients)
    finally:
        K.draw, K.math = real_draw, math
    return {name: count / n_patients for name, count in counts.items()}


def psa_parameter_sets(par: np.ndarray, n_sets: int, seed: int = SEED) -> np.ndarray:
    """``n_sets`` parameter vectors around ``par``: each value times exp(PSA_JITTER_SD z), z ~ N(0, 1).

    A timing workload with realistic spread, not a calibrated PSA ensemble.
    """
    z = np.random.Generator(np.random.PCG64(seed)).standard_normal((n_sets, par.shape[0]))
    return par * np.exp(PSA_JITTER_SD * z)


def psa_seconds(arrays: ModelArrays, n_patients: int, n_sets: int, repeats: int,
                seed: int = SEED) -> float:
    """Median time of simulating ``n_patients`` under each of ``n_sets`` parameter sets.

    One :func:`simulator.model.simulation.run_parameter_sets` call on all numba threads,
    including the allocation of its record arrays.
    """
    from simulator.model.simulation import run_parameter_sets

    sets = psa_parameter_sets(arrays.par, n_sets, seed)
    run_parameter_sets(arrays, sets, seed, n_patients)  # compiles or loads the kernel
    return median_seconds(lambda: run_parameter_sets(arrays, sets, seed, n_patients), repeats)


# ---- measurements in fresh interpreters: the probe runs in the child, the caller in the parent
def _python(code: str, env: dict[str, str] | None = None) -> str:
    """Run ``python -c code`` in a fresh interpreter; its standard output."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def _probe(call: str, env: dict[str, str] | None = None):
    """The JSON value printed by ``simulator.benchmark.<call>`` run in a fresh interpreter."""
    out = _python(f"import json; from simulator import benchmark as b; print(json.dumps(b.{call}))", env)
    return json.loads(out.splitlines()[-1])


def call_count_probe(scenario_path: str, n_patients: int, seed: int) -> dict[str, float]:
    """Child side of :func:`kernel_call_counts`."""
    from simulator import load_scenario
    from simulator.model.simulation import model_arrays

    return count_kernel_calls(model_arrays(load_scenario(scenario_path)), n_patients, seed)


def kernel_call_counts(scenario_path: str | Path, n_patients: int = COUNT_PATIENTS,
                       seed: int = SEED) -> dict[str, float]:
    """:func:`count_kernel_calls` on a scenario, in a subprocess with the JIT disabled."""
    return _probe(f"call_count_probe({str(scenario_path)!r}, {n_patients}, {seed})",
                  env={"NUMBA_DISABLE_JIT": "1"})


def compile_probe(scenario_path: str) -> float:
    """Child side of :func:`cold_compile_seconds`: seconds of the first kernel call."""
    from simulator import load_scenario
    from simulator.model.simulation import model_arrays, run_kernel

    arrays = model_arrays(load_scenario(scenario_path))
    t0 = time.perf_counter()
    run_kernel(arrays, SEED, 0, 1)
    return time.perf_counter() - t0


def cold_compile_seconds(scenario_path: str | Path) -> float:
    """Time to JIT-compile the patient kernel from scratch (a fresh, empty numba cache)."""
    with tempfile.TemporaryDirectory() as cache:
        return _probe(f"compile_probe({str(scenario_path)!r})", env={"NUMBA_CACHE_DIR": cache})


def start_probe(scenario_path: str, stamp_path: str) -> int:
    """Child side of :func:`cached_start_seconds`: ``inosim run`` with a time stamp.

    Runs ``inosim run`` on ``START_PATIENTS`` patients (output discarded) and writes
    the wall-clock time at which its first kernel call returned to ``stamp_path``.
    """
    import contextlib
    import io
    import runpy

    from simulator.model import kernel as K

    kernel = K.simulate_patients

    def stamped(*args):
        kernel(*args)
        Path(stamp_path).write_text(repr(time.time()))
        K.simulate_patients = kernel

    K.simulate_patients = stamped
    sys.argv = ["inosim", "run", scenario_path, "--patients", str(START_PATIENTS)]
    with contextlib.redirect_stdout(io.StringIO()):
        try:  # ``python -m simulator run ...``, the command itself (no import of the CLI here)
            runpy.run_module("simulator", run_name="__main__")
        except SystemExit as stop:
            return int(stop.code or 0)
    return 0


def cached_start_seconds(scenario_path: str | Path, runs: int = START_RUNS) -> float:
    """Median time from launching ``inosim run`` until its first kernel call has returned.

    The numba cache must be warm (run the kernel once first). The time includes the
    interpreter's start, all imports, reading the scenario and targets, loading the
    cached machine code and simulating ``START_PATIENTS`` patients (well under 1 ms).
    """
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        stamp = Path(tmp) / "stamp"
        code = ("import sys; from simulator.benchmark import start_probe; "
                f"sys.exit(start_probe({str(scenario_path)!r}, {str(stamp)!r}))")
        for _ in range(runs):
            t0 = time.time()
            _python(code)
            times.append(float(stamp.read_text()) - t0)
    return statistics.median(times)


def _resident_bytes(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) resident memory of this process (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * KIBIBYTE
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_probe(scenario_path: str, n_patients: int, seed: int) -> dict[str, int]:
    """Child side of :func:`peak_memory`."""
    from simulator import load_scenario, simulate

    scenario = load_scenario(scenario_path)
    simulate(scenario, n_patients=WARMUP_PATIENTS, seed=seed)  # imports, kernel loading or compiling
    gc.collect()
    Path("/proc/self/clear_refs").write_text(CLEAR_PEAK_RSS)
    before = _resident_bytes("VmRSS")
    ds = simulate(scenario, n_patients=n_patients, seed=seed)
    return {"peak_bytes": _resident_bytes("VmHWM") - before, "output_bytes": int(ds.nbytes)}


def peak_memory(scenario_path: str | Path, n_patients: int, seed: int = SEED) -> dict[str, int]:
    """Peak memory :func:`simulator.simulate` adds for ``n_patients``, and its Dataset's size.

    Measured in a fresh interpreter after a small warm-up run: the peak resident set
    during the run minus the resident set before it (Linux).

    Returns
    -------
    dict
        ``peak_bytes`` (added at the peak) and ``output_bytes`` (``Dataset.nbytes``).
    """
    return _probe(f"memory_probe({str(scenario_path)!r}, {n_patients}, {seed})")


def machine() -> dict[str, object]:
    """CPUs, CPU model, RAM and numba threads of this machine."""
    import numba

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpus": os.cpu_count(), "cpu_model": model, "ram_gib": round(ram / (1 << 30), 1),
            "numba_threads": numba.config.NUMBA_NUM_THREADS,
            "python": platform.python_version(), "numba": numba.__version__, "numpy": np.__version__}


def run_benchmark(scenario_path: str | Path, n_patients: int = DEFAULT_PATIENTS,
                  repeats: int = DEFAULT_REPEATS,
                  progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """Every measurement of ``inosim bench`` on one scenario.

    Parameters
    ----------
    scenario_path : str or Path
        Scenario YAML.
    n_patients : int
        Patients per throughput and memory run.
    repeats : int
        Timed runs per throughput figure (median reported).
    progress : callable, optional
        Called with the name of each stage as it starts.

    Returns
    -------
    dict
        Plain numbers (seconds, patients/second, bytes as MB per million patients),
        the machine, and ``goals``: for each goal its measured key, limit and whether
        it is met (``None`` if not measured, e.g. 2 threads on a 1-CPU machine).
    """
    import numba

    from simulator import load_scenario
    from simulator.model.files import derive_scenario
    from simulator.model.kernel import TREATMENTS
    from simulator.model.simulation import model_arrays

    say = progress or (lambda stage: None)
    scenario = load_scenario(scenario_path)
    arrays = model_arrays(scenario)
    say("kernel throughput, 1 thread")
    pps_1t = kernel_patients_per_second(arrays, n_patients, 1, repeats)
    by_treatment = {}
    for treatment in TREATMENTS:
        say(f"kernel throughput, 1 thread, {treatment} (the scenario's patients)")
        changed = derive_scenario(scenario, {"treatment": treatment}, "benchmark", warn=False)
        by_treatment[treatment] = kernel_patients_per_second(model_arrays(changed), n_patients, 1, repeats)
    pps_2t = None
    if numba.config.NUMBA_NUM_THREADS >= 2:
        say("kernel throughput, 2 threads")
        pps_2t = kernel_patients_per_second(arrays, n_patients, 2, repeats)
    say("counting draws and libm calls (kernel as plain Python)")
    calls = kernel_call_counts(scenario_path)
    say("random-number and libm floors")
    rng_floor = rng_floor_patients_per_second(calls["draws"], n_patients, repeats)
    libm_floor = libm_floor_patients_per_second(calls["exp"], calls["log"], repeats)
    say(f"PSA workload, {PSA_PATIENTS:,} patients x {PSA_SETS:,} parameter sets")
    psa = psa_seconds(arrays, PSA_PATIENTS, PSA_SETS, repeats)
    say("cold JIT compilation (fresh numba cache)")
    cold = cold_compile_seconds(scenario_path)
    say("`inosim run` start-up (warm cache)")
    start = cached_start_seconds(scenario_path)
    say("peak memory")
    memory = peak_memory(scenario_path, n_patients)
    say(f"trial engine, {TRIAL_TRIALS:,} trials x {TRIAL_SAMPLE_SIZE} patients")
    trials = trial_seconds(repeats)
    commands = command_rows(scenario_path, say)
    say(f"trials over draws, {ASSURANCE_DRAWS} draws x {ASSURANCE_TRIALS} trials x {ASSURANCE_SAMPLE_SIZE} patients")
    assurance = assurance_seconds()
    per_million = MILLION / n_patients / MEBIBYTE
    results: dict[str, object] = {
        "scenario": str(scenario_path),
        "machine": machine(),
        "patients": n_patients,
        "repeats": repeats,
        "patients_per_second_1t": pps_1t,
        "patients_per_second_2t": pps_2t,
        "patients_per_second_1t_by_treatment": by_treatment,
        "speedup_2t": None if pps_2t is None else pps_2t / pps_1t,
        "draws_per_patient": calls["draws"],
        "libm_calls_per_patient": calls["exp"] + calls["log"],
        "rng_floor_patients_per_second": rng_floor,
        "kernel_to_rng_floor": rng_floor / pps_1t,
        "libm_floor_patients_per_second": libm_floor,
        "kernel_to_rng_plus_libm_floor": 1.0 / pps_1t / (1.0 / rng_floor + 1.0 / libm_floor),
        "psa_1000x1000_seconds": psa,
        "hesim_psa_1000x1000_seconds": HESIM_PSA_SECONDS,
        "cold_compile_seconds": cold,
        "cached_start_seconds": start,
        "peak_memory_mib_per_million": memory["peak_bytes"] * per_million,
        "output_mib_per_million": memory["output_bytes"] * per_million,
        "memory_to_output": memory["peak_bytes"] / memory["output_bytes"],
        **trials,
        **commands,
        **assurance,
        "load_average_1min": os.getloadavg()[0],
    }
    results["goals"] = goal_status(results)
    return results


def goal_status(results: dict[str, object]) -> dict[str, dict[str, object]]:
    """Each goal of :data:`GOALS` with its measured value and whether it is met."""
    status = {}
    for goal, (key, op, limit) in {**GOALS, **COMMAND_GOALS}.items():
        value = results.get(key)
        met = None if value is None else (value <= limit if op == "<=" else value >= limit)
        status[goal] = {"key": key, "limit": limit, "value": value, "met": met}
    return status


def format_command_rows(r: dict[str, object]) -> list[str]:
    """The report's lines of :func:`command_rows`: wall-clock and CPU seconds of whole commands."""
    def row(title: str, key: str) -> str:
        return f"{title:<33}{r[key]:.2f} s ({r[key.replace('_seconds', '_cpu_seconds')]:.2f} s of CPU)"

    rpact = r["rpact"]
    vs = ("  rpact: not measured (no Rscript with rpact on this machine)" if rpact is None else
          f"  rpact {rpact['version']}: {rpact['wall']:.2f} s ({rpact['cpu']:.2f} s of CPU), power "
          f"{rpact['power']:.1%}; ratio {r['trial_to_rpact']:.2f}")
    return [
        f"whole commands, each a process (median of {COMMAND_RUNS}; wall-clock, then CPU: the machine may be shared):",
        row("  inosim run (1,000 patients)", "run_command_seconds"),
        row("  inosim compare A.yaml B.yaml", "compare_seconds"),
        row("  inosim trial, rpact's design", "trial_rpact_seconds") + ", 10,000 x 400, 3 looks, no plots",
        vs,
        row("  inosim compile, fresh cache", "compile_seconds") + " (once, by `make run`)",
        row("  first inosim trial after it", "first_trial_seconds") + ", 10,000 x 400, strategy arms, 3 looks",
    ]


def format_report(results: dict[str, object]) -> str:
    """The human-readable report of :func:`run_benchmark`'s results."""
    r = results
    m = r["machine"]

    def rate(value) -> str:
        return "n/a" if value is None else f"{value:,.0f} patients/s"

    lines = [
        f"InOSim benchmark: {r['scenario']}",
        f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, "
        f"{m['numba_threads']} numba threads; "
        f"Python {m['python']}, numba {m['numba']}, numpy {m['numpy']}",
        f"throughput: median of {r['repeats']} runs of {r['patients']:,} patients, JIT excluded",
        "",
        f"kernel, 1 thread                 {rate(r['patients_per_second_1t'])}",
        f"kernel, 2 threads                {rate(r['patients_per_second_2t'])}"
        + ("" if r["speedup_2t"] is None else f"  ({r['speedup_2t']:.2f}x)"),
        *(f"  1 thread, {t:<20} {rate(v)}" for t, v in r["patients_per_second_1t_by_treatment"].items()),
        f"draws per patient (counted)      {r['draws_per_patient']:.2f}",
        f"random-number floor (PCG64)      {rate(r['rng_floor_patients_per_second'])}"
        f"  (kernel takes {r['kernel_to_rng_floor']:.2f}x its time)",
        f"libm exp/log calls per patient   {r['libm_calls_per_patient']:.2f}"
        f"  (alone: {rate(r['libm_floor_patients_per_second'])}; kernel takes "
        f"{r['kernel_to_rng_plus_libm_floor']:.2f}x draws + libm)",
        f"PSA 1,000 patients x 1,000 sets  {r['psa_1000x1000_seconds']:.3f} s"
        f"  (hesim: {r['hesim_psa_1000x1000_seconds']:g} s)",
        f"cold JIT compilation             {r['cold_compile_seconds']:.2f} s",
        f"`inosim run` warm start          {r['cached_start_seconds']:.2f} s",
        f"peak memory per million patients {r['peak_memory_mib_per_million']:.0f} MiB"
        f"  (output arrays {r['output_mib_per_million']:.0f} MiB: {r['memory_to_output']:.2f}x)",
        f"trials, piecewise-exponential    {r['trial_piecewise_seconds']:.2f} s for {TRIAL_TRIALS:,} x "
        f"{TRIAL_SAMPLE_SIZE}, log-rank + Cox  ("
        + (f"rpact, inside R: {r['rpact']['fixed_seconds']:.2f} s" if r.get("rpact") else "rpact: not measured")
        + ")",
        f"trials, strategy arms            {r['trial_strategies_seconds']:.2f} s, log-rank + Cox + RMST",
        f"trials, 3 looks, spending        {r['trial_group_sequential_seconds']:.2f} s, futility by beta spending"
        "  (rpact on its own design: whole commands, below)",
        f"boundaries of one design         {1000 * r['boundaries_seconds']:.1f} ms (3 looks, futility)",
        *format_command_rows(r),
        f"trials over draws (assurance)    {r['assurance_seconds']:.1f} s (CPU {r['assurance_cpu_seconds']:.1f} s) "
        f"for {ASSURANCE_DRAWS} draws x {ASSURANCE_TRIALS} x {ASSURANCE_SAMPLE_SIZE}, 3 looks, truth per draw",
        f"EVSI by regression               {r['evsi_seconds']:.2f} s (CPU {r['evsi_cpu_seconds']:.2f} s)",
        f"load average (1 min) at the end  {r['load_average_1min']:.2f} on {m['cpus']} CPUs",
        "",
        "goals:",
    ]
    for goal, s in r["goals"].items():
        verdict = {True: "met", False: "NOT met", None: "not measured"}[s["met"]]
        lines.append(f"  {verdict:<12} {goal}")
    return "\n".join(lines)
