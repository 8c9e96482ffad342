"""The three headline strategy questions with every kind of uncertainty, by model structure.

Cap the cumulative dose at 3.3 mg/m2, stop after two cycles, or start at 1.2 mg/m2, each
against label dosing, on the same virtual patients: at the fitted values (Monte Carlo CI),
over the combined ensemble of parameters and model structures (posterior interval,
P(better)), and under each structure. Writes the results and, per strategy, the answer
with its three uncertainties and a value-of-information figure to ``--out-dir``.

    .venv/bin/python experiments/strategy_answers.py --out-dir answers
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator import load_scenario
from simulator.cli import guarded, positive_int, progress_bar, seed_int
from simulator.plots.decision import answer_plot, decision_title, value_of_information_plot
from simulator.runtime.storage import write_netcdf
from simulator.sensitivity.strategies import (
    compare_strategies,
    format_strategy_answers,
    format_value_of_information,
    value_of_information,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
STRATEGIES = {"cap_3p3": "cap_3p3.yaml", "two_cycles_then_stop": "two_cycles_then_stop.yaml",
              "low_start_1p2": "low_start_1p2.yaml"}
METRICS = ("os_24_months", "post_hsct_nrm")


def main() -> None:
    """Run the comparison, save it, print the tables and the value of information."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default="strategy_answers", help="folder for results and figures")
    parser.add_argument("--draws", type=positive_int, help="draws of the combined ensemble (default all)")
    parser.add_argument("--per-structure", type=positive_int, default=40, help="draws of each structure's posterior")
    parser.add_argument("--patients", type=positive_int, default=338, help="patients per replicate (default 338)")
    parser.add_argument("--replicates", type=positive_int, default=40, help="replicates per draw (default 40)")
    parser.add_argument("--seed", type=seed_int, default=2025)
    args = parser.parse_args()
    label = load_scenario(CONFIGS / "label_dosing.yaml")
    others = {name: load_scenario(CONFIGS / file) for name, file in STRATEGIES.items()}
    t0 = time.perf_counter()
    with progress_bar("parameter sets", "set") as progress:
        ds = compare_strategies(label, others, METRICS, draws=args.draws, per_structure=args.per_structure,
                                patients=args.patients, replicates=args.replicates, seed=args.seed,
                                progress=progress)
    out = Path(args.out_dir)
    write_netcdf(ds, out / "answers.nc")
    print(format_strategy_answers(ds))
    for name in others:
        voi = value_of_information(ds, name, METRICS[0])
        print(format_value_of_information(voi))
        answer_plot(ds, name, out)
        value_of_information_plot(voi, out, decision_title(ds, name), stem=f"value_of_information_{name}")
    print(f"\n{time.perf_counter() - t0:.0f} s; results and figures in {out}/")


if __name__ == "__main__":
    sys.exit(guarded(main, Path(__file__).name, "interrupted; files already written are complete"))
