"""The numbers of docs/calibration.md's results, generated: the figures its text discusses (where the
fit is worst, and the early responders' contrast) beside the published ones, as ``inosim calibrate
--check`` computes them under the shipped defaults, at the fit's patient seed and at a reseed; and
the fitted value and 95% posterior range of the weakly identified parameters (the default
structure's own posterior in ``configs/parameters/posterior.nc``: shipped files, no Monte Carlo).

The numbers are stored in ``experiments/calibration_results.json`` and the block between the
``generated`` markers of docs/calibration.md is rewritten from them (``--print`` prints it
instead; ``--render`` rewrites the doc from the stored results without simulating).

    .venv/bin/python experiments/calibration_report.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _generated import END, begin, run_report

from simulator.calibration.check import check
from simulator.cli import guarded, positive_int
from simulator.model.config import default_config_dir
from simulator.model.files import load_parameter_file
from simulator.sensitivity.distributions import load_ensemble
from simulator.sensitivity.strategies import LEVEL

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "calibration.md"
RESULTS = ROOT / "experiments" / "calibration_results.json"
BEGIN = begin(Path(__file__).name)
SEEDS = (20251125, 99)  # the fit's patient seed (check's default) and a reseed
FIGURES = ("inovate:after HSCT: relapse at 1 / 2 years [2/2]", "pooled:post_hsct_mortality:all", "inovate:any HSCT",
           "pooled:time_to_remission_median_months:le",
           "pooled:time_to_remission_median_months:gt", "pooled:early_responder_hsct:le",
           "pooled:early_responder_hsct:gt", "pooled:early_responder_post_hsct_nrm:le",
           "pooled:early_responder_post_hsct_nrm:gt", "pooled:post_hsct_sos_any:le", "pooled:post_hsct_sos_any:gt")
SOURCES = {"inovate": "INO-VATE", "pooled": "pooled analysis"}  # the figure's study, by its key's prefix
PARAMETERS = ("resp_dose_slope", "sos_cumulative_dose_slope", "relapse_on_treatment", "nrm_cumulative_dose_slope")


def figure_results(n: int, seeds: tuple[int, ...]) -> list[dict]:
    """The text's figures under the shipped defaults at each seed: published value and 95% interval,
    simulated value, its Monte Carlo SE and whether it lies inside."""
    parameters = load_parameter_file(default_config_dir() / "parameters" / "default.yaml")[0]
    runs = [{r.figure.key: r for r in check(parameters, n, seed=s)} for s in seeds]
    out = []
    for key in FIGURES:
        r = runs[0][key]
        out.append({"key": key, "label": r.figure.label, "kind": r.figure.kind, "published": r.figure.value,
                    "interval": list(r.interval), "simulated": [run[key].sim.estimate for run in runs],
                    "se": [run[key].sim.se for run in runs], "inside": [run[key].inside for run in runs]})
    return out


def parameter_results() -> dict:
    """Each weakly identified parameter's fitted value and the 95% range of the default structure's posterior."""
    parameters, structure = load_parameter_file(default_config_dir() / "parameters" / "default.yaml")
    particles = load_ensemble(None).structure_parameters.sel(structure=structure.id)
    q = ((1 - LEVEL) / 2, (1 + LEVEL) / 2)
    return {"structure": structure.id,
            "parameters": [{"name": name, "fitted": getattr(parameters, name),
                            "range": [float(x) for x in np.quantile(particles.sel(parameter=name).values, q)]}
                           for name in PARAMETERS]}


def _value(kind: str, x: float, unit: bool = True) -> str:
    return f"{100 * x:.1f}" + ("%" if unit else "") if kind == "rate" else f"{x:.2f}"


def block(results: dict) -> str:
    """The doc's generated block."""
    seeds, n = results["seeds"], results["patients"]
    lines = [BEGIN, f"`inosim calibrate --check` under the shipped defaults, {n:,} simulated patients per study, "
             f"patient seed {seeds[0]} (the fit's), in parentheses seed {seeds[1]}; medians in months; "
             "**outside**: the simulated value lies outside the figure's 95% interval:", "",
             "| figure | published (95% interval) | simulated (reseeded) |", "| --- | --- | --- |"]
    for r in results["figures"]:
        lo, hi = r["interval"]
        sim = " ".join(f"{_value(r['kind'], x)}" if i == 0 else f"({_value(r['kind'], x)})"
                       for i, x in enumerate(r["simulated"]))
        if not all(r["inside"]):
            sim = f"**{sim}: outside**"
        lines.append(f"| {SOURCES[r['key'].split(':')[0]]}: {r['label']} | {_value(r['kind'], r['published'])} "
                     f"({_value(r['kind'], lo, False)}-{_value(r['kind'], hi, False)}) | {sim} |")
    p = results["posterior"]
    lines += ["", f"Weakly identified parameters: the shipped fit and the 95% range of the default structure's "
              f"posterior (`{p['structure']}`, `configs/parameters/posterior.nc`):", "",
              "| parameter | fitted | 95% posterior range |", "| --- | --- | --- |"]
    lines += [f"| `{r['name']}` | {r['fitted']:.2f} | {r['range'][0]:.2f} to {r['range'][1]:.2f} |"
              for r in p["parameters"]]
    return "\n".join([*lines, END])


def results(n: int) -> dict:
    """Every number of the block."""
    return {"patients": n, "seeds": list(SEEDS), "figures": figure_results(n, SEEDS), "posterior": parameter_results()}


def main() -> None:
    """Simulate, store the results and rewrite the doc's block (or print it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=positive_int, default=200_000, help="simulated patients per study")
    run_report(parser, DOC, RESULTS, BEGIN, lambda a: results(a.patients), lambda r: [block(r)])


if __name__ == "__main__":
    sys.exit(guarded(main, Path(__file__).name, "interrupted; the doc is unchanged"))
