"""The pivotal trials' arms on the virtual patients: milestones, medians and hazard ratios by period.

For INO-VATE (InO label vs standard chemotherapy) and TOWER (blinatumomab vs chemotherapy in
TOWER's population), each arm's Kaplan-Meier overall survival at the milestones, its median,
and the hazard ratio experimental vs control within periods (deaths per patient-month in each
arm, patients at risk at the period's start): a hazard ratio that moves between periods is a
non-proportional hazard (docs/comparators.md). Common random numbers: both arms simulate the
same patients. Run: python experiments/pivotal_trials_report.py --patients 200000 --seed 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from simulator import load_scenario, simulate
from simulator.analysis.outcomes import kaplan_meier, km_first_below, km_survival_at
from simulator.cli import guarded, positive_int, seed_int
from simulator.model.config import default_config_dir
from simulator.model.files import derive_scenario

MILESTONES = (6.0, 12.0, 24.0)  # months
PERIODS = ((0.0, 3.0), (3.0, 6.0), (6.0, 12.0), (12.0, 24.0))  # months
FOLLOW_UP = {"simulation": {"follow_up_months": 36.0, "accrual_months": 0.0}}  # every patient 3 years


def arms() -> dict[str, tuple]:
    """Each trial's (control, experimental) scenarios, followed 3 years."""
    configs = default_config_dir()
    tower = load_scenario(configs / "blinatumomab_tower.yaml")
    pairs = {
        "INO-VATE": (load_scenario(configs / "soc_inovate.yaml"), load_scenario(configs / "label_dosing.yaml")),
        "TOWER": (derive_scenario(tower, {"treatment": "soc_chemotherapy"}, "TOWER control", warn=False), tower),
    }
    return {name: tuple(derive_scenario(s, FOLLOW_UP, name, warn=False) for s in pair) for name, pair in pairs.items()}


def period_hazard(months: np.ndarray, event: np.ndarray, start: float, end: float) -> float:
    """Deaths per patient-month between ``start`` and ``end`` months."""
    time_at_risk = np.clip(months, start, end) - start
    deaths = event & (months > start) & (months <= end)
    return deaths.sum() / time_at_risk.sum()


def report(n: int, seed: int) -> str:
    lines = [f"{n:,} virtual patients per arm (the same patients in both arms), seed {seed}; "
             "OS in months; hazard ratio experimental / control by period"]
    for trial, (control, experimental) in arms().items():
        lines.append(f"\n{trial} ({experimental.name} population): {experimental.treatment} vs {control.treatment}")
        head = "  arm                      median  " + "  ".join(f"OS {m:g} mo" for m in MILESTONES)
        lines.append(head)
        runs = {}
        for label, scenario in (("control", control), ("experimental", experimental)):
            ds = simulate(scenario, n_patients=n, seed=seed)
            t, e = ds.os_months.values, ds.os_event.values.astype(bool)
            runs[label] = (t, e)
            km_t, km_s, _ = kaplan_meier(t, e)
            cells = "  ".join(f"{km_survival_at(t, e, m)[0]:>8.1%}" for m in MILESTONES)
            lines.append(f"  {scenario.treatment:<24} {km_first_below(km_t, km_s, 0.5):>6.2f}  {cells}")
        ratios = [period_hazard(*runs["experimental"], a, b) / period_hazard(*runs["control"], a, b)
                  for a, b in PERIODS]
        lines.append("  hazard ratio by period   " + "  ".join(
            f"{a:g}-{b:g} mo {r:.2f}" for (a, b), r in zip(PERIODS, ratios)))
    return "\n".join(lines)


def main() -> None:
    """Print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=positive_int, default=200_000, help="virtual patients per arm")
    parser.add_argument("--seed", type=seed_int, default=1)
    args = parser.parse_args()
    print(report(args.patients, args.seed))


if __name__ == "__main__":
    sys.exit(guarded(main, Path(__file__).name, "interrupted"))
