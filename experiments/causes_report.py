"""The causes of death in docs/model.md and docs/evidence.md, generated: label dosing at the shipped
parameters, all patients with cause 4 ("other"), split into those after a progression or relapse
and those progression-free (the two rows sweeps and comparisons print), and the other causes.

Rewrites the blocks between the ``generated`` markers of docs/model.md (two seeds) and
docs/evidence.md (one seed, 95% CIs), or prints them with ``--print``; the docs test recomputes
them.

    .venv/bin/python experiments/causes_report.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _generated import END, begin, rewrite

from simulator import load_scenario, simulate
from simulator.analysis.trial_metrics import TRIAL_METRICS
from simulator.cli import guarded, positive_int, seed_int
from simulator.model import kernel as K
from simulator.model.config import default_config_dir

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "docs" / "model.md", ROOT / "docs" / "evidence.md")
BEGIN = begin(Path(__file__).name)
ROWS = ("deaths_other_after_progression", "deaths_other_progression_free")


def shares(n: int, seed: int) -> dict[str, float]:
    """The two rows' shares of all patients under label dosing, and each cause's (by its code)."""
    ds = simulate(load_scenario(default_config_dir() / "label_dosing.yaml"), n_patients=n, seed=seed)
    d = {name: ds[name].values for name in ("death_cause", "progression_day")}
    metrics = {m.id: m for m in TRIAL_METRICS}
    out = {row: float(np.mean(metrics[row].value(d))) for row in ROWS}
    return out | {cause: float(np.mean(d["death_cause"] == cause)) for cause in range(K.CAUSE_OTHER + 1)}


def model_block(n: int, seed: int) -> str:
    """docs/model.md's sentence, at ``seed`` and, in parentheses, ``seed + 1``."""
    a, b = shares(n, seed), shares(n, seed + 1)

    def cell(key, unit: str = "") -> str:
        return f"{100 * a[key]:.1f}{unit} ({100 * b[key]:.1f}{unit})"

    return (f"{BEGIN}label dosing, shipped parameters, {n:,} patients, seed {seed} (seed {seed + 1}): "
            f"{cell(K.CAUSE_OTHER, '%')} of all patients end with cause 4, "
            f"{cell(ROWS[0])} points of them after progression or relapse, "
            f"{cell(ROWS[1])} points progression-free{END}")


def evidence_block(n: int, seed: int) -> str:
    """docs/evidence.md's paragraph: every share with its 95% CI (normal approximation)."""
    s = shares(n, seed)
    dead = 1.0 - s[K.CAUSE_NONE]

    def ci(p: float, unit: str = "") -> str:
        half = 1.96 * np.sqrt(p * (1.0 - p) / n)
        return f"{100 * p:.1f}{unit} ({100 * (p - half):.1f}-{100 * (p + half):.1f})"

    other = [f"{what} {100 * s[c]:.1f}%{' of patients' if i == 0 else ''} ({100 * s[c] / dead:.1f}%"
             f"{' of deaths' if i == 0 else ''})"
             for i, (what, c) in enumerate((("progression or relapse", K.CAUSE_PROGRESSION),
                                            ("non-relapse mortality after HSCT", K.CAUSE_NRM_POST_HSCT),
                                            ("toxicity during treatment", K.CAUSE_TOXICITY)))]
    return (f"{BEGIN}\nUnder label dosing ({n:,} patients, seed {seed}; 95% Monte Carlo CIs) "
            f"{ci(s[K.CAUSE_OTHER], '%')} of all patients end with cause 4, which is "
            f"{100 * s[K.CAUSE_OTHER] / dead:.1f}% of all deaths ({100 * dead:.1f}% of patients die by the data "
            f"cut-off). Of those {100 * s[K.CAUSE_OTHER]:.1f} points, {ci(s[ROWS[0]])} are deaths after progression "
            f"or relapse and {ci(s[ROWS[1]])} points deaths from other causes without progression. The other "
            f"causes of death: {', '.join(other)}.\n{END}")


def main() -> None:
    """Write the blocks into the docs (or print them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=positive_int, default=200_000)
    parser.add_argument("--seed", type=seed_int, default=1)
    parser.add_argument("--print", action="store_true", help="print the blocks instead of writing the docs")
    args = parser.parse_args()
    blocks = (model_block(args.patients, args.seed), evidence_block(args.patients, args.seed))
    if args.print:
        print("\n\n".join(blocks))
        return
    for doc, block in zip(DOCS, blocks):
        rewrite(doc, BEGIN, [block])

if __name__ == "__main__":
    sys.exit(guarded(main, Path(__file__).name, "interrupted; the doc is unchanged"))
