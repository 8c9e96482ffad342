"""The numbers of docs/evidence.md's sections on the "continue vs stop InO in remission" contrast and on
PFS and remission duration, generated: label dosing under the shipped parameters and with the
on-treatment relapse effect (``relapse_on_treatment``) set to 0 and reversed, on the same patients.

* S7's guarantee-time-biased analysis (:func:`simulator.analysis.continuation_analysis`) and a
  landmark version of it (responders not transplanted, alive and in remission at day 120);
* recorded and protocol-definition PFS, remission duration, how many patients the definition
  changes, and where the patients progression-free at 12 months come from.

The numbers are stored in ``experiments/evidence_results.json`` and the blocks between the
``generated`` markers of docs/evidence.md written by this script are rewritten from them
(``--print`` prints them instead; ``--render`` rewrites the doc from the stored results without
simulating).

    .venv/bin/python experiments/evidence_report.py
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
from _generated import END, begin, run_report

from simulator import load_scenario, simulate
from simulator.analysis import continuation_analysis, continuation_rows, load_evidence
from simulator.analysis.continuation import CYCLES_SPLIT, ContinuationAnalysis, Share, responders_without_hsct
from simulator.analysis.outcomes import (
    MONTH,
    HazardRatio,
    cox_hazard_ratio,
    km_median,
    km_survival_at,
    protocol_pfs,
    remission_duration,
)
from simulator.analysis.targets import format_rows
from simulator.cli import guarded, positive_int, seed_int

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "evidence.md"
RESULTS = ROOT / "experiments" / "evidence_results.json"
BEGIN = begin(Path(__file__).name)
SCENARIO = ROOT / "configs" / "label_dosing.yaml"
LANDMARK_DAY = 120.0  # after the 4th cycle would have started
EFFECTS = ("fitted", "none", "reversed")  # relapse_on_treatment: the shipped value, 0, minus the shipped value
Z = 2.0  # standard errors at which a difference "shows" (the landmark's sample size)


def _km(time: np.ndarray, event: np.ndarray) -> dict:
    """Kaplan-Meier median and survival at 6 and 12 months, each [estimate, lower, upper]."""
    return {"median": list(km_median(time, event)),
            **{f"at_{m}": list(km_survival_at(time, event, float(m))) for m in (6, 12)}}


def _landmark(ds, day: float) -> dict:
    """S7's contrast among responders not transplanted who are alive and in remission at ``day``:
    remission from ``day`` on, > 3 vs <= 3 cycles."""
    months, event = remission_duration(ds)
    response = ds["response_day"].values
    kept = responders_without_hsct(ds) & (response <= day) & (response + months * MONTH > day)
    more = ds["cycles"].values[kept] > CYCLES_SPLIT
    return {"patients": int(kept.sum()), "more": int(more.sum()),
            "hazard_ratio": dataclasses.asdict(cox_hazard_ratio(months[kept] - (day - response[kept]) / MONTH,
                                                                event[kept], more))}


def _pfs(ds) -> dict:
    """Recorded and protocol PFS, remission duration, the patients the definition changes, and the
    groups that make up protocol PFS at 12 months."""
    recorded = ds["pfs_months"].values, ds["pfs_event"].values.astype(bool)
    protocol = protocol_pfs(ds)
    remission = remission_duration(ds)
    responded = np.isfinite(remission[0])
    changed = recorded[0] - protocol[0] > 1e-9
    never = ds["best_response"].values == 0
    transplanted = ds["hsct_in_remission"].values == 1
    groups = {"patients transplanted in InO CR/CRi": transplanted, "responders not transplanted in remission":
              ~never & ~transplanted, "patients who never reached CR/CRi": never}
    return {"recorded": _km(*recorded), "protocol": _km(*protocol),
            "remission": _km(remission[0][responded], remission[1][responded]),
            "changed": float(changed.mean()), "never": float(never.mean()),
            "changed_never": float((changed & never).sum() / max(changed.sum(), 1)),
            "changed_by": float(np.median(recorded[0][changed] - protocol[0][changed])),
            "at_12_by_group": {g: {"share": float(mask.mean()),
                                   "at_12": list(km_survival_at(protocol[0][mask], protocol[1][mask], 12.0))}
                               for g, mask in groups.items()}}


def effect_results(n: int, seed: int) -> dict:
    """Every figure under each on-treatment relapse effect, on the same patients."""
    scenario = load_scenario(SCENARIO)
    fitted = scenario.parameters.relapse_on_treatment
    out = {}
    for name, value in zip(EFFECTS, (fitted, 0.0, -fitted)):
        s = scenario.model_copy(update={"parameters": scenario.parameters.model_copy(
            update={"relapse_on_treatment": value})})
        ds = simulate(s, n_patients=n, seed=seed)
        out[name] = {"relapse_on_treatment": value, "continuation": dataclasses.asdict(continuation_analysis(ds)),
                     "landmark": _landmark(ds, LANDMARK_DAY), "pfs": _pfs(ds)}
    return out


def _analysis(d: dict) -> ContinuationAnalysis:
    """A stored :class:`ContinuationAnalysis`."""
    return ContinuationAnalysis(d["patients"], *(Share(**d[k]) for k in ("responders_without_hsct", "more_cycles")),
                                HazardRatio(**d["hazard_ratio"]),
                                *(Share(**d[k]) for k in ("mrd_more_cycles", "mrd_fewer_cycles")))


def _pct(share: Share, ci: bool = True) -> str:
    lo, hi = share.ci()
    return f"{100 * share.estimate:.1f}%" + (f" ({100 * lo:.1f}-{100 * hi:.1f})" if ci else "")


def _hr(h: dict) -> str:
    return f"{h['estimate']:.3f} ({h['lower']:.3f}-{h['upper']:.3f})"


def continuation_block(results: dict) -> list[str]:
    """The S7 table at every effect, the landmark contrast and the sample size it would need."""
    runs = results["effects"]
    titles = {"fitted": "fitted", "none": "no effect", "reversed": "the fit reversed: harm"}
    lines = [f"{results['patients']:,} virtual patients under label dosing, seed {results['seed']}, the same patients "
             "in every row; 95% Monte Carlo intervals:", "",
             "| relapse-on-treatment log-HR | responders not transplanted (N, events) | > 3 cycles | remission-duration "
             "HR | MRD-negative, > 3 | MRD-negative, <= 3 | landmark HR at day "
             f"{LANDMARK_DAY:.0f} |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in EFFECTS:
        run = runs[name]
        a = _analysis(run["continuation"])
        lines.append(f"| {run['relapse_on_treatment']:+.2f} ({titles[name]}) | {a.more_cycles.n:,} "
                     f"({a.hazard_ratio.events:,}) | {_pct(a.more_cycles)} | {_hr(run['continuation']['hazard_ratio'])} "
                     f"| {_pct(a.mrd_more_cycles)} | {_pct(a.mrd_fewer_cycles)} | "
                     f"{_hr(run['landmark']['hazard_ratio'])} |")
    fitted, none = (runs[k]["landmark"] for k in ("fitted", "none"))
    difference = abs(math.log(fitted["hazard_ratio"]["estimate"]) - math.log(none["hazard_ratio"]["estimate"]))
    needed = fitted["patients"] * (Z * fitted["hazard_ratio"]["log_se"] / difference) ** 2
    lines += ["", f"Landmark: the {fitted['patients']:,} responders not transplanted alive and in remission at day "
              f"{LANDMARK_DAY:.0f} (fitted row), remission from that day. The fitted and the no-effect landmark HRs "
              f"differ by {difference:.3f} on the log scale: about {needed:,.0f} such patients "
              f"({100 * fitted['more'] / fitted['patients']:.0f}% of them in the > 3 group) would show it at {Z:g} "
              "standard errors."]
    return lines


def rows_block(results: dict) -> list[str]:
    """What the page's snippet prints (the fitted row)."""
    rows = continuation_rows(_analysis(results["effects"]["fitted"]["continuation"]), load_evidence())
    return ["```", *format_rows(rows).splitlines(), "```"]


def _km_cell(f: list[float], unit: str) -> str:
    scale, dp, suffix = (100, 1, "%") if unit == "%" else (1, 2, "")
    return f"{scale * f[0]:.{dp}f}{suffix} ({scale * f[1]:.{dp}f}-{scale * f[2]:.{dp}f})"


def pfs_block(results: dict) -> list[str]:
    """Recorded vs protocol PFS, what the definition changes, remission duration, and the 12-month tail."""
    run, none = results["effects"]["fitted"]["pfs"], results["effects"]["none"]["pfs"]
    lines = [f"Label dosing, {results['patients']:,} patients, seed {results['seed']}; 95% Monte Carlo intervals:", "",
             "| figure | recorded PFS | INO-VATE-definition PFS |", "| --- | --- | --- |"]
    for key, what, unit in (("median", "median PFS, months", ""), ("at_6", "PFS at 6 months", "%"),
                            ("at_12", "PFS at 12 months", "%")):
        lines.append(f"| {what} | {_km_cell(run['recorded'][key], unit)} | {_km_cell(run['protocol'][key], unit)} |")
    tail = run["at_12_by_group"]
    lines += ["", f"The definition changes the PFS of {100 * run['changed']:.1f}% of all patients "
              f"({100 * run['changed_never']:.0f}% of them among the {100 * run['never']:.1f}% who never reach "
              f"CR/CRi), shortening it by a median of {run['changed_by']:.1f} months. "
              f"Remission duration: median {_km_cell(run['remission']['median'], '')} months, "
              f"{_km_cell(run['remission']['at_12'], '%')} still in remission at 12 months. Of the "
              f"{100 * run['protocol']['at_12'][0]:.1f}% progression-free at 12 months (INO-VATE definition), "
              + ", ".join(f"{100 * t['share'] * t['at_12'][0]:.1f} points are {g} ({100 * t['at_12'][0]:.1f}% of them)"
                          for g, t in tail.items())
              + ". With no on-treatment relapse effect (log-HR 0 instead of "
              f"{results['effects']['fitted']['relapse_on_treatment']:+.2f}) median remission duration is "
              f"{none['remission']['median'][0]:.2f} months instead of {run['remission']['median'][0]:.2f}, and "
              f"12-month PFS (INO-VATE definition) {100 * none['protocol']['at_12'][0]:.1f}% instead of "
              f"{100 * run['protocol']['at_12'][0]:.1f}%."]
    return lines


def blocks(results: dict) -> list[str]:
    """The doc's generated blocks, in the page's order."""
    return ["\n".join([BEGIN, *table(results), END]) for table in (continuation_block, rows_block, pfs_block)]


def main() -> None:
    """Simulate, store the results and rewrite the doc's blocks (or print them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=positive_int, default=200_000)
    parser.add_argument("--seed", type=seed_int, default=2025)
    run_report(parser, DOC, RESULTS, BEGIN,
        lambda a: {"patients": a.patients, "seed": a.seed, "effects": effect_results(a.patients, a.seed)}, blocks)


if __name__ == "__main__":
    sys.exit(guarded(main, Path(__file__).name, "interrupted; the doc is unchanged"))
