"""The numbers of docs/structures.md and docs/evidence.md, generated: structure weights with their
spread over patient seeds, the three headline strategy answers with their Monte Carlo errors by
NRM driver, and the durability figures beside the published ones.

Reads the shipped fits and combined ensemble (``configs/parameters/``), runs
:func:`simulator.sensitivity.strategies.compare_strategies` for each headline question
against label dosing and the calibration check, and rewrites the blocks between the
``generated`` markers of both docs (or prints them with ``--print``).

    .venv/bin/python experiments/structures_report.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _generated import END, begin, rewrite

from simulator import load_scenario
from simulator.analysis.labels import NRM_DRIVER_TITLES, strategy_title
from simulator.calibration.check import choice_weights
from simulator.calibration.run import structure_weights
from simulator.cli import guarded, seed_int
from simulator.sensitivity.distributions import load_ensemble
from simulator.sensitivity.strategies import compare_strategies, driver_means, value_of_information

ROOT = Path(__file__).resolve().parents[1]
DOCS = {"structures": ROOT / "docs" / "structures.md", "evidence": ROOT / "docs" / "evidence.md",
        "readme_run": ROOT / "README.md", "readme_compare": ROOT / "README.md"}
BEGIN = begin(Path(__file__).name)
RUN_ROWS = 9  # lines of the inosim run table shown in the README
STRATEGIES = {"cap_3p3": "cap_3p3.yaml", "two_cycles_then_stop": "two_cycles_then_stop.yaml",
              "low_start_1p2": "low_start_1p2.yaml"}
METRICS = ("os_24_months", "post_hsct_nrm")


def weights_table() -> list[str]:
    """Weight of each NRM driver and of the other two choices, with the range over patient seeds."""
    ens = load_ensemble(None)
    ids = [str(s) for s in ens.structure.values]
    per_seed = np.array([structure_weights(z) for z in ens.structure_log_evidence_by_seed.values])
    w = ens.structure_weight.values
    lines = [f"Weights from the mean Laplace log evidence over {per_seed.shape[0]} patient seeds "
             "(range: the weights of single seeds).", "",
             "| choice | weight (range over seeds) |", "| --- | --- |"]
    for key in (lambda s: NRM_DRIVER_TITLES[s.nrm_driver], lambda s: f"relapse on InO: {s.relapse_on_treatment}",
                lambda s: f"prior HSCT: {s.prior_hsct_transplant}"):
        lines += [f"| {g} | {t:.2f} ({lo:.2f}-{hi:.2f}) |" for g, (t, lo, hi) in choice_weights(ens, key).items()]
    lines += ["", "| structure | weight (range over seeds) |", "| --- | --- |"]
    for j in np.argsort(-w, kind="stable"):
        lines.append(f"| {ids[j]} | {w[j]:.3f} ({per_seed[:, j].min():.3f}-{per_seed[:, j].max():.3f}) |")
    return lines


def answers_table(seed: int) -> list[str]:
    """The headline answers: fitted, over all uncertainty (with Monte Carlo SEs), by NRM driver; VOI."""
    label = load_scenario(ROOT / "configs" / "label_dosing.yaml")
    others = {n: load_scenario(ROOT / "configs" / f) for n, f in STRATEGIES.items()}
    ds = compare_strategies(label, others, METRICS, seed=seed)
    drivers = list(NRM_DRIVER_TITLES)
    lines = [f"Each strategy minus label dosing on the same virtual patients (seed {seed}; "
             f"{ds.attrs['combined_draws']} draws x {ds.attrs['replicates']} x {ds.attrs['patients']} patients, "
             f"{ds.attrs['per_structure_draws']} draws per structure). Percentage points; Monte Carlo "
             "standard errors after the +-.", ""]
    for m, title in zip(METRICS, ("2-year overall survival", "post-HSCT non-relapse mortality")):
        lines += [f"**{title}**", "",
                  "| question | fitted values (MC 95% CI) | all uncertainty: mean (95% interval) | P(better) | "
                  + " | ".join(NRM_DRIVER_TITLES[d] for d in drivers) + " |",
                  "| --- | --- | --- | --- | " + " | ".join("---" for _ in drivers) + " |"]
        for s in STRATEGIES:
            r = ds.sel(strategy=s, metric=m)
            by = driver_means(ds, s, m)
            cells = [f"{100 * by[d]:+.1f}" if d in by else "-" for d in drivers]
            lines.append(f"| {strategy_title(s)} | {100 * float(r.fitted):+.1f} ({100 * float(r.fitted_lower):+.1f}, "
                         f"{100 * float(r.fitted_upper):+.1f}) | {100 * float(r.posterior_mean):+.2f} +- "
                         f"{100 * float(r.posterior_mean_mc_se):.2f} ({100 * float(r.posterior_lower):+.1f}, "
                         f"{100 * float(r.posterior_upper):+.1f}) | {float(r.prob_better):.2f} +- "
                         f"{float(r.prob_better_mc_se):.2f} | " + " | ".join(cells) + " |")
        lines.append("")
    again = compare_strategies(label, others, METRICS[:1], seed=seed + 1, per_structure=0)
    moves = [(strategy_title(s), abs(float(ds.prob_better.sel(strategy=s, metric=METRICS[0])
                                           - again.prob_better.sel(strategy=s, metric=METRICS[0]))),
              100 * abs(float(ds.posterior_mean.sel(strategy=s, metric=METRICS[0])
                              - again.posterior_mean.sel(strategy=s, metric=METRICS[0]))))
             for s in STRATEGIES]
    lines += [f"A reseed (seed {seed + 1}) moves the 2-year OS answers by: "
              + "; ".join(f"{t}: P(better) {dp:.3f}, mean {dm:.2f} pp" for t, dp, dm in moves) + ".", ""]
    lines += ["Value of information on 2-year OS (pp per patient): "
              + "; ".join(f"{strategy_title(s)}: EVPI {100 * float(v.evpi):.2f}, of which learning the model "
                          f"structure {100 * float(v.evppi.sel(input='model structure')):.2f}"
                          for s in STRATEGIES for v in [value_of_information(ds, s, METRICS[0])]) + "."]
    return lines


def durability_table() -> list[str]:
    """INO-VATE's durability figures and the early responders' PFS: published and simulated, default fit
    and every structure's own fit (check of 200,000 patients)."""
    from simulator.calibration import check
    from simulator.model.config import default_config_dir
    from simulator.model.files import load_parameters, structure_parameter_file
    from simulator.model.structure import all_structures

    keys = ("durability:remission_duration_median_months", "durability:pfs_12_months",
            "durability:pfs_median_months", "pooled:early_responder_pfs_median_months:le",
            "pooled:early_responder_pfs_median_months:gt")
    default = {r.figure.key: r for r in check(load_parameters(default_config_dir() / "parameters" / "default.yaml"))}
    spans = {k: [] for k in keys}
    for s in all_structures():
        rows = {r.figure.key: r for r in check(load_parameters(structure_parameter_file(s)), 50_000, structure=s)}
        for k in keys:
            spans[k].append(rows[k].sim.estimate)
    lines = ["| figure | published (95% interval) | default fit | range over the 16 structures' fits |",
             "| --- | --- | --- | --- |"]
    for k in keys:
        r = default[k]
        scale = 100.0 if r.figure.kind == "rate" else 1.0
        unit = "%" if r.figure.kind == "rate" else " months"
        lo, hi = r.interval
        lines.append(f"| {r.figure.label} | {scale * r.figure.value:.1f}{unit} ({scale * lo:.1f}-{scale * hi:.1f}) | "
                     f"{scale * r.sim.estimate:.1f}{unit} | {scale * min(spans[k]):.1f}-{scale * max(spans[k]):.1f}{unit} |")
    return lines


def readme_run() -> list[str]:
    """The head of `inosim run`'s table on the shipped default scenario."""
    import subprocess

    out = subprocess.run([sys.executable, "-m", "simulator", "run"], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout.splitlines()
    first = next(i for i, line in enumerate(out) if line.startswith("figure"))
    return ["```", *out[first:first + RUN_ROWS], "...", "```"]


def readme_compare() -> list[str]:
    """What `inosim compare label_dosing.yaml two_cycles_then_stop.yaml` leads with, and its figure."""
    from simulator.plots.decision import answer_plot
    from simulator.sensitivity.strategies import format_strategy_answers

    label = load_scenario(ROOT / "configs" / "label_dosing.yaml")
    two = load_scenario(ROOT / "configs" / "two_cycles_then_stop.yaml")
    ds = compare_strategies(label, {two.name: two}, METRICS)
    answer_plot(ds, two.name, ROOT / "docs" / "img")
    text = format_strategy_answers(ds, structures=False).splitlines()
    table = text.index(next(line for line in text if line.endswith("minus Label dosing:")))
    return ["```", *text[:table - 1], "...", *text[table:table + 2 + len(METRICS)], "```"]


def main() -> None:
    """Generate the blocks and write them into the docs (or print them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=seed_int, default=2025)
    parser.add_argument("--print", action="store_true", help="print the blocks instead of writing the docs")
    args = parser.parse_args()
    blocks = {"structures": "\n".join([BEGIN, *weights_table(), "", *answers_table(args.seed), END]),
              "evidence": "\n".join([BEGIN, *durability_table(), END]),
              "readme_run": "\n".join([BEGIN, *readme_run(), END]),
              "readme_compare": "\n".join([BEGIN, *readme_compare(), END])}
    if args.print:
        print("\n".join(blocks.values()))
        return
    for doc in dict.fromkeys(DOCS.values()):  # each page once, its blocks in the page's order
        rewrite(doc, BEGIN, [block for name, block in blocks.items() if DOCS[name] == doc])

if __name__ == "__main__":
    sys.exit(guarded(main, Path(__file__).name, "interrupted; the doc is unchanged"))
