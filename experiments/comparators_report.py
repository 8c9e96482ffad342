"""The numbers of docs/comparators.md, generated: each module's trial figures beside the published
ones, the pivotal trials simulated on the virtual patients, and the arms' milestones and hazard
ratios by period.

* The check (``inosim calibrate --check``'s comparator part): every trial arm's figures at
  200,000 patients, at the fit seed and at a reseed.
* The pivotal trials (``inosim trial experiments/trial_inovate.yaml`` and ``trial_tower.yaml``):
  the design's trials at its seed and at the next one, with the truth from the counterfactual
  patients.
* The modules' posterior ensemble (``configs/parameters/comparators_posterior.nc``, a shipped file:
  no Monte Carlo here): each fitted parameter's median, 95% range of the draws and free-scale SD.
* The arms of INO-VATE (InO label vs standard chemotherapy) and TOWER (blinatumomab vs
  chemotherapy in TOWER's population) followed 3 years on the same patients: Kaplan-Meier OS at
  the milestones, the median, and the hazard ratio experimental / control within periods (deaths
  per patient-month in each arm): a ratio that moves between periods is a non-proportional hazard.
* What the modules' parameter uncertainty adds to ``inosim compare configs/soc_inovate.yaml
  configs/label_dosing.yaml``: the 95% posterior interval's width with the modules at their fit
  and with their draws, at two seeds, each with its bootstrap SE over draws.

The numbers are stored in ``experiments/comparators_results.json`` and the blocks between the
``generated`` markers of docs/comparators.md are rewritten from them (``--print`` prints them
instead; ``--render`` rewrites the doc from the stored results without simulating).

    .venv/bin/python experiments/comparators_report.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _generated import END, begin, run_report

from simulator import load_scenario, simulate
from simulator.analysis.outcomes import kaplan_meier, km_first_below, km_survival_at
from simulator.calibration.comparators import TRIAL_PATIENTS, TRIAL_SEED, TRIALS, trial_check
from simulator.cli import guarded, positive_int, seed_int
from simulator.model.config import default_config_dir
from simulator.model.files import derive_scenario
from simulator.sensitivity.distributions import load_comparator_ensemble
from simulator.sensitivity.strategies import LEVEL, compare_strategies
from simulator.trial import load_design, look_cuts, operating_characteristics, simulate_trials, trial_arrays, true_values
from simulator.trial.truth import TRUTH_PATIENTS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "comparators.md"
RESULTS = ROOT / "experiments" / "comparators_results.json"
BEGIN = begin(Path(__file__).name)
CHECK_RESEED = 99  # the check's second patient seed
ARM_SEEDS = (1, 2)  # the milestones' two seeds
MILESTONES = (6.0, 12.0, 24.0)  # months
PERIODS = ((0.0, 3.0), (3.0, 6.0), (6.0, 12.0), (12.0, 24.0))  # months
FOLLOW_UP = {"simulation": {"follow_up_months": 36.0, "accrual_months": 0.0}}  # every patient 3 years
WIDTH_SEEDS = (2025, 7)  # the posterior widths' two seeds
WIDTH_METRICS = ("cr_cri", "os_24_months", "os_rmst_24_months")
RESAMPLES = 200  # bootstrap resamples of the draws for a width's SE
PIVOTAL = {"INO-VATE": ROOT / "experiments" / "trial_inovate.yaml",
           "TOWER": ROOT / "experiments" / "trial_tower.yaml"}
# recalled or read in the reports, not produced by a command (docs/comparators.md says which)
PUBLISHED = {"INO-VATE": ("0.75 (97.5% CI 0.57-0.99)", "one-sided p = 0.0105", "73.8% vs 30.9% (42.9)"),
             "TOWER": ("0.71 (95% CI 0.55-0.93)", "p = 0.01", "44% vs 25% (19)")}


# ----------------------------------------------------------------------------- the check
def check_results(n: int, seeds: tuple[int, int]) -> list[dict]:
    """Every trial arm's figures at both seeds: published value, its 95% interval, simulated value and SE."""
    out = []
    for trial in TRIALS:
        runs = [trial_check(trial, n_patients=n, seed=s) for s in seeds]
        rows = [{"label": r.figure.label, "kind": r.figure.kind, "fitted": r.figure.fitted,
                 "published": r.figure.value, "interval": list(r.interval),
                 "simulated": [x.sim.estimate for x in pair], "se": [x.sim.se for x in pair],
                 "inside": [x.inside for x in pair]}
                for r, pair in zip(runs[0], zip(*runs))]
        out.append({"title": trial.title, "rows": rows})
    return out


def _value(kind: str, x: float, unit: bool = True) -> str:
    if kind == "rate":
        return f"{100 * x:.1f}" + ("%" if unit else "")
    return f"{x:.2f}"


def check_table(results: dict) -> list[str]:
    n, seeds = results["check_patients"], results["check_seeds"]
    se = [100 * s for t in results["check"] for r in t["rows"] if r["kind"] == "rate" for s in r["se"]]
    se_months = [s for t in results["check"] for r in t["rows"] if r["kind"] != "rate" for s in r["se"]]
    lines = [f"{n:,} simulated patients per arm, seed {seeds[0]} (the fit's); in parentheses patient seed "
             f"{seeds[1]}; rates in %, medians in months (cycles for the median cycles) (Monte Carlo SE "
             f"{min(se):.1f}-{max(se):.1f} points for rates, {min(se_months):.2f}-{max(se_months):.2f} months "
             "for medians); **outside**: the simulated value lies outside the "
             "figure's 95% interval:", "",
             "| trial, figure | published (95% interval) | simulated (reseeded) |", "| --- | --- | --- |"]
    for trial in results["check"]:
        rows = sorted(trial["rows"], key=lambda r: not r["fitted"])  # fitted first, as the check prints
        for i, r in enumerate(rows):
            kind, lo, hi = r["kind"], *r["interval"]
            what = r["label"]
            if i == 0 or r["fitted"] != rows[i - 1]["fitted"]:
                what = (f"**{trial['title']}**, " if i == 0 else "") + ("fitted: " if r["fitted"] else "validation: ") + what
            interval = f"from {_value(kind, lo, False)}" if hi == float("inf") else \
                f"{_value(kind, lo, False)}-{_value(kind, hi, False)}"
            a, b = r["simulated"]
            sim = f"{_value(kind, a)} ({_value(kind, b)})"
            if not all(r["inside"]):
                sim = f"**{sim}: outside**"
            lines.append(f"| {what} | {_value(kind, r['published'])} ({interval}) | {sim} |")
    return lines


# ----------------------------------------------------------------------------- the modules' ensemble
def ensemble_results() -> list[dict]:
    """Each fitted module parameter of the shipped ensemble: median, 95% range, SD on the free scale."""
    ens = load_comparator_ensemble()
    out = []
    for prior in (p for trial in TRIALS for p in trial.fitted):
        x = ens.parameters.sel(parameter=prior.name).values
        lo, hi = np.quantile(x, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        out.append({"name": prior.name, "transform": prior.transform, "median": float(np.median(x)),
                    "range": [float(lo), float(hi)], "prior_sd": prior.prior_sd,
                    "free_sd": float(np.std([prior.to_free(float(v)) for v in x], ddof=1))})
    return out


def ensemble_table(results: dict) -> list[str]:
    lines = [f"The shipped ensemble's {len(results['ensemble'])} fitted parameters (natural scale; SD on the free "
             "scale, log or logit where named):", "",
             "| parameter | median | 95% of the draws | free-scale SD (prior SD) |", "| --- | --- | --- | --- |"]

    def g(x: float) -> str:
        return f"{x:.2g}" if abs(x) < 0.1 else f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"

    for r in results["ensemble"]:
        scale = "" if r["transform"] == "id" else r["transform"] + " "
        lines.append(f"| `{r['name']}` | {g(r['median'])} | {g(r['range'][0])} to {g(r['range'][1])} | "
                     f"{scale}{g(r['free_sd'])} ({r['prior_sd']:g}) |")
    return lines


# ----------------------------------------------------------------------------- the pivotal trials
def trial_results(path: Path, seed: int, n_trials: int | None, n_truth: int) -> dict:
    """One pivotal design as ``inosim trial`` runs it: the figures the doc's table shows."""
    design = load_design(path)
    ta = trial_arrays(design, path.parent, path)
    ds = simulate_trials(ta, n_trials=n_trials or design.n_trials, seed=seed)
    truth = true_values(ta, seed, look_cuts(ds), n=n_truth)
    figures = {f.name: f for f in operating_characteristics(ds, truth)}
    power = {t: [figures[f"power: {t}"].estimate, figures[f"power: {t}"].lower, figures[f"power: {t}"].upper]
             for t in map(str, ds.test.values)}
    return {"trials": int(ds.sizes["trial"]), "seed": seed,
            "hr_median": figures["median estimate at stop: os_cox"].estimate,
            "hr_true": float(truth.true_estimate.sel(test="os_cox").squeeze()),
            "cr_difference_true": float(truth.true_estimate.sel(test="cr_cri_difference").squeeze()), "power": power}


def _power(p: list[float]) -> str:
    return f"{100 * p[0]:.1f}% ({100 * p[1]:.1f}-{100 * p[2]:.1f})"


def trials_table(results: dict) -> list[str]:
    runs = results["trials"]
    first = runs["INO-VATE"][0]
    seeds = [r["seed"] for r in runs["INO-VATE"]]
    lines = [f"{first['trials']:,} simulated trials each, seed {seeds[0]} (the designs'), in parentheses seed "
             f"{seeds[1]}; truth from {results['truth_patients']:,} counterfactual patients per arm; power with its "
             "95% Monte Carlo CI:", "",
             "| | INO-VATE simulated | published (S1) | TOWER simulated | published (S27) |",
             "| --- | --- | --- | --- | --- |"]

    def row(what: str, cell, published: tuple[str, str] = ("", "")) -> str:
        cells = [f"{cell(runs[t][0])} ({cell(runs[t][1])})" for t in PIVOTAL]
        return f"| {what} | {cells[0]} | {published[0]} | {cells[1]} | {published[1]} |"

    lines.append(row("OS hazard ratio, median estimate (Cox)", lambda r: f"{r['hr_median']:.3f}",
                     tuple(PUBLISHED[t][0] for t in PIVOTAL)))
    lines.append(row("true hazard ratio (Cox, large sample)", lambda r: f"{r['hr_true']:.3f}"))
    primary = [f"{_power(runs[t][0]['power']['os_logrank'])}; {_power(runs[t][1]['power']['os_logrank'])}"
               for t in PIVOTAL]
    lines.append(f"| power of the primary log-rank test (seed {seeds[0]}; seed {seeds[1]}) | {primary[0]} | "
                 f"{PUBLISHED['INO-VATE'][1]} | {primary[1]} | {PUBLISHED['TOWER'][1]} |")
    others = dict.fromkeys(t for name in PIVOTAL for t in runs[name][0]["power"] if t != "os_logrank")
    for test in others:
        lines.append(row(f"power of `{test}`", lambda r, t=test: f"{100 * r['power'][t][0]:.1f}%" if t in r["power"]
                         else "-"))
    lines.append(row("CR/CRi difference, true", lambda r: f"{100 * r['cr_difference_true']:.1f} points",
                     tuple(PUBLISHED[t][2] for t in PIVOTAL)))
    return lines


# ----------------------------------------------------------------------------- the arms followed 3 years
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


def arm_results(n: int, seed: int) -> dict:
    """Each arm's median OS and milestones, and each trial's hazard ratio by period."""
    out = {}
    for trial, pair in arms().items():
        runs = []
        for scenario in pair:
            ds = simulate(scenario, n_patients=n, seed=seed)
            runs.append((ds.os_months.values, ds.os_event.values.astype(bool)))
        summary = []
        for (t, e), scenario in zip(runs, pair):
            km_t, km_s, _ = kaplan_meier(t, e)
            summary.append({"treatment": scenario.treatment, "median": km_first_below(km_t, km_s, 0.5),
                            "milestones": [float(km_survival_at(t, e, m)[0]) for m in MILESTONES]})
        ratios = [float(period_hazard(*runs[1], a, b) / period_hazard(*runs[0], a, b)) for a, b in PERIODS]
        out[trial] = {"arms": summary, "hazard_ratios": ratios}
    return out


ARM_NAMES = {"soc_chemotherapy": "standard chemotherapy", "inotuzumab": "inotuzumab, label"}


def milestones_table(results: dict) -> list[str]:
    a, b = results["arms"]
    lines = [f"{results['arm_patients']:,} patients per arm, every patient followed 3 years, the same patients in "
             f"both arms; seed {results['arm_seeds'][0]}, seed {results['arm_seeds'][1]} in parentheses:", "",
             "| arm | median OS, months | " + " | ".join(f"OS {m:g} months" for m in MILESTONES) + " |",
             "| --- | --- | " + " | ".join("---" for _ in MILESTONES) + " |"]
    for trial in a:
        population = "INO-VATE" if trial == "INO-VATE" else "TOWER population"
        for x, y in zip(a[trial]["arms"], b[trial]["arms"]):
            name = ARM_NAMES.get(x["treatment"], x["treatment"])
            if trial != "INO-VATE" and x["treatment"] == "soc_chemotherapy":
                name = "chemotherapy"
            cells = " | ".join(f"{100 * p:.1f}% ({100 * q:.1f}%)" for p, q in zip(x["milestones"], y["milestones"]))
            lines.append(f"| {population}: {name} | {x['median']:.2f} ({y['median']:.2f}) | {cells} |")
    return lines


def hazards_table(results: dict) -> list[str]:
    a, b = results["arms"]
    lines = ["Hazard ratio (experimental / control) by period, deaths per patient-month in each arm (the same "
             f"runs; seed {results['arm_seeds'][1]} in parentheses):", "",
             "| period, months | " + " | ".join(f"{s:g}-{e:g}" for s, e in PERIODS) + " |",
              "| --- | " + " | ".join("---" for _ in PERIODS) + " |"]
    for trial, what in (("INO-VATE", "INO-VATE, InO vs chemotherapy"), ("TOWER", "TOWER, blinatumomab vs chemotherapy")):
        cells = " | ".join(f"{p:.2f} ({q:.2f})" for p, q in zip(a[trial]["hazard_ratios"], b[trial]["hazard_ratios"]))
        lines.append(f"| {what} | {cells} |")
    return lines


# ----------------------------------------------------------------------------- the modules' uncertainty in compare
def width_results(seed: int, draws: int | None = None) -> dict:
    """Label dosing minus standard chemotherapy (``inosim compare configs/soc_inovate.yaml
    configs/label_dosing.yaml``): each metric's 95% posterior interval width and its bootstrap SE over
    draws, with the modules' parameters at their fit (every draw of their ensemble the fit) and drawn."""
    configs = default_config_dir()
    soc, label = (load_scenario(configs / f"{n}.yaml") for n in ("soc_inovate", "label_dosing"))
    drawn = load_comparator_ensemble()
    at_fit = drawn.copy(data={"parameters": np.broadcast_to(soc.comparators.vector(), drawn.parameters.shape)})
    rng = np.random.default_rng(seed)
    out = {}
    for mode, ensemble in (("fit", at_fit), ("drawn", drawn)):
        ds = compare_strategies(soc, {label.name: label}, WIDTH_METRICS, comparator_ensemble=ensemble, seed=seed,
                                draws=draws, per_structure=0)
        d = ds.draw_difference.sel(strategy=label.name).transpose("metric", "draw").values
        q = ((1 - LEVEL) / 2, (1 + LEVEL) / 2)
        width = np.diff(np.quantile(d, q, axis=1), axis=0)[0]
        boot = rng.integers(0, d.shape[1], size=(RESAMPLES, d.shape[1]))
        se = np.diff(np.quantile(d[:, boot], q, axis=2), axis=0)[0].std(axis=1, ddof=1)
        out[mode] = {m: [float(w), float(e)] for m, w, e in zip(WIDTH_METRICS, width, se)}
    return {"draws": int(ds.attrs["combined_draws"]), "replicates": int(ds.attrs["replicates"]),
            "patients": int(ds.attrs["patients"]), "seed": seed, **out}


WIDTH_ROWS = {"cr_cri": ("CR/CRi", 100, 1, "pp"), "os_24_months": ("OS at 24 months", 100, 1, "pp"),
              "os_rmst_24_months": ("restricted mean OS to 24 months", 1, 2, "months")}


def widths_table(results: dict) -> list[str]:
    runs = results["widths"]
    first = runs[0]
    lines = [f"Label dosing minus standard chemotherapy, {first['draws']} draws x {first['replicates']} trials of "
             f"{first['patients']} patients; seeds {' and '.join(str(r['seed']) for r in runs)}, each width +- its "
             "bootstrap SE over draws:", "",
             "| difference | modules at their fit | modules drawn |", "| --- | --- | --- |"]
    for m, (what, scale, dp, unit) in WIDTH_ROWS.items():
        cells = [", ".join(f"{scale * r[mode][m][0]:.{dp}f} +- {scale * r[mode][m][1]:.{dp}f}" for r in runs)
                 + f" {unit}" for mode in ("fit", "drawn")]
        lines.append(f"| {what} | {cells[0]} | {cells[1]} |")
    return lines


# ----------------------------------------------------------------------------- a sequence
SEQUENCES = ("label_dosing", "ino_then_car_t")  # InO alone, and InO then brexucabtagene at progression


def sequence_results(n: int, seed: int) -> dict:
    """Each scenario's median OS, OS at 24 months, share reaching the next line, CR/CRi on it (of
    those reaching it) and any HSCT."""
    out = {}
    for name in SEQUENCES:
        ds = simulate(load_scenario(default_config_dir() / f"{name}.yaml"), n_patients=n, seed=seed)
        t, e = ds.os_months.values, ds.os_event.values.astype(bool)
        km_t, km_s, _ = kaplan_meier(t, e)
        reached = np.isfinite(ds.then_start_day.values)
        out[name] = {"median": km_first_below(km_t, km_s, 0.5), "os_24": float(km_survival_at(t, e, 24.0)[0]),
                     "next_line": float(reached.mean()),
                     "next_response": float(ds.then_response.values[reached].mean()) if reached.any() else None,
                     "hsct": float(ds.hsct.values.mean())}
    return out


def sequences_table(results: dict) -> list[str]:
    a, b = results["sequences"]
    seeds = results["arm_seeds"]
    lines = [f"{results['arm_patients']:,} patients, seed {seeds[0]} (seed {seeds[1]}):", "",
             "| scenario | median OS, months | OS at 24 months | reach the next line | CR/CRi on it | any HSCT |",
             "| --- | --- | --- | --- | --- | --- |"]

    def pct(x: float | None, y: float | None) -> str:
        return "" if x is None else f"{100 * x:.1f}% ({100 * y:.1f}%)"

    for name in SEQUENCES:
        x, y = a[name], b[name]
        reaches = x["next_line"] > 0
        lines.append(f"| {name} | {x['median']:.2f} ({y['median']:.2f}) | {pct(x['os_24'], y['os_24'])} | "
                     f"{pct(x['next_line'], y['next_line']) if reaches else ''} | "
                     f"{pct(x['next_response'], y['next_response'])} | {pct(x['hsct'], y['hsct'])} |")
    return lines


# ----------------------------------------------------------------------------- the doc
def blocks(results: dict) -> list[str]:
    """The doc's generated blocks, in the page's order."""
    return ["\n".join([BEGIN, *table(results), END])
            for table in (check_table, ensemble_table, trials_table, milestones_table, hazards_table, widths_table,
                          sequences_table)]


def results(check_patients: int, n_trials: int | None, truth_patients: int, arm_patients: int, seed: int) -> dict:
    """Every number of the blocks (``seed``: the pivotal trials' first seed)."""
    return {"check_patients": check_patients, "check_seeds": [TRIAL_SEED, CHECK_RESEED],
            "check": check_results(check_patients, (TRIAL_SEED, CHECK_RESEED)),
            "ensemble": ensemble_results(),
            "truth_patients": truth_patients,
            "trials": {name: [trial_results(path, s, n_trials, truth_patients) for s in (seed, seed + 1)]
                       for name, path in PIVOTAL.items()},
            "arm_patients": arm_patients, "arm_seeds": list(ARM_SEEDS),
            "arms": [arm_results(arm_patients, s) for s in ARM_SEEDS],
            "sequences": [sequence_results(arm_patients, s) for s in ARM_SEEDS],
            "widths": [width_results(s) for s in WIDTH_SEEDS]}


def main() -> None:
    """Simulate, store the results and rewrite the doc's blocks (or print them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=positive_int, default=TRIAL_PATIENTS,
                        help="patients per arm of the check and of the milestones")
    parser.add_argument("--trials", type=positive_int, help="pivotal trials per seed (default: each design's)")
    parser.add_argument("--truth-patients", type=positive_int, default=TRUTH_PATIENTS)
    parser.add_argument("--seed", type=seed_int, default=2025, help="the pivotal trials' first seed")
    run_report(parser, DOC, RESULTS, BEGIN, lambda a: results(a.patients, a.trials, a.truth_patients, a.patients, a.seed),
        blocks)


if __name__ == "__main__":
    sys.exit(guarded(main, Path(__file__).name, "interrupted; the doc is unchanged"))
