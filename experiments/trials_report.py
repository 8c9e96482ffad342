"""The table of docs/trials.md's "The shipped designs" and what it says, generated: each shipped design's
power, type I error (its null run), expected duration and sample size, and P(correct selection), as
``inosim trial FILE`` prints them, at the design's seed and at the next one; and, at the design's seed,
the figures the text under the table quotes (stopping by look, bias and coverage, every test's power,
the winner's curse, and the truth: each arm's rates and utility, each test's true value by look).

The numbers are stored in ``experiments/trials_results.json`` and the block between the
``generated`` markers of docs/trials.md's section is rewritten from them (``--print`` prints it
instead; ``--render`` rewrites the doc from the stored results without simulating).

    .venv/bin/python experiments/trials_report.py
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from _generated import END, begin, run_report

from simulator.cli import guarded, positive_int, seed_int
from simulator.trial import (
    load_design,
    look_cuts,
    null_arrays,
    operating_characteristics,
    rejections,
    simulate_trials,
    trial_arrays,
    true_values,
)
from simulator.trial.truth import TRUTH_PATIENTS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "trials.md"
RESULTS = ROOT / "experiments" / "trials_results.json"
BEGIN = begin(Path(__file__).name)
DESIGNS = tuple(ROOT / "experiments" / f"trial_{name}.yaml" for name in ("two_cycles_vs_label", "low_start",
                                                                          "dose_selection"))
# the table's columns: (heading, the figure's name in inosim trial's output)
COLUMNS = (("power (primary)", "power: primary test rejects (any arm)"),
           ("type I error (null run)", "type I error: primary test rejects (any arm)"),
           ("expected duration, months", "expected duration"),
           ("expected N", "expected sample size"),
           ("P(correct selection)", "P(correct selection)"))
# the other figures of ``inosim trial``'s summary the text quotes (name prefixes)
WINNERS_CURSE = "winner's curse: selected arm's interim utility - truth"
QUOTED = ("power: ", "stop at look ", "bias: ", "CI coverage: ", WINNERS_CURSE)


def design_results(path: Path, seed: int, n_trials: int | None, n_truth: int) -> dict:
    """One design as ``inosim trial`` runs it (with its null run): the table's and the text's figures as
    [estimate, lower, upper] (absent: the design has no such figure), and the truth (each arm's rates
    and utility over complete follow-up, each test's true value at each look)."""
    design = load_design(path)
    ta = trial_arrays(design, path.parent, path)
    n = n_trials or design.n_trials
    ds = simulate_trials(ta, n_trials=n, seed=seed)
    null = rejections(simulate_trials(null_arrays(ta), n_trials=n, seed=seed))
    truth = true_values(ta, seed, look_cuts(ds), n=n_truth)
    figures = {f.name: f for f in operating_characteristics(ds, truth) + null}
    names = [name for _, name in COLUMNS if name in figures] + [name for name in figures if name.startswith(QUOTED)]
    arms = [str(a) for a in truth.arm.values]
    return {"trials": n, "seed": seed,
            "figures": {name: [figures[name].estimate, figures[name].lower, figures[name].upper] for name in names},
            "truth": {"rate": {a: {str(e): float(truth.true_rate.sel(arm=a, binary_endpoint=e))
                                   for e in truth.binary_endpoint.values} for a in arms},
                      "utility": {a: float(truth.true_utility.sel(arm=a)) for a in arms},
                      "estimate": {str(t): [float(x) for x in truth.true_estimate.sel(test=t).values]
                                   for t in truth.test.values}}}


def _cell(name: str, f: list[float] | None) -> str:
    if f is None:
        return "n/a"
    estimate, lower, upper = f
    if name == "expected sample size":
        text, ci = f"{estimate:.0f}", f"{lower:.0f}-{upper:.0f}"
    elif name == "expected duration":
        text, ci = f"{estimate:.2f}", f"{lower:.2f}-{upper:.2f}"
    else:
        dp = 2 if estimate < 0.1 else 1
        text, ci = f"{100 * estimate:.{dp}f}%", f"{100 * lower:.{dp}f}-{100 * upper:.{dp}f}"
    return text if not math.isfinite(lower) or ci.split("-")[0] == ci.split("-")[1] else f"{text} ({ci})"


def block(results: dict) -> str:
    """The doc's generated block."""
    first = results["designs"][0]
    seeds = [r["seed"] for r in first]
    lines = [BEGIN, f"{first[0]['trials']:,} trials and as many null trials per design and seed, truth from "
             f"{results['truth_patients']:,} patients per arm; seed {seeds[0]} with its 95% Monte Carlo CI, "
             f"below it seed {seeds[1]}:", "",
             "| design | " + " | ".join(h for h, _ in COLUMNS) + " |", "| --- |" + " --- |" * len(COLUMNS)]
    for path, runs in zip(DESIGNS, results["designs"]):
        for i, run in enumerate(runs):
            cells = " | ".join(_cell(name, run["figures"].get(name)) for _, name in COLUMNS)
            name = f"`{path.name}`" if i == 0 else f"seed {run['seed']}"
            lines.append(f"| {name} | {cells} |")
    return "\n".join([*lines, "", "What they say (seed " + str(seeds[0]) + "):", "", *says(results), END])


def says(results: dict) -> list[str]:
    """The text under the table: one paragraph per design, from its first seed's run."""
    two, low, selection = (runs[0] for runs in results["designs"])

    def pct(run: dict, name: str, dp: int = 1) -> str:
        return f"{100 * run['figures'][name][0]:.{dp}f}%"

    power, null = "power: primary test rejects (any arm)", "type I error: primary test rejects (any arm)"
    est = two["truth"]["estimate"]
    futility = [two["figures"][f"stop at look {k} for futility"][0] for k in (1, 2)]
    worse = "worse" if est["os_cox"][-1] > 1 else "better"
    rate = low["truth"]["rate"]

    def rates(endpoint: str) -> str:
        a, b = rate["start_1.2"][endpoint], rate["start_1.8"][endpoint]
        return f"{100 * a:.1f}% vs {100 * b:.1f}% ({100 * (a - b):+.1f} points)"

    utility = selection["truth"]["utility"]
    hr = selection["truth"]["estimate"]
    return [
        "* **Two cycles then HSCT vs label dosing** (OS, 600 patients, looks at 150/300/450 deaths, O'Brien-Fleming, "
        "non-binding beta-spending futility). The true OS hazard ratio is "
        f"{est['os_cox'][-1]:.2f} (Cox at the final look's mean cut; {est['os_cox'][0]:.2f} at the first look's; RMST at "
        f"24 months {est['os_rmst_24'][-1]:+.2f} months, 12-month survival {100 * est['os_12_months'][-1]:+.1f} points): "
        f"two cycles do slightly {worse} on OS at the fitted values, so {100 * sum(futility):.0f}% of trials stop "
        f"for futility at an interim ({100 * futility[0]:.0f}% at look 1, {100 * futility[1]:.0f}% at look 2) and "
        f"power is {pct(two, power)}. Estimates at the stop are biased away from 1 "
        f"({two['figures']['bias: os_logrank'][0]:+.3f} on the log HR against each stopping look's truth; CI coverage "
        f"{pct(two, 'CI coverage: os_logrank', 0)}) because trials stopping for futility stop on high estimates. "
        f"Type I error {pct(two, null, 2)} (one-sided 2.5%).",
        "* **1.2 vs 1.8 mg/m2 start** (300 patients, one analysis after 6 months' follow-up of the last patient). "
        f"True post-HSCT SOS {rates('sos_post_hsct')}, CR/CRi {rates('cr_cri')}, grade >= 3 adverse events "
        f"{rates('grade3_ae')}, over complete follow-up. Fisher's test of fewer post-HSCT SOS has "
        f"{pct(low, 'power: sos_post_hsct_fisher')} power (the Wald difference "
        f"{pct(low, 'power: sos_post_hsct_difference')}); the grade >= 3 AE difference is detected in "
        f"{pct(low, 'power: grade3_ae_difference')} of trials. Fisher's exact test is conservative: "
        f"{pct(low, null, 2)} type I error at 2.5%.",
        "* **Three starts with selection** (1.2 and 1.5 against the 1.8 label start, selection at 15 months on "
        "P(CR/CRi) - 2 P(post-HSCT SOS), OS confirmation at 320 deaths with Dunnett's critical value 2.212). "
        f"The true utilities differ by {abs(utility['start_1.5'] - utility['start_1.2']):.3f} (1.5: "
        f"{utility['start_1.5']:.3f}, 1.2: {utility['start_1.2']:.3f}), so the selection is nearly a coin flip: "
        f"P(correct selection) {pct(selection, 'P(correct selection)')}. At the selection cut part of the "
        "post-HSCT SOS of the patients followed 3 months has not happened yet, so the selected arm's interim "
        f"utility overstates its truth by {selection['figures'][WINNERS_CURSE][0]:.3f}: the winner's curse and "
        f"the immature SOS count together. True OS hazard ratios vs label: {hr['os_cox: start_1.5'][-1]:.2f} (1.5) "
        f"and {hr['os_cox: start_1.2'][-1]:.2f} (1.2); power {pct(selection, power)}. Type I error "
        f"{pct(selection, null, 2)}: Dunnett's bound for two arms is conservative once one arm is dropped."]


def results(seed: int, n_trials: int | None, n_truth: int) -> dict:
    """Every number of the block, at ``seed`` and ``seed + 1``."""
    return {"truth_patients": n_truth,
            "designs": [[design_results(path, s, n_trials, n_truth) for s in (seed, seed + 1)] for path in DESIGNS]}


def main() -> None:
    """Simulate, store the results and rewrite the doc's block (or print it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=positive_int, help="trials (and null trials) per design (default: its own)")
    parser.add_argument("--truth-patients", type=positive_int, default=TRUTH_PATIENTS)
    parser.add_argument("--seed", type=seed_int, default=2025, help="the first seed (the designs' own)")
    run_report(parser, DOC, RESULTS, BEGIN, lambda a: results(a.seed, a.trials, a.truth_patients), lambda r: [block(r)])


if __name__ == "__main__":
    sys.exit(guarded(main, Path(__file__).name, "interrupted; the doc is unchanged"))
