"""Strategy answers with every kind of uncertainty: Monte Carlo, parameter and structural.

A strategy question ("two cycles then stop instead of label dosing?") is answered three
ways, on the same virtual patients (common random numbers across strategies, draws and
structures):

* **at the fitted values**: the shipped parameter set, with a Monte Carlo interval from
  the spread over trial-sized replicates. It covers the finite number of simulated
  patients only.
* **over the combined ensemble**: every draw of the calibrated posterior of every model
  structure, mixed in proportion to the structure's posterior probability (see
  :func:`simulator.calibration.run.combined_ensemble`). Its mean, 95% interval and the
  probability that the strategy is better cover parameter and structural uncertainty
  (plus a little Monte Carlo noise per draw, reported as ``mc_share``).
* **under each structure**: the same over draws of that structure's own posterior, so an
  answer that flips between structures is visible as such.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import numpy as np
import xarray as xr

from simulator.analysis.labels import STRATEGIES, metric_label, strategy_title
from simulator.analysis.outcomes import POOLED_ANALYSIS_PATIENTS
from simulator.analysis.trial_metrics import FRACTION_UNIT, TRIAL_METRICS, netcdf_unit
from simulator.model.config import Scenario
from simulator.model.kernel import PARAMETER_NAMES
from simulator.sensitivity.distributions import load_ensemble, varied_parameters
from simulator.sensitivity.psa import psa

REFERENCE = "base"  # the name of the reference strategy in the analysis
HEADLINE = ("os_24_months", "post_hsct_nrm", "os_12_months", "os_rmst_24_months", "cr_cri", "hsct", "sos_any")
# which direction is better, for P(better); a metric not listed reports P(difference > 0)
HIGHER_IS_BETTER = {"os_12_months": True, "os_24_months": True, "os_rmst_24_months": True,
                    "os_median_months": True, "cr_cri": True, "mrd_negative": True,
                    "post_hsct_nrm": False, "sos_any": False, "sos_post_hsct": False, "sos_grade34": False,
                    "deaths_nrm_post_hsct": False, "deaths_toxicity": False, "g3ae": False}
FITTED_REPLICATES = 600  # 600 x 338 = 202,800 patients per strategy at the fitted values
ENSEMBLE_REPLICATES = 40  # 40 x 338 = 13,520 patients per strategy and draw
PER_STRUCTURE_DRAWS = 20  # draws of each structure's own posterior for the per-structure answers
LEVEL = 0.95
Z_LEVEL = 1.959963984540054  # standard normal quantile of (1 + LEVEL) / 2: the half-width of an MC CI in SEs
COVERAGE = {
    "monte_carlo": "Monte Carlo error of the simulated patients only, at the fitted parameter values of "
                   "the shipped structure; not parameter or structural uncertainty",
    "posterior": "parameter and structural uncertainty: the calibrated posterior of every model structure, "
                 "weighted by how well each explains the published figures (plus a small Monte Carlo part)",
}


def _one_point(scenario: Scenario) -> xr.Dataset:
    """The scenario's own parameter values as a one-draw ensemble (every parameter marked fitted)."""
    values = np.array([[getattr(scenario.parameters, n) for n in PARAMETER_NAMES]])
    return xr.Dataset({"parameters": (("draw", "parameter"), values)},
                      coords={"draw": [0], "parameter": list(PARAMETER_NAMES),
                              "fitted": ("parameter", [True] * len(PARAMETER_NAMES))})


def _spaced(n: int, k: int | None) -> np.ndarray:
    """``k`` indices evenly spaced through ``range(n)`` (all of them if ``k`` is None or larger)."""
    return np.arange(n) if k is None or k >= n else np.unique(np.linspace(0, n - 1, k).round().astype(int))


def _draws(ensemble: xr.Dataset, combined: int | None, per_structure: int) -> tuple[np.ndarray, list[str], list[str]]:
    """Parameter rows: draws of the combined ensemble, then ``per_structure`` draws of each structure."""
    pick = _spaced(ensemble.sizes["draw"], combined)
    rows = [ensemble["parameters"].values[pick]]
    labels = ["combined"] * len(pick)
    structures: list[str] = []
    if "structure_parameters" in ensemble and per_structure > 0:
        own = ensemble["structure_parameters"].values
        pick = _spaced(own.shape[1], per_structure)
        structures = [str(s) for s in ensemble["structure"].values]
        for s, name in enumerate(structures):
            rows.append(own[s, pick])
            labels += [name] * len(pick)
    return np.concatenate(rows), labels, structures


def _draw_structures(ensemble: xr.Dataset, draws: int | None) -> list[str]:
    """The structure of each chosen combined-ensemble draw ("" for an ensemble without structures)."""
    pick = _spaced(ensemble.sizes["draw"], draws)
    if "draw_structure" not in ensemble.coords:
        return [""] * len(pick)
    return [str(s) for s in ensemble["draw_structure"].values[pick]]


def _summary(est: np.ndarray, better_sign: float) -> tuple[float, float, float, float]:
    """Mean, 95% interval and probability of being better over draws."""
    lo, hi = np.quantile(est, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(est.mean()), float(lo), float(hi), float(np.mean(better_sign * est > 0))


def compare_strategies(reference: Scenario, strategies: Mapping[str, Scenario], metrics: Sequence[str] = HEADLINE,
                       *, ensemble: str | xr.Dataset | None = None, seed: int = 2025,
                       patients: int = POOLED_ANALYSIS_PATIENTS,
                       fitted_replicates: int = FITTED_REPLICATES, replicates: int = ENSEMBLE_REPLICATES,
                       draws: int | None = None, per_structure: int = PER_STRUCTURE_DRAWS,
                       progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """Each strategy minus the reference, with Monte Carlo, parameter and structural uncertainty.

    Parameters
    ----------
    reference : Scenario
        The reference strategy (e.g. label dosing); its parameter values are the fitted ones.
    strategies : mapping of str to Scenario
        The strategies compared with it, on the same patients.
    metrics : sequence of str
        Metric ids of :data:`simulator.analysis.trial_metrics.TRIAL_METRICS`.
    ensemble : path or Dataset, optional
        The combined ensemble (default: the shipped ``configs/parameters/posterior.nc``).
    seed, patients : int
        Generator seed and patients per replicate (a trial of the pooled analysis' size).
    fitted_replicates, replicates : int
        Replicates per strategy at the fitted values, and per draw of the ensembles.
    draws : int, optional
        Draws of the combined ensemble, evenly spaced (default: all).
    per_structure : int
        Draws of each structure's own posterior for the answer under that structure (0: none).
    progress : callable, optional
        ``progress(done, total)`` in parameter sets.

    Returns
    -------
    xarray.Dataset
        Over (``strategy``, ``metric``): ``fitted``, ``fitted_lower``, ``fitted_upper``
        (Monte Carlo 95% CI at the fitted values); ``posterior_mean``, ``posterior_lower``,
        ``posterior_upper`` (95% interval over the combined ensemble), ``prob_better``
        (share of draws in which the strategy is better; P(difference > 0) where no
        direction is defined, see ``better``), ``mc_share`` (the share of the ensemble
        variance that is Monte Carlo noise); over (``structure``, ``strategy``, ``metric``):
        ``structure_mean``, ``structure_lower``, ``structure_upper``,
        ``structure_prob_better``; ``structure_weight`` (structure); ``draw_difference``
        (draw, strategy, metric) and ``draw_inputs`` (draw, parameter) for each draw of
        the combined ensemble, with its structure in ``draw_structure``. Differences of rates
        are fractions (``units: 1``; shown as percentage points). What each interval
        covers is in ``attrs``.
    """
    unknown = [m for m in metrics if m not in {t.id for t in TRIAL_METRICS}]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}")
    keys = {name: f"s{i}" for i, name in enumerate(strategies)}  # variable names must be identifiers
    specs = [{"metric": m, "strategy": keys[s], "minus": REFERENCE, "name": f"{m}__{keys[s]}"}
             for s in strategies for m in metrics]
    common = dict(strategies={keys[s]: scenario for s, scenario in strategies.items()}, patients=patients, seed=seed)
    point = psa(reference, _one_point(reference), specs, replicates=fitted_replicates, **common)
    ens = load_ensemble(ensemble)
    rows, labels, structures = _draws(ens, draws, per_structure)
    varied = set(varied_parameters(ens)) | {str(n) for n, v in zip(ens["parameter"].values, np.ptp(rows, axis=0))
                                            if v > 0}
    mixed = xr.Dataset({"parameters": (("draw", "parameter"), rows)},
                       coords={"draw": np.arange(len(rows)), "parameter": ens["parameter"].values,
                               "fitted": ("parameter", [str(n) in varied for n in ens["parameter"].values])})
    runs = psa(reference, mixed, specs, replicates=replicates, progress=progress, **common)
    labels_arr = np.array(labels)
    names, shape = list(strategies), (len(strategies), len(metrics))
    out = {k: np.full(shape, math.nan) for k in ("fitted", "fitted_lower", "fitted_upper", "posterior_mean",
                                                   "posterior_lower", "posterior_upper", "prob_better",
                                                   "mc_share")}
    combined = labels_arr == "combined"
    per_draw = np.full((int(combined.sum()), *shape), math.nan)
    per = {k: np.full((len(structures), *shape), math.nan) for k in ("structure_mean", "structure_lower",
                                                                      "structure_upper", "structure_prob_better")}
    signs = np.array([1.0 if HIGHER_IS_BETTER.get(m, True) else -1.0 for m in metrics])
    for i, s in enumerate(names):
        for j, m in enumerate(metrics):
            key = f"{m}__{keys[s]}"
            fit = point[key].isel(draw=0)
            out["fitted"][i, j], out["fitted_lower"][i, j], out["fitted_upper"][i, j] = fit.values
            est, lo, hi = (runs[key].sel(statistic=k).values for k in ("estimate", "lower", "upper"))
            per_draw[:, i, j] = est[combined]
            mean, low, high, p = _summary(est[combined], signs[j])
            out["posterior_mean"][i, j], out["posterior_lower"][i, j] = mean, low
            out["posterior_upper"][i, j], out["prob_better"][i, j] = high, p
            mc_var = np.mean(((hi - lo)[combined] / (2 * Z_LEVEL)) ** 2)
            total = est[combined].var(ddof=1) if combined.sum() > 1 else math.nan
            out["mc_share"][i, j] = min(mc_var / total, 1.0) if total > 0 else math.nan
            for k, name in enumerate(structures):
                sel = labels_arr == name
                (per["structure_mean"][k, i, j], per["structure_lower"][k, i, j],
                 per["structure_upper"][k, i, j], per["structure_prob_better"][k, i, j]) = _summary(est[sel], signs[j])
    by_id = {t.id: t for t in TRIAL_METRICS}
    units = [netcdf_unit(by_id[m]) for m in metrics]
    dims = ("strategy", "metric")
    data = {k: (dims, v) for k, v in out.items()}
    data.update({k: (("structure", *dims), v) for k, v in per.items()})
    data["draw_difference"] = (("draw", *dims), per_draw, {"long_name": "difference under each combined-ensemble draw"})
    data["draw_inputs"] = (("draw", "parameter"), rows[combined], {"long_name": "parameter values of each draw"})
    weights = (ens["structure_weight"].values if "structure_weight" in ens
               else np.ones(len(structures)) / max(len(structures), 1))
    data["structure_weight"] = ("structure", weights, {"units": "1"})
    return xr.Dataset(
        data,
        coords={"strategy": names, "metric": list(metrics), "structure": structures,
                "draw": np.arange(int(combined.sum())), "parameter": [str(n) for n in ens["parameter"].values],
                "draw_structure": ("draw", _draw_structures(ens, draws)),
                "unit": ("metric", units), "better": ("metric", ["higher" if HIGHER_IS_BETTER.get(m, True)
                                                                 else "lower" for m in metrics])},
        attrs={"coverage_monte_carlo": COVERAGE["monte_carlo"], "coverage_posterior": COVERAGE["posterior"],
               "reference": reference.name, "seed": seed, "patients": patients,
               "fitted_replicates": fitted_replicates, "replicates": replicates,
               "combined_draws": int((labels_arr == "combined").sum()), "per_structure_draws": per_structure},
    )


def _pp(value: float, unit: str) -> str:
    return f"{value * 100:+.1f}" if unit == FRACTION_UNIT else f"{value:+.2f}"


LABEL_WIDTH = 40


def _title(name: str) -> str:
    """A known strategy's title; any other name (a scenario's, a grid point's ``axis=value,...``) as it is."""
    return strategy_title(name) if name in STRATEGIES else name


def format_strategy_answers(ds: xr.Dataset, structures: bool = True) -> str:
    """The comparison as text: one plain sentence on the intervals, a table, the answer by structure."""
    reference = _title(ds.attrs["reference"])
    lines = [f"Reference: {reference}. Differences are strategy minus reference on the same virtual patients.",
             f"  MC 95% CI: {ds.attrs['coverage_monte_carlo']}.",
             f"  Posterior 95% interval and P(better): {ds.attrs['coverage_posterior']} "
             f"({ds.attrs['combined_draws']} draws).", ""]
    head = (f"  {'metric':<{LABEL_WIDTH}} {'unit':<6} {'at fitted values (MC 95% CI)':<30} "
            f"{'posterior mean (95% interval)':<32} {'P(better)':>9}")
    for s in ds.strategy.values:
        lines += [f"{_title(str(s))} minus {reference}:", head]
        for m in ds.metric.values:
            r = ds.sel(strategy=s, metric=m)
            unit = str(r.unit.values)
            label = metric_label(str(m), difference=True)
            fitted = f"{_pp(r.fitted, unit)} ({_pp(r.fitted_lower, unit)}, {_pp(r.fitted_upper, unit)})"
            post = f"{_pp(r.posterior_mean, unit)} ({_pp(r.posterior_lower, unit)}, {_pp(r.posterior_upper, unit)})"
            lines.append(f"  {label.name[:LABEL_WIDTH]:<{LABEL_WIDTH}} {label.unit:<6} {fitted:<30} {post:<32} "
                         f"{float(r.prob_better):>9.2f}")
        lines.append("")
    if structures and ds.sizes["structure"]:
        lines.append("The same by model structure (weight = posterior model probability; "
                     f"{ds.attrs['per_structure_draws']} draws of each structure's posterior):")
        order = np.argsort(-ds.structure_weight.values, kind="stable")
        for s in ds.strategy.values:
            for m in ds.metric.values[:2]:
                label = metric_label(str(m), difference=True)
                lines.append(f"  {_title(str(s))}, {label.name} ({label.unit}):")
                for k in order:
                    r = ds.isel(structure=k).sel(strategy=s, metric=m)
                    unit = str(r.unit.values)
                    lines.append(f"    {str(ds.structure.values[k]):<40} weight {float(r.structure_weight):.2f}  "
                                 f"{_pp(r.structure_mean, unit)} ({_pp(r.structure_lower, unit)}, "
                                 f"{_pp(r.structure_upper, unit)})  P(better) {float(r.structure_prob_better):.2f}")
        lines.append("")
    return "\n".join(lines)


VOI_BINS = 4  # quantile bins per parameter (quartiles): few, so that bin means are not mostly noise
VOI_PERMUTATIONS = 200  # permutations that estimate, and remove, the noise part of a partial EVPI
VOI_SEED = 20251203


def _partial_value(d: np.ndarray, codes: np.ndarray, base: float) -> float:
    """E over groups of max(E[D | group], 0) - max(E[D], 0), with groups given as integer codes."""
    counts = np.bincount(codes)
    sums = np.bincount(codes, weights=d)
    used = counts > 0
    return float(np.sum(np.maximum(sums[used] / counts[used], 0.0) * counts[used]) / len(d) - base)


def value_of_information(ds: xr.Dataset, strategy: str, metric: str, bins: int = VOI_BINS) -> xr.Dataset:
    """What it is worth to learn each parameter, or the model structure, before choosing.

    The decision is "adopt ``strategy`` instead of the reference" with the net benefit of
    each draw its difference on ``metric``, signed so that positive is better. The
    expected value of perfect information is EVPI = E[max(D, 0)] - max(E[D], 0); for an
    input, the partial EVPI = E[max(E[D | input], 0)] - max(E[D], 0), with E[D | input]
    the mean over the draws of each structure (for "model structure") or of each
    quantile bin of the parameter's draws. Finite groups make that estimate positive even
    for an input that does not matter; the mean of the same estimate over random
    permutations of the draws (the noise floor) is subtracted.

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :func:`compare_strategies`.
    strategy, metric : str
        The decision and the figure it is judged on.
    bins : int
        Quantile bins per parameter.

    Returns
    -------
    xarray.Dataset
        ``evppi`` over ``input`` ("model structure" and each varied parameter), noise floor
        removed (at least 0), and ``noise_floor``; ``evpi`` and ``expected_difference``
        as scalars, in the metric's unit (fractions for rates); ``flips`` over ``input``:
        the better choice changes across the input (some group's mean above and another's
        below 0, each by more than two standard errors).
    """
    sign = 1.0 if HIGHER_IS_BETTER.get(metric, True) else -1.0
    d = sign * ds["draw_difference"].sel(strategy=strategy, metric=metric).values
    n = len(d)
    base = max(d.mean(), 0.0)
    rng = np.random.default_rng(VOI_SEED)
    perms = [rng.permutation(n) for _ in range(VOI_PERMUTATIONS)]
    sd = d.std(ddof=1)
    rows = []

    def add(name: str, codes: np.ndarray) -> None:
        raw = _partial_value(d, codes, base)
        floor = float(np.mean([_partial_value(d[p], codes, base) for p in perms]))
        counts = np.bincount(codes)
        means = np.bincount(codes, weights=d)[counts > 0] / counts[counts > 0]
        z = means / (sd / np.sqrt(counts[counts > 0]))
        rows.append((name, max(raw - floor, 0.0), floor, bool((z > 2).any() and (z < -2).any())))

    labels = ds["draw_structure"].values
    if len(set(labels)) > 1:
        add("model structure", np.unique(labels, return_inverse=True)[1])
    inputs = ds["draw_inputs"].values
    for j, name in enumerate(ds["parameter"].values):
        x = inputs[:, j]
        if np.ptp(x) > 0:
            rank = np.argsort(np.argsort(x, kind="stable"), kind="stable")
            add(str(name), rank * bins // n)
    rows.sort(key=lambda r: -r[1])
    return xr.Dataset(
        {"evppi": ("input", [r[1] for r in rows]), "noise_floor": ("input", [r[2] for r in rows]),
         "flips": ("input", [r[3] for r in rows]),
         "evpi": ((), float(np.mean(np.maximum(d, 0.0)) - base)), "expected_difference": ((), float(d.mean()))},
        coords={"input": [r[0] for r in rows]},
        attrs={"strategy": strategy, "metric": metric, "unit": str(ds.unit.sel(metric=metric).values),
               "better": "higher" if sign > 0 else "lower", "bins": bins, "permutations": VOI_PERMUTATIONS},
    )


def format_value_of_information(voi: xr.Dataset, top: int = 5) -> str:
    """Two lines: what perfect information would be worth, and what it is worth to learn first."""
    k = 100.0 if voi.attrs["unit"] == FRACTION_UNIT else 1.0
    label = metric_label(voi.attrs["metric"], difference=True)
    cells = [f"{n} {k * float(v):.2f}{' (flips)' if f else ''}"
             for n, v, f in zip(voi.input.values[:top], voi.evppi.values[:top], voi.flips.values[:top])]
    return (f"Value of information for '{_title(voi.attrs['strategy'])}' on {label.name} ({label.unit} "
            f"per patient, parameter and structural uncertainty): all of it (EVPI) {k * float(voi.evpi):.2f}; "
            "learning first: " + "; ".join(cells)
            + ". '(flips)': the better choice changes across it; noise floor removed.")
