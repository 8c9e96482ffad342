"""One-way sensitivity analysis (tornado): each parameter alone over its range.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from simulator.analysis.trial_metrics import mc_summary
from simulator.model.config import Scenario
from simulator.sensitivity.common import (
    DEFAULT_POINTS,
    STATISTICS,
    parameter_coords,
    results_dataset,
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


# ----------------------------------------------------------------------------- one-way
def one_way(scenario: Scenario | Model, parameters: Sequence, metrics: Sequence | None, *,
            points: int = DEFAULT_POINTS, strategies: Mapping | None = None,
            patients: int = DEFAULT_PATIENTS, replicates: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
            ensemble: str | Path | xr.Dataset | None = None,
            progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """One-way sensitivity: each parameter alone over its range, the others at baseline.

    Parameters
    ----------
    scenario : Scenario or model
        The base scenario (or a :class:`SimulatorModel`/:class:`FunctionModel`).
    parameters : sequence
        Parameter specs; the range is ``low``-``high`` or the central 95% of the distribution.
    metrics : sequence
        Metric specs (see :class:`MetricSpec`).
    points : int
        Values per parameter, evenly spaced over its range (2: the two ends).
    strategies, patients, replicates, seed, ensemble
        See :class:`SimulatorModel`.
    progress : callable, optional
        ``progress(done, total)`` in parameter sets.

    Returns
    -------
    xarray.Dataset
        Per output ``o`` (``time`` only for survival curves), each with
        ``statistic`` = estimate, lower, upper (mean over replicates, Monte Carlo CI):
        ``o`` (parameter, point, time, statistic), the figure at each value;
        ``o_change`` (same dims), the paired change from the baseline run;
        ``o_baseline`` (time, statistic). Coordinates: ``value`` (parameter, point)
        the parameter's value, ``low``/``high`` the range.
    """
    options = dict(strategies=strategies, patients=patients, replicates=replicates, seed=seed, ensemble=ensemble)
    model = as_model(scenario, metrics, options)
    params = resolve_parameters(model, parameters)
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    k = len(params)
    grid = np.array([np.linspace(*p.range, points) for p in params])
    values = np.tile([p.baseline for p in params], (1 + k * points, 1))
    for j in range(k):
        values[1 + j * points: 1 + (j + 1) * points, j] = grid[j]
    results = model.evaluate([p.name for p in params], values, progress)
    data_vars = {}
    for o in model.outputs:
        r = results[o.name]
        base, at = r[0], r[1:].reshape(k, points, *r.shape[1:])
        dims = ("parameter", "point", "time", "statistic")
        data_vars[o.name] = variable(o, dims, np.stack(mc_summary(at)[:3], axis=-1), "value at each point")
        data_vars[f"{o.name}_change"] = variable(o, dims, np.stack(mc_summary(at - base)[:3], axis=-1),
                                                  "paired change from the baseline run")
        data_vars[f"{o.name}_baseline"] = variable(o, ("time", "statistic"), np.stack(mc_summary(base)[:3], -1),
                                                    "value with every parameter at baseline")
    ranges = np.array([p.range for p in params])
    coords = {"point": np.arange(points), "statistic": list(STATISTICS),
              "value": (("parameter", "point"), grid), "low": ("parameter", ranges[:, 0]),
              "high": ("parameter", ranges[:, 1])}
    return results_dataset("one_way", model, data_vars, parameter_coords(params) | coords,
                    {"seed": seed, "points": points}, [])
