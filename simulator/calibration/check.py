"""A parameter set, each model structure and the combined ensemble against every published figure."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from simulator.analysis.labels import NRM_DRIVER_TITLES
from simulator.analysis.text import paragraph, table
from simulator.calibration.figures import Z95, Figure, Sim
from simulator.calibration.fit import Evaluator, default_setting
from simulator.calibration.run import structure_weights
from simulator.model.config import Parameters, default_config_dir
from simulator.model.files import derive_scenario, load_parameters, structure_parameter_file
from simulator.model.structure import NRM_DRIVERS, ModelStructure, structure_from_id


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


def check(parameters: Parameters, n_patients: int = 200_000, seed: int = 20251125,
          structure: ModelStructure | None = None) -> list[CheckRow]:
    """Every figure beside its simulated value under ``parameters`` (of model ``structure``).

    A figure is *inside* when the simulated value lies in the figure's 95% interval at
    its published n (module docstring).
    """
    ev = Evaluator(default_setting(n_patients, seed, parameters, structure))
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
        "primary": "PRIMARY TARGETS (pooled dose analysis, INO-VATE durability; fitted)",
        "secondary": "SECONDARY TARGETS (INO-VATE arm, as received; fitted)",
        "validation": "VALIDATION (not used in the fit)",
    }
    out = [paragraph(f"Calibration check: {n_patients:,} simulated patients per study; 'interval' is the "
                     "reported figure's 95% interval at its published n (derived n where none was reported); "
                     "simulated values carry their Monte Carlo standard error.")]
    for section, title in titles.items():
        chosen = [r for r in rows if r.section == section]
        inside = sum(r.inside for r in chosen)
        cells = [("figure", "unit", "reported", "95% interval", "simulated", "n ", "inside")]  # n: then * or blank
        for r in chosen:
            unit, k = _unit(r.figure)
            dp = 1 if unit == "%" else 2  # decimals
            lo, hi = r.interval
            cells.append((r.figure.label, unit, f"{k * r.figure.value:.{dp}f}", f"{k * lo:.{dp}f}-{k * hi:.{dp}f}",
                          f"{k * r.sim.estimate:.{dp}f} +- {k * r.sim.se:.{dp}f}",
                          f"{r.figure.n_used(r.sim):.0f}{' ' if r.figure.n is not None else '*'}",
                          "yes" if r.inside else "NO"))
        out += ["", f"{title}: {inside}/{len(chosen)} inside", *table(cells, "<<>>>><")]
    out.append("\n* n not reported: simulated subgroup share x published group size.")
    return "\n".join(out)


# ----------------------------------------------------------------------------- structures
DRIVER_SLOPE_UNITS = {"nrm_cumulative_dose_slope": "per mg/m2", "nrm_cycles_slope": "per cycle",
                      "nrm_time_to_hsct_slope": "per month", "nrm_salvage2": "2nd salvage",
                      "nrm_dual_alkylator": "dual alkylator"}


@dataclass(frozen=True)
class StructureRow:
    """One model structure in the check: its weight, its fit and its NRM gradient."""

    structure: ModelStructure
    weight: float
    weight_range: tuple[float, float]  # the weights of single patient seeds (NaN: one seed)
    log_evidence: float
    neg_log_likelihood: float  # at its fitted values, over the fitted figures
    primary_inside: int
    primary: int
    secondary_inside: int
    secondary: int
    gradient: tuple[str, float, float, float]  # parameter, posterior mean, 2.5% and 97.5%


def _neg_log_likelihood(rows: list[CheckRow]) -> float:
    return 0.5 * sum(r.figure.residual(r.sim) ** 2 for r in rows if r.figure.fitted)


def check_structures(ensemble: xr.Dataset, n_patients: int = 50_000, seed: int = 20251125) -> list[StructureRow]:
    """Every model structure of a combined ensemble: weight, fit at its own fitted values, NRM gradient.

    Each structure's fitted values are its shipped parameter file
    (``parameters/structures/<id>.yaml``).
    """
    out = []
    names = list(ensemble["parameter"].values)
    for k, sid in enumerate(ensemble["structure"].values):
        s = structure_from_id(str(sid))
        parameters = load_parameters(structure_parameter_file(s))
        rows = check(parameters, n_patients, seed, s)
        slope = NRM_DRIVERS[s.nrm_driver][0]
        draws = ensemble["structure_parameters"].values[k][:, names.index(slope)]
        lo, hi = np.quantile(draws, [0.025, 0.975])
        count = {sec: [r.inside for r in rows if r.section == sec] for sec in ("primary", "secondary")}
        spread = ((float(ensemble["structure_weight_lower"].values[k]), float(ensemble["structure_weight_upper"].values[k]))
                  if "structure_weight_lower" in ensemble else (math.nan, math.nan))
        out.append(StructureRow(s, float(ensemble["structure_weight"].values[k]), spread,
                                float(ensemble["structure_log_evidence"].values[k]), _neg_log_likelihood(rows),
                                sum(count["primary"]), len(count["primary"]), sum(count["secondary"]),
                                len(count["secondary"]), (slope, float(draws.mean()), float(lo), float(hi))))
    return out


ENSEMBLE_CHECK_DRAWS = 40  # draws of the combined ensemble in the check


def check_ensemble(ensemble: xr.Dataset, draws: int = ENSEMBLE_CHECK_DRAWS, n_patients: int = 20_000,
                   seed: int = 20251125) -> list[CheckRow]:
    """A posterior predictive check of every figure under the combined ensemble.

    ``draws`` draws, evenly spaced through the combined ensemble (so structures appear in
    proportion to their weight), are each simulated under their own structure. A figure
    passes when the reported value lies within the 95% posterior predictive interval: the
    mean simulated value +- sqrt(h^2 + (1.96 s)^2), with h the half-width of the figure's
    95% interval at its published n (averaged over draws) and s the SD of the simulated
    value over draws (parameter and structural spread). ``interval`` holds that interval
    around the reported value, so the row reads like the single-set check; ``sim`` holds
    the mean over draws with ``se`` = s.
    """
    pick = np.unique(np.linspace(0, ensemble.sizes["draw"] - 1, draws).round().astype(int))
    base = load_parameters(default_config_dir() / "parameters" / "default.yaml")
    names = [str(n) for n in ensemble["parameter"].values]
    sims: list[list[Sim]] = []
    for d in pick:
        values = dict(zip(names, ensemble["parameters"].values[d]))
        s = structure_from_id(str(ensemble["draw_structure"].values[d]))
        ev = Evaluator(default_setting(n_patients, seed, base.model_copy(update=values), s))
        sims.append(ev.sims(ev.arrays.par))
        figures = ev.figures
    rows = []
    for j, f in enumerate(figures):
        est = np.array([s[j].estimate for s in sims])
        ok = np.isfinite(est)
        mean, sd = float(np.mean(est[ok])), float(np.std(est[ok], ddof=1))
        half = float(np.mean([np.diff(f.interval(s[j]))[0] / 2 for s, good in zip(sims, ok) if good]))
        reach = math.sqrt(half**2 + (Z95 * sd) ** 2)
        sim = dataclasses.replace(sims[0][j], estimate=mean, se=sd)
        rows.append(CheckRow(f, sim, (f.value - reach, f.value + reach), bool(abs(mean - f.value) <= reach)))
    return rows


def format_structures(rows: list[StructureRow]) -> str:
    """The structures, heaviest first, in two tables: weight and fit, then each one's NRM driver slope."""
    heaviest = sorted(rows, key=lambda r: -r.weight)
    fit = [("structure", "weight (range)", "log evid.", "-log lik", "primary", "second.")]
    slopes = [("structure", "slope", "mean (95% interval)", "log-HR")]
    for r in heaviest:
        name, mean, lo, hi = r.gradient
        fit.append((r.structure.id, f"{r.weight:.3f} ({r.weight_range[0]:.3f}-{r.weight_range[1]:.3f})",
                    f"{r.log_evidence:.2f}", f"{r.neg_log_likelihood:.2f}", f"{r.primary_inside}/{r.primary}",
                    f"{r.secondary_inside}/{r.secondary}"))
        slopes.append((r.structure.id, name, f"{mean:+.2f} ({lo:+.2f}, {hi:+.2f})", DRIVER_SLOPE_UNITS[name]))
    return "\n".join([
        paragraph("MODEL STRUCTURES (weight = posterior model probability from the Laplace evidence at each "
                  "structure's fit, equal prior weights; weight range: the weights of single patient seeds; "
                  "-log lik, primary and secondary: at its own fitted values)"),
        *table(fit, "<>>>>>"),
        "",
        "NRM driver slope of each structure: posterior mean (95% interval)",
        *table(slopes, "<<<<"),
    ])


def choice_weights(ensemble: xr.Dataset, choice: Callable[[ModelStructure], str]
                   ) -> dict[str, tuple[float, float, float]]:
    """The weight of each value of a structure choice (e.g. the NRM driver), summed over the structures
    with it: ``{value: (weight, smallest, largest over the weights of single patient seeds)}``."""
    groups = [choice(structure_from_id(str(s))) for s in ensemble["structure"].values]
    by_seed = (ensemble["structure_log_evidence_by_seed"].values if "structure_log_evidence_by_seed" in ensemble
               else ensemble["structure_log_evidence"].values[None, :])
    per_seed = np.array([structure_weights(z) for z in by_seed])
    out = {}
    for g in dict.fromkeys(groups):
        mask = np.array([x == g for x in groups])
        seeds = per_seed[:, mask].sum(axis=1)
        out[g] = (float(ensemble["structure_weight"].values[mask].sum()), float(seeds.min()), float(seeds.max()))
    return out


def format_driver_totals(ensemble: xr.Dataset) -> str:
    """The weight of each NRM driver (summed over the structures with it), with its range over patient seeds."""
    seeds = ensemble.sizes.get("seed", 1)
    cells = [f"{NRM_DRIVER_TITLES[d]} {w:.2f} ({lo:.2f}-{hi:.2f})"
             for d, (w, lo, hi) in choice_weights(ensemble, lambda s: s.nrm_driver).items()]
    return paragraph(f"Weight by NRM driver (range over {seeds} patient seeds): " + "; ".join(cells) + ".")


# ----------------------------------------------------------------------------- guarantee-time contrast
CONTINUATION_SCENARIO = "label_dosing.yaml"  # the INO-VATE InO arm under the label (the pooled inovate cohort)


def check_continuation(parameters: Parameters, n_patients: int = 200_000, seed: int = 20251125,
                       structure: ModelStructure | None = None) -> str:
    """S7's "continue vs stop InO in remission" contrast, by S7's own analysis, as a validation table.

    The published hazard ratio is guarantee-time biased; the simulated one comes from the
    same selection and grouping (:func:`simulator.analysis.continuation.continuation_analysis`),
    so the two are comparable, but neither identifies an effect of continued InO.
    """
    from simulator.analysis.continuation import continuation_analysis, continuation_rows
    from simulator.analysis.targets import format_rows, load_evidence
    from simulator.model.files import load_scenario
    from simulator.model.simulation import simulate

    base = load_scenario(default_config_dir() / CONTINUATION_SCENARIO)
    structure = structure or base.model
    values = parameters.model_copy(update={n: 0.0 for n in structure.unused}).model_dump()
    scenario = derive_scenario(base, {"parameters": values, "model": structure.model_dump()}, "continuation check",
                               warn=False)
    result = continuation_analysis(simulate(scenario, n_patients=n_patients, seed=seed))
    return (paragraph("VALIDATION: continuing InO in remission (S7), the same guarantee-time-biased analysis on "
                      f"{n_patients:,} simulated INO-VATE patients") + "\n"
            + format_rows(continuation_rows(result, load_evidence())))
