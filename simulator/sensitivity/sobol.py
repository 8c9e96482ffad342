"""Variance-based (Sobol) indices with SALib, with a convergence check on nested sub-samples.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from simulator.analysis.outcomes import CONFIDENCE
from simulator.model.config import Scenario
from simulator.sensitivity.common import (
    ANALYZE_SEED_OFFSET,
    CONVERGENCE_TOLERANCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SOBOL_N,
    INDEX_TOLERANCE,
    MIN_CONVERGENCE_N,
    SOBOL_INDICES,
    parameter_coords,
    results_dataset,
    unit_problem,
    variable,
    warn,
)
from simulator.sensitivity.models import (
    DEFAULT_PATIENTS,
    DEFAULT_REPLICATES,
    DEFAULT_SEED,
    Model,
    Output,
    as_model,
    resolve_parameters,
)


# ----------------------------------------------------------------------------- Sobol
def convergence_sizes(n: int) -> list[int]:
    """Base sample sizes of the convergence check: n, n/2, n/4, ... down to :data:`MIN_CONVERGENCE_N`."""
    sizes = [n]
    while sizes[0] // 2 >= MIN_CONVERGENCE_N:
        sizes.insert(0, sizes[0] // 2)
    return sizes


def _sobol_indices(problem: dict, y: np.ndarray, confidence: float, resamples: int, seed: int) -> np.ndarray:
    """SALib's first- and total-order indices with bootstrap CIs: shape (k, 4), NaN if y is undefined or flat."""
    from SALib.analyze import sobol as salib_sobol

    if not np.all(np.isfinite(y)) or np.ptp(y) == 0:
        return np.full((problem["num_vars"], len(SOBOL_INDICES)), np.nan)
    si = salib_sobol.analyze(problem, y, calc_second_order=False, num_resamples=resamples,
                             conf_level=confidence, seed=seed + ANALYZE_SEED_OFFSET)
    return np.stack([si[key] for key in SOBOL_INDICES], axis=-1)


def sobol(scenario: Scenario | Model, problem: Sequence, metrics: Sequence | None, n: int = DEFAULT_SOBOL_N, *,
          confidence: float = CONFIDENCE, resamples: int = DEFAULT_RESAMPLES, strategies: Mapping | None = None,
          patients: int = DEFAULT_PATIENTS, replicates: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
          ensemble: str | Path | xr.Dataset | None = None,
          progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """Sobol first- and total-order indices (SALib: Sobol' sequence sampling, Saltelli-Jansen estimators).

    Parameters
    ----------
    scenario, problem, metrics
        As ``scenario``, ``parameters``, ``metrics`` of :func:`one_way`; each parameter
        follows its spec's distribution.
    n : int
        Base samples, a power of 2; the model runs (k + 2) n parameter sets.
    confidence : float
        Level of the bootstrap confidence intervals.
    resamples : int
        Bootstrap resamples.
    strategies, patients, replicates, seed, ensemble, progress
        See :func:`one_way`; ``seed`` also seeds the sampling and the bootstrap.

    Returns
    -------
    xarray.Dataset
        Per output ``o``: ``o`` (parameter, time, index) with ``index`` = S1, S1_conf,
        ST, ST_conf (``_conf``: half-width of the CI); ``o_convergence``
        (base_samples, parameter, time, index): the same on the first n/2, n/4, ...
        base samples; ``o_samples`` (sample, time): the figure of each parameter set
        (mean over replicates). ``inputs`` (sample, parameter): the sampled values.
        ``attrs['warnings']`` lists what :class:`SensitivityWarning` said.
    """
    from SALib.sample import sobol as salib_sample

    options = dict(strategies=strategies, patients=patients, replicates=replicates, seed=seed, ensemble=ensemble)
    model = as_model(scenario, metrics, options)
    params = resolve_parameters(model, problem)
    if n < 2 or n & (n - 1):
        raise ValueError(f"n must be a power of 2 (Sobol' sequences balance only then), got {n}")
    unit = unit_problem(params)
    u = salib_sample.sample(unit, n, calc_second_order=False, scramble=True, seed=seed)
    values = np.column_stack([p.ppf(u[:, j]) for j, p in enumerate(params)])
    results = model.evaluate(unit["names"], values, progress)
    sizes = convergence_sizes(n)
    step = len(params) + 2
    data_vars = {"inputs": (("sample", "parameter"), values, {"long_name": "sampled parameter values"})}
    messages: list[str] = []
    for o in model.outputs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            y = np.nanmean(results[o.name], axis=-1)  # (sets, times)
        idx = np.array([[_sobol_indices(unit, y[:size * step, t], confidence, resamples, seed)
                         for t in range(y.shape[1])] for size in sizes])  # (sizes, times, k, 4)
        idx = idx.transpose(0, 2, 1, 3)  # (sizes, k, times, 4)
        _check_sobol(o, model.times, [p.name for p in params], idx, n, messages)
        data_vars[o.name] = variable(o, ("parameter", "time", "index"), idx[-1], "Sobol indices", "1")
        data_vars[f"{o.name}_convergence"] = variable(o, ("base_samples", "parameter", "time", "index"), idx,
                                                       "Sobol indices on the first base samples", "1")
        data_vars[f"{o.name}_samples"] = variable(o, ("sample", "time"), y, "figure of each sampled set")
    coords = {"index": list(SOBOL_INDICES), "base_samples": sizes, "sample": np.arange(len(values))}
    return results_dataset("sobol", model, data_vars, parameter_coords(params) | coords,
                    {"seed": seed, "n": n, "confidence": confidence, "resamples": resamples,
                     "estimator": "SALib.analyze.sobol (Saltelli 2010 first order, Jansen total order)"}, messages)


def _check_sobol(o: Output, times: Sequence[float], names: list[str], idx: np.ndarray, n: int,
                 messages: list[str]) -> None:
    """Warn when indices leave [0, 1] (n too small), move between n/2 and n, or are undefined."""
    where = [f" at {t:g} months" for t in times] if o.timed else [""]
    final = idx[-1]  # (k, times, 4)
    for t, at in enumerate(where):
        if np.all(np.isnan(final[:, t])):
            warn(messages, f"sobol: {o.name}{at}: no indices (the figure is undefined for some sets or never "
                            "varies)")
            continue
        point = final[:, t][:, [0, 2]]  # S1, ST
        bad = [f"{kind} of {names[j]} = {point[j, c]:.3f}" for j in range(len(names)) for c, kind in
               enumerate(("S1", "ST")) if not -INDEX_TOLERANCE <= point[j, c] <= 1 + INDEX_TOLERANCE]
        if bad:
            warn(messages, f"sobol: {o.name}{at}: indices outside [0, 1] ({'; '.join(bad)}): n = {n} is too "
                            "small for stable indices; increase n (or replicates, if the figure is noisy)")
        if len(idx) > 1:
            moved = float(np.nanmax(np.abs(idx[-1][:, t][:, [0, 2]] - idx[-2][:, t][:, [0, 2]])))
            if moved > CONVERGENCE_TOLERANCE:
                warn(messages, f"sobol: {o.name}{at}: indices moved by up to {moved:.3f} between n = {n // 2} "
                                f"and n = {n}: not converged; increase n")
