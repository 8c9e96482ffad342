"""Warnings for scenarios far outside what the model was calibrated on.

The rule, defined here once (and documented in ``docs/scenarios.md``):

- **Doses.** Every figure the model was fitted to comes from patients dosed at or
  below the label: :data:`LABEL_DAY_DOSE` mg/m2 on one day (cycle 1, day 1) and
  :data:`LABEL_CYCLE_DOSE` mg/m2 per cycle. A schedule with a single dose above
  :data:`OUTSIDE_FACTOR` times the first, or a cycle total above that factor times
  the second, is warned about (one line per key path).
- **Other dosing quantities.** The cumulative-dose cap, the cycle counts, the cycle
  lengths, cycle 1's extension and the dose reduction are warned about outside the
  range :data:`DOSING_RANGES` gives (what the calibration's patients were treated
  with), naming the unit. A cap that would lie inside read as micrograms/m2 says
  so, and a cap the regimen can never reach says that it changes nothing.
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
from dataclasses import dataclass
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
LABEL = Regimen()  # the schema's defaults are label dosing
LOWEST_FIRST_DOSE = 0.6  # mg/m2, the smallest calibrated first dose (the phase 4 study's 1.2 mg/m2 start)
MICROGRAMS_PER_MG = 1000.0


@dataclass(frozen=True)
class CalibratedRange:
    """The values of one dosing quantity the calibration's patients were treated with."""

    low: float
    high: float
    unit: str
    what: str  # where the range comes from, in a few words


def largest_course(regimen: Regimen) -> float:
    """The most a patient can receive under ``regimen``, mg/m2: every dose of every cycle."""
    later = max(sum(regimen.later_doses_in_cr), sum(regimen.later_doses_not_in_cr))
    return sum(regimen.cycle1_doses) + (regimen.max_cycles - 1) * later


_CYCLES = CalibratedRange(1, LABEL.max_cycles, "cycles", "the label's most")
_CYCLE_DAYS = CalibratedRange(LABEL.cycle1_length_days, LABEL.later_length_days, "days",
                              "the label's first and later cycles")
DOSING_RANGES = {
    "cumulative_cap": CalibratedRange(LOWEST_FIRST_DOSE, largest_course(LABEL), "mg/m2",
                                      "the cumulative doses its patients received: one first dose "
                                      f"to {LABEL.max_cycles} label cycles"),
    "max_cycles": _CYCLES,
    "stop_if_no_response_after": _CYCLES,
    "hsct_cycles": _CYCLES,
    "cycle1_length_days": _CYCLE_DAYS,
    "later_length_days": _CYCLE_DAYS,
    "cycle1_extension_in_cr_days": CalibratedRange(0.0, LABEL.cycle1_extension_in_cr_days, "days",
                                                   "the label's extension of cycle 1 until CR/CRi"),
    "dose_reduction": CalibratedRange(0.0, OUTSIDE_FACTOR * LABEL.dose_reduction, "of a dose",
                                      f"the label's {LABEL.dose_reduction:g} up to {OUTSIDE_FACTOR:g}x"),
}
REGIMEN_KEYS = DOSE_KEYS + tuple(DOSING_RANGES)  # every regimen key the rule checks


class OutsideCalibrationWarning(UserWarning):
    """A dosing quantity or parameter outside what the model was calibrated on (one line, naming the key path)."""


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


def _quantity_problems(regimen: Regimen, prefix: str, keys: tuple[str, ...]) -> list[str]:
    out = []
    for key in keys:
        value, r = getattr(regimen, key), DOSING_RANGES[key]
        if value is None or r.low <= value <= r.high:
            continue
        line = (f"{prefix}{key}: {value:g} {r.unit} is outside what the model was calibrated on "
                f"({r.low:g} to {r.high:g} {r.unit}, {r.what})")
        if r.unit == "mg/m2" and r.low <= value / MICROGRAMS_PER_MG <= r.high:
            line += (f"; if that is micrograms/m2, write {value / MICROGRAMS_PER_MG:g} "
                     "(the unit is mg/m2)")
        if key == "cumulative_cap" and value >= (course := largest_course(regimen)):
            line += f"; it never binds (this regimen gives at most {course:g} mg/m2): the run is as with no cap"
        else:
            line += "; results there are an extrapolation"
        out.append(line)
    return out


def _regimen_problems(regimen: Regimen, prefix: str, keys: tuple[str, ...]) -> list[str]:
    """Problems of the regimen's ``keys`` (doses and the other dosing quantities), as ``prefix`` + key."""
    return (_dose_problems(regimen, prefix, tuple(k for k in keys if k in DOSE_KEYS))
            + _quantity_problems(regimen, prefix, tuple(k for k in keys if k in DOSING_RANGES)))


def outside_calibration(scenario: Scenario) -> list[str]:
    """``key.path: what`` for every dose, dosing quantity and parameter the rule above warns about."""
    out = _regimen_problems(scenario.regimen, "regimen.", REGIMEN_KEYS)
    for i, (cohort, resolved) in enumerate(zip(scenario.cohorts, resolve_cohorts(scenario))):
        out += _regimen_problems(resolved.regimen, f"cohorts.{i}.regimen.",
                                 tuple(k for k in REGIMEN_KEYS if k in cohort.regimen))
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
