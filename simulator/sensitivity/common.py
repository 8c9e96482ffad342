"""What every sensitivity method shares: sizes, index names, the results Dataset.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from simulator.sensitivity.distributions import (
    UncertainParameter,
)
from simulator.sensitivity.models import (
    Model,
    Output,
)

DEFAULT_POINTS = 2  # one-way: values per parameter (2: the two ends of its range)
DEFAULT_SOBOL_N = 256  # Sobol: base samples (a power of 2); (k + 2) n model runs
DEFAULT_MORRIS_N = 20  # Morris: trajectories; (k + 1) n model runs
DEFAULT_LEVELS = 4  # Morris grid levels
DEFAULT_RESAMPLES = 200  # bootstrap resamples of SALib's confidence intervals
MIN_CONVERGENCE_N = 32  # smallest sub-sample of the Sobol convergence check
INDEX_TOLERANCE = 0.05  # a Sobol index below -tol or above 1 + tol means n is too small
CONVERGENCE_TOLERANCE = 0.05  # largest change of an index between n/2 and n deemed converged
ANALYZE_SEED_OFFSET = 1  # SALib's analyze treats seed 0 as "unseeded": it gets seed + 1
STATISTICS = ("estimate", "lower", "upper")  # a figure with its Monte Carlo CI
SOBOL_INDICES = ("S1", "S1_conf", "ST", "ST_conf")  # *_conf: half-width of the bootstrap CI
MORRIS_INDICES = ("mu", "mu_star", "sigma", "mu_star_conf")
PSA_SUMMARY = ("mean", "sd", "q025", "median", "q975", "prob_positive", "prob_positive_lower",
               "prob_positive_upper", "prob_positive_mc_low", "prob_positive_mc_high")


class SensitivityWarning(UserWarning):
    """Sensitivity indices that should not be trusted as they stand (e.g. n too small)."""


# ----------------------------------------------------------------------------- results
def timed(o: Output, dims: tuple[str, ...], data: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """Dims and data with the ``time`` axis kept for timed outputs, dropped (length 1) otherwise."""
    if o.timed:
        return dims, data
    axis = dims.index("time")
    return dims[:axis] + dims[axis + 1:], np.take(data, 0, axis=axis)


def variable(o: Output, dims: tuple[str, ...], data: np.ndarray, what: str, unit: str | None = None
              ) -> tuple[tuple[str, ...], np.ndarray, dict]:
    """A data variable of an output: (dims, data, attrs with long name and unit)."""
    dims, data = timed(o, dims, data)
    return dims, data, {"long_name": f"{o.label}: {what}", "units": o.unit if unit is None else unit}


def parameter_coords(params: Sequence[UncertainParameter]) -> dict:
    """Coordinates along ``parameter``: names, distributions and baseline values."""
    return {"parameter": [p.name for p in params],
            "distribution": ("parameter", [p.describe() for p in params]),
            "baseline_value": ("parameter", [p.baseline for p in params])}


def results_dataset(method: str, model: Model, data_vars: dict, coords: dict, attrs: dict, messages: list[str]
             ) -> xr.Dataset:
    """The results Dataset: variables, coordinates (the time points added) and the common attributes."""
    from simulator import __version__

    coords = dict(coords)
    if any(o.timed for o in model.outputs):
        coords["time"] = ("time", list(model.times), {"units": "month", "long_name": "months from the first dose"})
    outputs = [{"name": o.name, "label": o.label, "units": o.unit, "strategy": o.strategy, "minus": o.minus}
               for o in model.outputs]
    return xr.Dataset(data_vars, coords=coords, attrs={
        "title": f"InOSim sensitivity analysis ({method})",
        "method": method,
        "outputs": json.dumps(outputs),
        "warnings": json.dumps(messages),
        "inosim_version": __version__,
        **model.attrs(),
        **attrs,
    })


def warn(messages: list[str], text: str) -> None:
    messages.append(text)
    warnings.warn(text, SensitivityWarning, stacklevel=4)  # the caller of sobol()


def unit_problem(params: Sequence[UncertainParameter]) -> dict:
    """SALib's problem on the unit hypercube (columns are mapped onto the parameters afterwards)."""
    return {"num_vars": len(params), "names": [p.name for p in params], "bounds": [[0.0, 1.0]] * len(params)}
