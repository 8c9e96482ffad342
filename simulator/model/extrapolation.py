"""Warnings for scenarios far outside what the model was calibrated on.

The rule, defined here once (and documented in ``docs/scenarios.md``):

- **Doses.** Every figure the model was fitted to comes from patients dosed at or
  below the label: :data:`LABEL_DAY_DOSE` mg/m2 on one day (cycle 1, day 1) and
  :data:`LABEL_CYCLE_DOSE` mg/m2 per cycle. A schedule with a single dose above
  :data:`OUTSIDE_FACTOR` times the first, or a cycle total above that factor times
  the second, is warned about (one line per key path).
- **Parameters.** A parameter the calibration fitted is warned about when it lies
  more than :data:`PARAMETER_MARGIN` times its ensemble's range below the lowest or
  above the highest draw of the shipped posterior ensembles
  (``configs/parameters/posterior.nc``: every model structure's own, over the
  structures that fit the parameter). Parameters the calibration did not fit
  have no calibrated range and are not checked.

It is a warning (:class:`OutsideCalibrationWarning`), not a refusal: the model
runs, and its answer there is an extrapolation.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from simulator.model.config import (
    Regimen,
    Scenario,
    default_config_dir,
    resolve_cohorts,
)

LABEL_DAY_DOSE = 0.8  # mg/m2, the label's largest single dose
LABEL_CYCLE_DOSE = 1.8  # mg/m2, the label's cycle
OUTSIDE_FACTOR = 2.0  # doses warned above this multiple of the label's
PARAMETER_MARGIN = 0.5  # parameters warned beyond this share of the ensemble's range past either end
DOSE_KEYS = ("cycle1_doses", "later_doses_in_cr", "later_doses_not_in_cr")


class OutsideCalibrationWarning(UserWarning):
    """A dose or parameter far outside what the model was calibrated on (one line, naming the key path)."""


def ensemble_path() -> Path:
    """The shipped posterior ensemble (draws of the fitted parameters)."""
    return default_config_dir() / "parameters" / "posterior.nc"


@lru_cache(maxsize=1)
def calibrated_ranges() -> dict[str, tuple[float, float]]:
    """Lowest and highest draw of each fitted parameter in the shipped ensemble.

    The ensemble holds every model structure's own posterior (``structure_parameters``,
    (structure, particle, parameter)); a parameter's range is taken over the structures
    that fit it (those whose draws of it vary), so a structure's own slope is checked
    against the structures that use it. Read with h5py: a tenth of the time xarray takes
    to open the file, on every scenario load.
    """
    import h5py

    with h5py.File(ensemble_path(), "r") as f:
        draws, names = f["structure_parameters"][()], f["parameter"][()]
    out = {}
    for j, name in enumerate(names):
        fitted = [draws[s, :, j] for s in range(draws.shape[0]) if np.ptp(draws[s, :, j]) > 0]
        if fitted:
            values = np.concatenate(fitted)
            out[name.decode()] = (float(values.min()), float(values.max()))
    return out


def _dose_problems(regimen: Regimen, prefix: str, keys: tuple[str, ...]) -> list[str]:
    out = []
    for key in keys:
        doses = getattr(regimen, key)
        day, cycle = max(doses), sum(doses)
        if day > OUTSIDE_FACTOR * LABEL_DAY_DOSE or cycle > OUTSIDE_FACTOR * LABEL_CYCLE_DOSE:
            out.append(f"{prefix}{key}: {cycle:g} mg/m2 per cycle, up to {day:g} on one day, is far outside "
                       f"what the model was calibrated on (label: {LABEL_DAY_DOSE:g} mg/m2 a day, "
                       f"{LABEL_CYCLE_DOSE:g} per cycle; warned above {OUTSIDE_FACTOR:g}x); "
                       "results there are an extrapolation")
    return out


def outside_calibration(scenario: Scenario) -> list[str]:
    """``key.path: what`` for every dose and parameter the rule above warns about."""
    out = _dose_problems(scenario.regimen, "regimen.", DOSE_KEYS)
    for i, (cohort, resolved) in enumerate(zip(scenario.cohorts, resolve_cohorts(scenario))):
        out += _dose_problems(resolved.regimen, f"cohorts.{i}.regimen.", tuple(k for k in DOSE_KEYS
                                                                               if k in cohort.regimen))
    for name, (lo, hi) in calibrated_ranges().items():
        value, margin = getattr(scenario.parameters, name), PARAMETER_MARGIN * (hi - lo)
        if not lo - margin <= value <= hi + margin:
            out.append(f"parameters.{name}: {value:g} is far outside the calibrated ensemble's range "
                       f"{lo:.4g} to {hi:.4g} ({ensemble_path().name}; warned beyond {PARAMETER_MARGIN:g} "
                       "of that range past either end); results there are an extrapolation")
    return out


def warn_outside_calibration(scenario: Scenario, source: str | Path, base: Scenario | None = None) -> None:
    """Warn (:class:`OutsideCalibrationWarning`, ``source: key.path: ...``) as :func:`outside_calibration` says.

    With ``base`` (the scenario ``scenario`` was derived from), only the problems
    ``base`` does not have: those are warned about where ``base`` was written.
    """
    inherited = set() if base is None else set(outside_calibration(base))
    for problem in outside_calibration(scenario):
        if problem not in inherited:
            warnings.warn(f"{source}: {problem}", OutsideCalibrationWarning, stacklevel=2)
