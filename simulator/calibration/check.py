"""A parameter set against every published figure: the check report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.calibration.figures import Figure, Sim
from simulator.calibration.fit import Evaluator, default_setting
from simulator.model.config import (
    Parameters,
)


# ----------------------------------------------------------------------------- check and report
@dataclass(frozen=True)
class CheckRow:
    """One figure in the calibration check."""

    figure: Figure
    sim: Sim
    interval: tuple[float, float]
    inside: bool

    @property
    def section(self) -> str:
        if self.figure.primary:
            return "primary"
        return "secondary" if self.figure.fitted else "validation"


def check(parameters: Parameters, n_patients: int = 200_000, seed: int = 20251125) -> list[CheckRow]:
    """Every figure beside its simulated value under ``parameters``.

    A figure is *inside* when the simulated value lies in the figure's 95% interval at
    its published n (module docstring).
    """
    ev = Evaluator(default_setting(n_patients, seed, parameters))
    rows = []
    for f, s in zip(ev.figures, ev.sims(ev.arrays.par)):
        lo, hi = f.interval(s) if np.isfinite(s.estimate) else (math.nan, math.nan)
        rows.append(CheckRow(f, s, (lo, hi), bool(lo <= s.estimate <= hi)))
    return rows


def _unit(f: Figure) -> tuple[str, float]:
    if f.kind == "rate":
        return "%", 100.0
    return ("mg/m2", 1.0) if "dose" in f.key else (("cycles", 1.0) if "cycles" in f.key else ("months", 1.0))


def format_check(rows: list[CheckRow], n_patients: int) -> str:
    """The check as text: one section each for primary, secondary and validation figures."""
    titles = {
        "primary": "PRIMARY TARGETS (pooled dose analysis; fitted)",
        "secondary": "SECONDARY TARGETS (INO-VATE arm, as received; fitted)",
        "validation": "VALIDATION (not used in the fit)",
    }
    out = [f"Calibration check: {n_patients:,} simulated patients per study; 'interval' is the "
           "reported figure's 95% interval at its published n (derived n where none was reported); "
           "simulated values carry their Monte Carlo standard error."]
    for section, title in titles.items():
        chosen = [r for r in rows if r.section == section]
        inside = sum(r.inside for r in chosen)
        out += ["", f"{title}: {inside}/{len(chosen)} inside",
                f"{'figure':<72} {'unit':<7} {'reported':>9} {'95% interval':>17} {'simulated':>17} {'n':>6}  inside"]
        for r in chosen:
            unit, k = _unit(r.figure)
            dp = 1 if unit == "%" else 2  # decimals
            lo, hi = r.interval
            n = r.figure.n_used(r.sim)
            out.append(
                f"{r.figure.label[:72]:<72} {unit:<7} {k * r.figure.value:>9.{dp}f} "
                f"{f'{k * lo:.{dp}f}-{k * hi:.{dp}f}':>17} "
                f"{f'{k * r.sim.estimate:.{dp}f} +- {k * r.sim.se:.{dp}f}':>17} "
                f"{n:>6.0f}{'' if r.figure.n is not None else '*'} {'yes' if r.inside else 'NO'}")
    out.append("\n* n not reported: simulated subgroup share x published group size.")
    return "\n".join(out)
