"""Morris elementary-effects screening with SALib.
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
    DEFAULT_LEVELS,
    DEFAULT_MORRIS_N,
    DEFAULT_RESAMPLES,
    MORRIS_INDICES,
    parameter_coords,
    results_dataset,
    unit_problem,
    variable,
)
from simulator.sensitivity.models import (
    DEFAULT_PATIENTS,
    DEFAULT_REPLICATES,
    DEFAULT_SEED,
    Model,
    as_model,
    resolve_parameters,
)


# ----------------------------------------------------------------------------- Morris
def morris(scenario: Scenario | Model, problem: Sequence, metrics: Sequence | None, n: int = DEFAULT_MORRIS_N, *,
           levels: int = DEFAULT_LEVELS, confidence: float = CONFIDENCE, resamples: int = DEFAULT_RESAMPLES,
           strategies: Mapping | None = None, patients: int = DEFAULT_PATIENTS,
           replicates: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
           ensemble: str | Path | xr.Dataset | None = None,
           progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """Morris elementary effects (SALib) over each parameter's one-way range: a cheap screen.

    Parameters
    ----------
    scenario, problem, metrics
        As for :func:`sobol`; each parameter moves over its one-way range (bounds, or
        the central 95% of its distribution).
    n : int
        Trajectories; the model runs (k + 1) n parameter sets.
    levels : int
        Grid levels of the trajectories.
    confidence, resamples, strategies, patients, replicates, seed, ensemble, progress
        See :func:`sobol`.

    Returns
    -------
    xarray.Dataset
        Per output ``o``: ``o`` (parameter, time, index) with ``index`` = mu, mu_star,
        sigma, mu_star_conf, in the figure's unit per whole range of the parameter;
        ``o_samples`` (sample, time). ``inputs`` (sample, parameter).
    """
    from SALib.analyze import morris as salib_analyze
    from SALib.sample import morris as salib_sample

    options = dict(strategies=strategies, patients=patients, replicates=replicates, seed=seed, ensemble=ensemble)
    model = as_model(scenario, metrics, options)
    params = resolve_parameters(model, problem)
    unit = unit_problem(params)
    u = salib_sample.sample(unit, n, num_levels=levels, seed=seed)
    ranges = np.array([p.range for p in params])
    values = ranges[:, 0] + u * (ranges[:, 1] - ranges[:, 0])
    results = model.evaluate(unit["names"], values, progress)
    data_vars = {"inputs": (("sample", "parameter"), values, {"long_name": "parameter values of the trajectories"})}
    for o in model.outputs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            y = np.nanmean(results[o.name], axis=-1)
        idx = np.full((len(params), y.shape[1], len(MORRIS_INDICES)), np.nan)
        for t in range(y.shape[1]):
            if np.all(np.isfinite(y[:, t])):
                si = salib_analyze.analyze(unit, u, y[:, t], num_resamples=resamples, conf_level=confidence,
                                           num_levels=levels, seed=seed + ANALYZE_SEED_OFFSET)
                idx[:, t] = np.stack([si[key] for key in MORRIS_INDICES], axis=-1)
        data_vars[o.name] = variable(o, ("parameter", "time", "index"), idx,
                                      "elementary effects per whole range of the parameter")
        data_vars[f"{o.name}_samples"] = variable(o, ("sample", "time"), y, "figure of each trajectory point")
    coords = {"index": list(MORRIS_INDICES), "sample": np.arange(len(values)),
              "low": ("parameter", ranges[:, 0]), "high": ("parameter", ranges[:, 1])}
    return results_dataset("morris", model, data_vars, parameter_coords(params) | coords,
                    {"seed": seed, "n": n, "levels": levels, "confidence": confidence, "resamples": resamples}, [])
