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
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy import special

from simulator.analysis.labels import (
    NRM_DRIVER_TITLES,
    STRATEGIES,
    metric_label,
    parameter_label,
    strategy_title,
    structure_title,
)
from simulator.analysis.outcomes import POOLED_ANALYSIS_PATIENTS
from simulator.analysis.segments import ALL_PATIENTS
from simulator.analysis.segments import splits as segment_splits
from simulator.analysis.text import paragraph
from simulator.analysis.trial_metrics import FRACTION_UNIT, TRIAL_METRICS, mc_summary, netcdf_unit
from simulator.model import kernel as K
from simulator.model.config import Scenario
from simulator.sensitivity.distributions import load_comparator_ensemble, load_ensemble, varied_parameters
from simulator.sensitivity.models import SimulatorModel, segment_key, share_key

BY_ID = {m.id: m for m in TRIAL_METRICS}

REFERENCE = "base"  # the name of the reference strategy in the analysis
HEADLINE = ("os_24_months", "post_hsct_nrm", "os_12_months", "os_rmst_24_months", "cr_cri", "hsct", "sos_any")
FITTED_REPLICATES = 600  # 600 x 338 = 202,800 patients per strategy at the fitted values
# replicates per strategy and draw (each draw its own patients): 10 x 338 = 3,380 patients give the
# posterior mean a Monte Carlo SE of ~0.02 pp and P(better) one of ~0.015 (docs/structures.md);
# P(better)'s falls only as replicates**-1/4 (the draws near 0 decide it), hence 8x for --precise
ENSEMBLE_REPLICATES = 10
PRECISE_REPLICATES = 80
PER_STRUCTURE_DRAWS = 20  # draws of each structure's own posterior for the per-structure answers
LEVEL = 0.95
Z_LEVEL = float(special.ndtri((1 + LEVEL) / 2))  # half-width of a LEVEL interval of a normal, in SDs
COVERAGE = {
    "monte_carlo": "Monte Carlo error of the simulated patients only, at the fitted parameter values of "
                   "the shipped structure; not parameter or structural uncertainty",
    "posterior": "parameter and structural uncertainty: the calibrated posterior of every model structure, "
                 "weighted by how well each explains the published figures (plus a small Monte Carlo part, "
                 "mc_share)",
}


def _spaced(n: int, k: int | None) -> np.ndarray:
    """``k`` indices evenly spaced through ``range(n)`` (all of them if ``k`` is None or larger)."""
    return np.arange(n) if k is None or k >= n else np.unique(np.linspace(0, n - 1, k).round().astype(int))


def _draws(ensemble: xr.Dataset, combined: int | None, per_structure: int
           ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Parameter rows: draws of the combined ensemble, then ``per_structure`` draws of each structure.

    Returns the rows, the patient block of each row (a draw's index in its ensemble: every
    draw has its own patients, and the j-th draw of every structure the same ones), the
    label of each row ("combined" or the structure) and the structures.
    """
    pick = _spaced(ensemble.sizes["draw"], combined)
    rows, blocks = [ensemble["parameters"].values[pick]], [pick]
    labels = ["combined"] * len(pick)
    structures: list[str] = []
    if "structure_parameters" in ensemble and per_structure > 0:
        own = ensemble["structure_parameters"].values
        pick = _spaced(own.shape[1], per_structure)
        structures = [str(s) for s in ensemble["structure"].values]
        for s, name in enumerate(structures):
            rows.append(own[s, pick])
            blocks.append(pick)
            labels += [name] * len(pick)
    return np.concatenate(rows), np.concatenate(blocks), labels, structures


def _draw_structures(ensemble: xr.Dataset, draws: int | None) -> list[str]:
    """The structure of each chosen combined-ensemble draw ("" for an ensemble without structures)."""
    pick = _spaced(ensemble.sizes["draw"], draws)
    if "draw_structure" not in ensemble.coords:
        return [""] * len(pick)
    return [str(s) for s in ensemble["draw_structure"].values[pick]]


def _sign(metric: str) -> float:
    """+1 where a higher value is better for patients (or neither direction is), -1 where lower is."""
    return -1.0 if BY_ID[metric].better == "lower" else 1.0


def ensemble_summary(values: np.ndarray, sign: float = 1.0) -> dict[str, float]:
    """The answer over draws, and the Monte Carlo error of each figure of it.

    Parameters
    ----------
    values : ndarray, shape (draws, replicates)
        The difference in each replicate under each draw; every draw simulates its own
        patients, so the Monte Carlo errors of the draws are independent.
    sign : float
        +1 if higher is better, -1 if lower is.

    Returns
    -------
    dict
        ``mean``, ``lower``, ``upper`` (95% interval over draws), ``prob_better`` (share of
        draws with ``sign * d_k > 0``), their Monte Carlo standard errors given the draws
        (``mean_mc_se`` = sqrt(sum s_k^2) / K with s_k^2 = var(replicates of draw k) / R;
        ``prob_better_mc_se`` = sqrt(sum (a_k - b_k)^2 / 2) / K with a_k, b_k the indicators of
        "better" in the two halves of draw k's replicates: an unbiased estimate of the variance
        of the indicator at half the replicates, so slightly conservative; a plug-in
        Phi(d_k / s_k) would understate it for draws whose true difference is near 0), and
        ``mc_share`` = mean(s_k^2) / var(d_k): the share of the spread over draws that is
        Monte Carlo noise (NaN with one replicate or one draw).
    """
    values = np.asarray(values, dtype=float)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw without any defined replicate is left out
        d = np.nanmean(values, axis=1)
        values = values[np.isfinite(d)]
        d = d[np.isfinite(d)]
        draws, reps = values.shape
        n = np.sum(~np.isnan(values), axis=1)  # defined replicates of each draw (a figure may be undefined)
        lo, hi = np.quantile(d, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]) if draws else (math.nan, math.nan)
        out = {"mean": float(d.mean()) if draws else math.nan, "lower": float(lo), "upper": float(hi),
               "prob_better": float(np.mean(sign * d > 0)) if draws else math.nan,
               "mean_mc_se": math.nan, "prob_better_mc_se": math.nan, "mc_share": math.nan}
        if draws and n.max() > 1:
            var = np.nanvar(values, axis=1, ddof=1) / n  # NaN for a draw with one defined replicate
            var = np.where(np.isfinite(var), var, np.nanmean(var))  # such a draw: the typical variance
            half = reps // 2
            first, second = np.nanmean(values[:, :half], axis=1), np.nanmean(values[:, half:2 * half], axis=1)
            both = np.isfinite(first) & np.isfinite(second)  # the split-half needs both halves defined
            disagree = np.sum((sign * first[both] > 0) != (sign * second[both] > 0)) * draws / max(both.sum(), 1)
            out["mean_mc_se"] = float(np.sqrt(var.sum()) / draws)
            out["prob_better_mc_se"] = float(np.sqrt(disagree / 2) / draws)
            total = d.var(ddof=1) if draws > 1 else math.nan
            out["mc_share"] = float(min(var.mean() / total, 1.0)) if total > 0 else math.nan
    return out


def compare_strategies(reference: Scenario, strategies: Mapping[str, Scenario], metrics: Sequence[str] = HEADLINE,
                       *, ensemble: str | xr.Dataset | None = None,
                       comparator_ensemble: str | xr.Dataset | None = None, seed: int = 2025,
                       patients: int = POOLED_ANALYSIS_PATIENTS,
                       fitted_replicates: int = FITTED_REPLICATES, replicates: int = ENSEMBLE_REPLICATES,
                       draws: int | None = None, per_structure: int = PER_STRUCTURE_DRAWS,
                       by: Sequence[str] = (), progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """Each strategy minus the reference, with Monte Carlo, parameter and structural uncertainty.

    Every strategy simulates the same patients (common random numbers). At the fitted values,
    ``fitted_replicates`` trials of ``patients``; under the ensembles, every draw its own
    ``replicates`` trials (the j-th draw of every structure the same ones), so that the Monte
    Carlo error of a figure over draws falls with the number of draws and is estimated, not
    hidden in a shift common to all draws.

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
    comparator_ensemble : path or Dataset, optional
        The treatment modules' posterior ensemble (default: the shipped
        ``configs/parameters/comparators_posterior.nc``), read where a strategy or the
        reference uses another treatment than InO or a next one: each row of the combined
        ensemble (and of each structure's) then also sets the modules' fitted parameters
        to the draw of the modules' ensemble with the row's index (modulo its size), and
        ``draw_inputs`` holds them after the model parameters.
    seed, patients : int
        Generator seed and patients per replicate (a trial of the pooled analysis' size).
    fitted_replicates, replicates : int
        Replicates per strategy at the fitted values, and per draw of the ensembles.
    draws : int, optional
        Draws of the combined ensemble, evenly spaced (default: all).
    per_structure : int
        Draws of each structure's own posterior for the answer under that structure (0: none).
    by : sequence of str
        Patient segments: names of :mod:`simulator.analysis.segments` splits (``age_55``,
        ``salvage_line``, ``transplant_eligible``, ``prior_hsct``, ``ph_positive``,
        ``bilirubin_high``; each may be a comma list), each a separate one-way split. Every
        figure is then also computed within each segment of the same simulated patients
        (a mask on the records), so each segment's difference is paired as well.
    progress : callable, optional
        ``progress(done, total)`` in parameter sets.

    Returns
    -------
    xarray.Dataset
        Over (``strategy``, ``metric``): ``fitted``, ``fitted_lower``, ``fitted_upper``
        (Monte Carlo 95% CI at the fitted values); ``posterior_mean``, ``posterior_lower``,
        ``posterior_upper`` (95% interval over the combined ensemble), ``prob_better``
        (share of draws in which the strategy is better; P(difference > 0) where no
        direction is defined, see ``better``), ``posterior_mean_mc_se`` and
        ``prob_better_mc_se`` (their Monte Carlo standard errors given the draws),
        ``mc_share`` (the share of the variance over draws that is Monte Carlo noise);
        over (``structure``, ``strategy``, ``metric``): ``structure_mean``,
        ``structure_lower``, ``structure_upper``, ``structure_prob_better``;
        ``structure_weight`` (structure); ``draw_difference`` (draw, strategy, metric) and
        ``draw_inputs`` (draw, parameter) for each draw of the combined ensemble, with its
        structure in ``draw_structure``. Differences of rates are fractions (``units: 1``;
        shown as percentage points). What each interval covers is in ``attrs``. With
        ``by``, every variable but ``structure_weight`` and ``draw_inputs`` has a
        ``segment`` dimension before ``strategy``: first :data:`ALL_PATIENTS`, then each
        split's segments, with coordinates ``split`` (the split's name) and ``share``
        (the share of the reference's patients in the segment at the fitted values).

    Raises
    ------
    ValueError
        An unknown metric.
    KeyError
        An unknown segment split (one line naming every valid one).
    """
    unknown = [m for m in metrics if m not in BY_ID]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}")
    chosen = segment_splits(by)
    segments = ["", *(name for s in chosen for name in s.segments)]  # "": every patient
    keys = {name: f"s{i}" for i, name in enumerate(strategies)}  # variable names must be identifiers
    specs = [{"metric": m, "strategy": keys[s], "minus": REFERENCE, "name": f"{m}__{keys[s]}"}
             for s in strategies for m in metrics]
    common = dict(strategies={keys[s]: scenario for s, scenario in strategies.items()}, patients=patients, seed=seed,
                  segments=chosen)
    # the fitted answer: the reference's own parameter values, no parameter varied
    point = SimulatorModel(reference, specs, replicates=fitted_replicates, **common).evaluate([], np.empty((1, 0)))
    ens = load_ensemble(ensemble)
    rows, blocks, labels, structures = _draws(ens, draws, per_structure)
    names = [str(n) for n in ens["parameter"].values]
    varied = set(varied_parameters(ens)) | {n for n, v in zip(names, np.ptp(rows, axis=0)) if v > 0}
    if any(s.treatment != K.TREATMENTS[K.TREAT_INO] or s.then is not None for s in (reference, *strategies.values())):
        modules = load_comparator_ensemble(comparator_ensemble)  # draw b of every ensemble goes with its draw b % size
        chosen_modules = varied_parameters(modules)
        rows = np.hstack([rows, modules["parameters"].sel(parameter=chosen_modules).values[
            blocks % modules.sizes["draw"]]])
        names += chosen_modules
        varied |= set(chosen_modules)
    blocks = blocks + -(-fitted_replicates // replicates)  # after the fitted answer's patients
    columns = [j for j, n in enumerate(names) if n in varied]
    runs = SimulatorModel(reference, specs, replicates=replicates, **common).evaluate(
        [names[j] for j in columns], rows[:, columns], progress, blocks)
    labels_arr = np.array(labels)
    combined = labels_arr == "combined"
    shape = (len(segments), len(strategies), len(metrics))
    fields = ("fitted", "fitted_lower", "fitted_upper", "posterior_mean", "posterior_lower", "posterior_upper",
              "prob_better", "posterior_mean_mc_se", "prob_better_mc_se", "mc_share")
    out = {k: np.full(shape, math.nan) for k in fields}
    per_draw = np.full((int(combined.sum()), *shape), math.nan)
    per = {k: np.full((len(structures), *shape), math.nan) for k in ("structure_mean", "structure_lower",
                                                                      "structure_upper", "structure_prob_better")}
    for g, segment in enumerate(segments):
        for i, s in enumerate(strategies):
            for j, m in enumerate(metrics):
                key = segment_key(f"{m}__{keys[s]}", segment)
                est, lo, hi, _ = mc_summary(point[key][0, 0])
                out["fitted"][g, i, j], out["fitted_lower"][g, i, j], out["fitted_upper"][g, i, j] = est, lo, hi
                values = runs[key][:, 0, :]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # NaN where no replicate defines the figure
                    per_draw[:, g, i, j] = np.nanmean(values[combined], axis=1)
                a = ensemble_summary(values[combined], _sign(m))
                for name, field in (("mean", "posterior_mean"), ("lower", "posterior_lower"),
                                    ("upper", "posterior_upper"), ("prob_better", "prob_better"),
                                    ("mean_mc_se", "posterior_mean_mc_se"),
                                    ("prob_better_mc_se", "prob_better_mc_se"), ("mc_share", "mc_share")):
                    out[field][g, i, j] = a[name]
                for k, name in enumerate(structures):
                    b = ensemble_summary(values[labels_arr == name], _sign(m))
                    (per["structure_mean"][k, g, i, j], per["structure_lower"][k, g, i, j],
                     per["structure_upper"][k, g, i, j], per["structure_prob_better"][k, g, i, j]) = (
                        b["mean"], b["lower"], b["upper"], b["prob_better"])
    units = [netcdf_unit(BY_ID[m]) for m in metrics]
    dims = ("segment", "strategy", "metric")
    data = {k: (dims, v) for k, v in out.items()}
    data.update({k: (("structure", *dims), v) for k, v in per.items()})
    data["draw_difference"] = (("draw", *dims), per_draw, {"long_name": "difference under each combined-ensemble draw"})
    data["draw_inputs"] = (("draw", "parameter"), rows[combined], {"long_name": "parameter values of each draw"})
    weights = (ens["structure_weight"].values if "structure_weight" in ens and structures
               else np.ones(len(structures)) / max(len(structures), 1))
    data["structure_weight"] = ("structure", weights, {"units": "1"})
    shares = [1.0, *(float(point[share_key(g)].mean()) for g in segments[1:])]
    ds = xr.Dataset(
        data,
        coords={"segment": [ALL_PATIENTS, *segments[1:]],
                "split": ("segment", ["", *(s.id for s in chosen for _ in s.segments)]),
                "share": ("segment", shares, {"units": "1", "long_name": "share of the reference's patients in the "
                                                                        "segment, at the fitted values"}),
                "strategy": list(strategies), "metric": list(metrics), "structure": structures,
                "draw": np.arange(int(combined.sum())), "parameter": names,
                "draw_structure": ("draw", _draw_structures(ens, draws)),
                "unit": ("metric", units), "better": ("metric", [BY_ID[m].better or "none" for m in metrics])},
        attrs={"coverage_monte_carlo": COVERAGE["monte_carlo"], "coverage_posterior": COVERAGE["posterior"],
               "reference": reference.name, "fitted_structure": reference.model.id, "seed": seed,
               "patients": patients,
               "fitted_replicates": fitted_replicates, "replicates": replicates,
               "combined_draws": int(combined.sum()), "per_structure_draws": per_structure,
               "unique_draws": int(len(np.unique(rows[combined], axis=0)))},
    )
    if not chosen:
        return ds.isel(segment=0, drop=True)
    ds.attrs["segments"] = ("each strategy's patients split by the baseline covariates of their own records, "
                            "one split at a time (" + ", ".join(s.id for s in chosen) + "); the same patients "
                            "under every strategy, so each segment's difference is paired")
    return ds


def _pp(value: float, unit: str) -> str:
    return f"{value * 100:+.1f}" if unit == FRACTION_UNIT else f"{value:+.2f}"


LABEL_WIDTH = 34


def _title(name: str) -> str:
    """A known strategy's title; any other name (a scenario's, a grid point's ``axis=value,...``) as it is."""
    return strategy_title(name) if name in STRATEGIES else name


def driver_means(ds: xr.Dataset, strategy: str, metric: str) -> dict[str, float]:
    """The answer under each NRM driver: the structures' posterior means weighted within the driver."""
    return {k: v[0] for k, v in _driver_answers(ds, strategy, metric).items()}


def _driver_answers(ds: xr.Dataset, strategy: str, metric: str) -> dict[str, tuple[float, float, float]]:
    """(mean, its standard error, posterior weight) under each NRM driver with a defined answer.

    The SE is that of a weighted mean of the structures' means, each over its own draws:
    a structure's SD is read off its LEVEL interval of draws (width / (2 Z_LEVEL)).
    """
    r = ds.sel(strategy=strategy, metric=metric)
    n = max(int(ds.attrs["per_structure_draws"]), 1)
    sums: dict[str, list[float]] = {}
    for name, w, mean, lo, hi in zip(ds.structure.values, r.structure_weight.values, r.structure_mean.values,
                                     r.structure_lower.values, r.structure_upper.values):
        if not np.isfinite(mean):
            continue
        acc = sums.setdefault(str(name).split("-")[0], [0.0, 0.0, 0.0])
        acc[0] += float(w) * float(mean)
        acc[1] += float(w)
        acc[2] += (float(w) * float(hi - lo) / (2 * Z_LEVEL)) ** 2 / n
    return {k: (v[0] / v[1], math.sqrt(v[2]) / v[1], v[1]) for k, v in sums.items() if v[1] > 0}


SIGN_WEIGHT = 0.05  # NRM drivers holding less posterior weight do not decide whether the sign depends on them
SIGN_SES = 2.0  # standard errors before two drivers' answers, or one and 0, count as different


def driver_verdict(ds: xr.Dataset, strategy: str, metric: str) -> tuple[str, str]:
    """Whether the answer's sign depends on what drives post-HSCT NRM, and the answer under each driver.

    Returns
    -------
    verdict : str
        ``"depends"`` where two drivers' answers (of those with posterior weight at least
        :data:`SIGN_WEIGHT`) lie on both sides of 0 and differ by more than :data:`SIGN_SES`
        standard errors of their difference; ``"same"`` where every such answer is more than
        :data:`SIGN_SES` standard errors from 0 (on one side); else ``"unclear"`` (some
        cannot be told from 0); ``""`` without model structures.
    by : str
        ``+1.2 if NRM ~ cumulative dose, ...`` in the metric's display unit.
    """
    if not ds.sizes["structure"]:
        return "", ""
    unit = str(ds.unit.sel(metric=metric).values)
    answers = {k: v for k, v in _driver_answers(ds, strategy, metric).items() if v[2] >= SIGN_WEIGHT}
    by = ", ".join(f"{_pp(m, unit)} if {NRM_DRIVER_TITLES[k]}" for k, (m, _, _) in answers.items())
    values = list(answers.values())
    if not values:
        return "", ""
    if any(m1 * m2 < 0 and abs(m1 - m2) > SIGN_SES * math.hypot(se1, se2)
           for i, (m1, se1, _) in enumerate(values) for m2, se2, _ in values[i + 1:]):
        return "depends", by
    return ("same" if all(abs(m) > SIGN_SES * se for m, se, _ in values) else "unclear"), by


def bottom_line(ds: xr.Dataset, strategy: str, metric: str) -> str:
    """One sentence: the answer over all uncertainty, P(better), and whether its sign depends on the mechanism."""
    r = ds.sel(strategy=strategy, metric=metric)
    unit = str(r.unit.values)
    label = metric_label(metric, difference=True)
    chance = "P(better)" if str(r.better.values) != "none" else "P(difference > 0)"
    text = (f"{_title(strategy)} vs {_title(ds.attrs['reference']).lower()}, {label.name}: "
            f"{_pp(r.posterior_mean, unit)} {label.unit} (95% interval {_pp(r.posterior_lower, unit)} to "
            f"{_pp(r.posterior_upper, unit)} over parameters and model structures), {chance} "
            f"{float(r.prob_better):.2f} (simulation SE {float(r.prob_better_mc_se):.2f}; the finite set of "
            f"{ds.attrs['unique_draws']} distinct posterior draws adds about "
            f"{math.sqrt(float(r.prob_better) * (1 - float(r.prob_better)) / ds.attrs['unique_draws']):.2f})")
    verdict, by = driver_verdict(ds, strategy, metric)
    if verdict == "depends":
        text += ("; its sign depends on what post-HSCT NRM rises with, which the published figures "
                 f"cannot tell apart ({by})")
    elif verdict == "same":
        text += f"; the same sign whatever post-HSCT NRM rises with ({by})"
    elif verdict == "unclear":
        text += f"; under some NRM drivers it cannot be told from 0 ({by})"
    return text + "."


def _mc_line(ds: xr.Dataset, strategy: str) -> str:
    """The largest Monte Carlo errors of a strategy's posterior figures, per display unit."""
    r = ds.sel(strategy=strategy)
    worst: dict[str, float] = {}
    for m, se in zip(ds.metric.values, r.posterior_mean_mc_se.values):
        label = metric_label(str(m), difference=True)
        shown = float(se) * (100.0 if label.unit == "pp" else 1.0)
        worst[label.unit] = max(worst.get(label.unit, 0.0), shown)
    means = " / ".join(f"{v:.2f} {u}" if u == "pp" else f"{v:.3f} {u}" for u, v in worst.items())
    return (f"  Monte Carlo SE at most: mean {means}; P(better) {float(np.nanmax(r.prob_better_mc_se.values)):.2f}"
            f" (MC share of the spread {float(np.nanmax(r.mc_share.values)):.0%})")


def format_strategy_answers(ds: xr.Dataset, structures: bool = True) -> str:
    """The comparison as text: the bottom line, why the fitted value differs, a table, the answer by structure."""
    reference = _title(ds.attrs["reference"])
    first = str(ds.metric.values[0])
    lines = [line for s in ds.strategy.values for line in paragraph(bottom_line(ds, str(s), first)).splitlines()]
    fitted = ds.attrs["fitted_structure"]
    own = ""
    if fitted in ds.structure.values:
        r = ds.sel(structure=fitted, strategy=ds.strategy.values[0], metric=first)
        own = (f", posterior weight {float(r.structure_weight):.2f}; over that structure's own posterior the "
               f"first answer is {_pp(r.structure_mean, str(r.unit.values))}")
    note = (f"At the fitted values (one parameter set of the structure '{structure_title(fitted)}'{own}) "
            "the answer is precise but conditional: its CI covers only the Monte Carlo error of simulating "
            "finitely many patients. The posterior mean, 95% interval and P(better) cover parameter and "
            f"structural uncertainty ({ds.attrs['combined_draws']} draws shared among the structures' calibrated "
            "posteriors by how well each explains the published figures), each with its own patients.")
    lines += ["", paragraph(note), ""]
    head = (f"  {'metric':<{LABEL_WIDTH}} {'unit':<6} {'fitted (MC 95% CI)':<20} "
            f"{'posterior (95% int.)':<21} {'P(better)':>9}")
    for s in ds.strategy.values:
        lines += [f"{_title(str(s))} minus {reference}:", head]
        for m in ds.metric.values:
            r = ds.sel(strategy=s, metric=m)
            unit = str(r.unit.values)
            label = metric_label(str(m), difference=True)
            fit = f"{_pp(r.fitted, unit)} ({_pp(r.fitted_lower, unit)}, {_pp(r.fitted_upper, unit)})"
            post = f"{_pp(r.posterior_mean, unit)} ({_pp(r.posterior_lower, unit)}, {_pp(r.posterior_upper, unit)})"
            chance = f"{float(r.prob_better):.2f}" if str(r.better.values) != "none" else "-"
            lines.append(f"  {label.name[:LABEL_WIDTH]:<{LABEL_WIDTH}} {label.unit:<6} {fit:<20} {post:<21} "
                         f"{chance:>9}")
        lines += [_mc_line(ds, str(s)), ""]
    if structures and ds.sizes["structure"]:
        lines.append("The same by model structure (w = posterior model probability; "
                     f"{ds.attrs['per_structure_draws']} draws of each):")
        order = np.argsort(-ds.structure_weight.values, kind="stable")
        for s in ds.strategy.values:
            for m in ds.metric.values[:2]:
                label = metric_label(str(m), difference=True)
                lines.append(f"  {_title(str(s))}, {label.name} ({label.unit}):")
                for k in order:
                    r = ds.isel(structure=k).sel(strategy=s, metric=m)
                    unit = str(r.unit.values)
                    interval = f"{_pp(r.structure_mean, unit)} ({_pp(r.structure_lower, unit)}, " \
                               f"{_pp(r.structure_upper, unit)})"
                    lines.append(f"    {structure_title(str(ds.structure.values[k])):<55} "
                                 f"w {float(r.structure_weight):.2f} {interval:<20} P {float(r.structure_prob_better):.2f}")
        lines.append("")
    return "\n".join(lines)


SEGMENT_WIDTH = 18  # characters of a segment's title in the tables


def segment_signs(ds: xr.Dataset, strategy: str, metric: str) -> dict[str, int]:
    """Each segment's sign over all uncertainty: +1 better, -1 worse, 0 cannot be told from 0.

    Better or worse where the 95% interval over the combined ensemble (parameters, model
    structures, and each draw's simulated patients) lies wholly on one side of 0, read in
    the metric's direction (higher or lower is better; higher where neither is). The whole
    population (:data:`ALL_PATIENTS`) and segments where the figure is undefined (no
    patient in its denominator) are left out.
    """
    r = ds.sel(strategy=strategy, metric=metric)
    sign = _sign(metric)
    out = {}
    for segment in ds.segment.values[1:]:
        lo, hi = sorted((sign * float(r.posterior_lower.sel(segment=segment)),
                         sign * float(r.posterior_upper.sel(segment=segment))))
        if np.isfinite(lo) and np.isfinite(hi):
            out[str(segment)] = 1 if lo > 0 else (-1 if hi < 0 else 0)
    return out


def segment_line(ds: xr.Dataset, strategy: str, metric: str) -> str:
    """One sentence: which segments differ in sign, given all uncertainty, and where it cannot be told."""
    r = ds.sel(strategy=strategy, metric=metric)
    signs = segment_signs(ds, strategy, metric)
    directed = str(r.better.values) != "none"
    words = {1: "better", -1: "worse"} if directed else {1: "higher", -1: "lower"}

    def named(sign: int) -> str:
        cells = [f"{g} ({float(r.prob_better.sel(segment=g)):.2f})" for g, v in signs.items() if v == sign]
        return ", ".join(cells)

    chance = "P(better)" if directed else "P(difference > 0)"
    head = (f"By patient segment, {_title(strategy)} vs {_title(ds.attrs['reference']).lower()}, "
            f"{metric_label(metric, difference=True).name}")
    present = {v for v in signs.values()}
    if {1, -1} <= present:
        text = f"the sign differs between segments: {words[1]} for {named(1)}; {words[-1]} for {named(-1)}"
    elif present == {1} or present == {-1}:
        text = f"{words[present.pop()]} in every segment ({named(1) or named(-1)}); no segment differs in sign"
    elif present - {0}:
        sign = (present - {0}).pop()
        text = f"no segment differs in sign: {words[sign]} for {named(sign)}"
    else:
        text = "no segment differs in sign: in none can the difference be told from 0"
    if 0 in present and present != {0}:
        text += f"; cannot be told from 0 for {named(0)}"
    undefined = [str(g) for g in ds.segment.values[1:] if str(g) not in signs]
    if undefined:
        text += f"; undefined for {', '.join(undefined)} (no patient in its denominator)"
    brackets = f"{chance} in brackets; " if present - {0} else ""  # segments are named
    return f"{head}: {text} ({brackets}95% intervals over parameters, model structures and the simulated patients)."


def format_segment_answers(ds: xr.Dataset, metrics: Sequence[str] | None = None) -> str:
    """The comparison by patient segment: a sentence per strategy, then per metric a table and the NRM drivers.

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :func:`compare_strategies` with ``by`` (a ``segment`` dimension).
    metrics : sequence of str, optional
        The metrics shown (default: the first).
    """
    metrics = list(metrics or ds.metric.values[:1])
    lines = [line for s in ds.strategy.values for line in paragraph(segment_line(ds, str(s), metrics[0])).splitlines()]
    fitted_patients = ds.attrs["fitted_replicates"] * ds.attrs["patients"]
    note = (f"Each segment is a mask on the same simulated patients (common random numbers within the segment); "
            f"'patients' are those behind the fitted answer ({fitted_patients:,} in all); under the posterior each "
            f"draw has {ds.attrs['replicates'] * ds.attrs['patients']:,} patients, of which the segment's share. "
            "Smaller segments carry more Monte Carlo error: 'MC SE' is that of the posterior mean, '+-' that of "
            "P(better).")
    lines += ["", paragraph(note), ""]
    drivers = [k for k in NRM_DRIVER_TITLES if ds.sizes["structure"]
               and any(str(s).split("-")[0] == k for s in ds.structure.values)]
    titles = {k: NRM_DRIVER_TITLES[k].removeprefix("NRM ~ ").removesuffix(" only") for k in drivers}
    for s in ds.strategy.values:
        for m in metrics:
            label = metric_label(str(m), difference=True)
            lines += [f"{_title(str(s))} minus {_title(ds.attrs['reference'])}, {label.name} ({label.unit}):",
                      f"  {'segment':<{SEGMENT_WIDTH}} {'share':>5} {'patients':>9}  {'fitted (MC 95% CI)':<20} "
                      f"{'posterior (95% int.)':<21} {'MC SE':>5}  P(better)"]
            for g in ds.segment.values:
                r = ds.sel(strategy=s, metric=m, segment=g)
                unit = str(r.unit.values)
                k = 100.0 if unit == FRACTION_UNIT else 1.0
                size = f"  {str(g)[:SEGMENT_WIDTH]:<{SEGMENT_WIDTH}} {float(r.share):>5.0%} " \
                       f"{round(float(r.share) * fitted_patients):>9,}  "
                if not np.isfinite(r.fitted) and not np.isfinite(r.posterior_mean):
                    lines.append(size + "undefined: no patient of the segment in the figure's denominator")
                    continue
                fit = f"{_pp(r.fitted, unit)} ({_pp(r.fitted_lower, unit)}, {_pp(r.fitted_upper, unit)})"
                post = (f"{_pp(r.posterior_mean, unit)} ({_pp(r.posterior_lower, unit)}, "
                        f"{_pp(r.posterior_upper, unit)})")
                chance = (f"{float(r.prob_better):.2f} +-{float(r.prob_better_mc_se):.2f}"
                          if str(r.better.values) != "none" else "-")
                lines.append(f"{size}{fit:<20} {post:<21} {k * float(r.posterior_mean_mc_se):>5.2f}  {chance}")
            if drivers:
                widths = {d: max(len(titles[d]), 11) + 2 for d in drivers}
                lines.append(f"  {'NRM rises with:':<{SEGMENT_WIDTH}} "
                             + "".join(f"{titles[d]:>{widths[d]}}" for d in drivers) + "  sign")
                for g in ds.segment.values:
                    one = ds.sel(segment=g)
                    answers = _driver_answers(one, str(s), str(m))
                    unit = str(one.unit.sel(metric=m).values)
                    cells = "".join(f"{_pp(answers[d][0], unit) if d in answers else '-':>{widths[d]}}"
                                    for d in drivers)
                    lines.append(f"  {str(g)[:SEGMENT_WIDTH]:<{SEGMENT_WIDTH}} {cells}  "
                                 f"{driver_verdict(one, str(s), str(m))[0]}")
            lines.append("")
    if drivers:
        lines += [paragraph("'sign': whether the segment's sign depends on what post-HSCT NRM rises with "
                            "(depends), is the same under every driver (same), or under some cannot be "
                            "told from 0 (unclear); the drivers' answers are their structures' posterior "
                            "means."), ""]
    return "\n".join(lines)


STRUCTURE_INPUT = "model structure"  # the input of the value of information that is not a parameter
VOI_BINS = 4  # quantile bins per parameter (quartiles): few, so that bin means are not mostly noise
VOI_PERMUTATIONS = 200  # permutations that estimate, and remove, the noise part of a partial EVPI
VOI_SEED = 20251203


def _partial_value(d: np.ndarray, codes: np.ndarray, base: float) -> float:
    """E over groups of max(E[D | group], 0) - max(E[D], 0), with groups given as integer codes."""
    counts = np.bincount(codes)
    sums = np.bincount(codes, weights=d)
    used = counts > 0
    return float(np.sum(np.maximum(sums[used] / counts[used], 0.0) * counts[used]) / len(d) - base)


def partial_evpi(d: np.ndarray, codes: np.ndarray, perms: Sequence[np.ndarray]) -> tuple[float, float]:
    """Partial EVPI of a grouping of the draws, and its noise floor.

    E over groups of max(E[D | group], 0) - max(E[D], 0) less the mean of the same over the
    permutations ``perms`` of the draws (what finite groups give an input that does not matter),
    at least 0; and that floor.
    """
    base = max(d.mean(), 0.0)
    floor = float(np.mean([_partial_value(d[p], codes, base) for p in perms]))
    return max(_partial_value(d, codes, base) - floor, 0.0), floor


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
    sign = _sign(metric)
    d = sign * ds["draw_difference"].sel(strategy=strategy, metric=metric).values
    n = len(d)
    base = max(d.mean(), 0.0)
    rng = np.random.default_rng(VOI_SEED)
    perms = [rng.permutation(n) for _ in range(VOI_PERMUTATIONS)]
    sd = d.std(ddof=1)
    rows = []

    def add(name: str, codes: np.ndarray) -> None:
        value, floor = partial_evpi(d, codes, perms)
        counts = np.bincount(codes)
        means = np.bincount(codes, weights=d)[counts > 0] / counts[counts > 0]
        z = means / (sd / np.sqrt(counts[counts > 0]))
        rows.append((name, value, floor, bool((z > 2).any() and (z < -2).any())))

    labels = ds["draw_structure"].values
    if len(set(labels)) > 1:
        add(STRUCTURE_INPUT, np.unique(labels, return_inverse=True)[1])
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
               "better": BY_ID[metric].better or "none", "bins": bins, "permutations": VOI_PERMUTATIONS},
    )


def format_value_of_information(voi: xr.Dataset, top: int = 5) -> str:
    """A paragraph: what perfect information would be worth, and what it is worth to learn first."""
    k = 100.0 if voi.attrs["unit"] == FRACTION_UNIT else 1.0
    label = metric_label(voi.attrs["metric"], difference=True)
    cells = [f"{_input_title(str(n))} {k * float(v):.2f}{' (flips)' if f else ''}"
             for n, v, f in zip(voi.input.values[:top], voi.evppi.values[:top], voi.flips.values[:top])]
    text = (f"Value of information for '{_title(voi.attrs['strategy'])}' on {label.name} ({label.unit} per "
            f"patient; parameter and structural uncertainty): all of it (EVPI) {k * float(voi.evpi):.2f}; "
            "learning first: " + "; ".join(cells)
            + ". '(flips)': the better choice changes across it; noise floor removed.")
    return paragraph(text)


def _input_title(name: str) -> str:
    """An input of the value of information by its clinical name: the model structure or a parameter."""
    return name if name == STRUCTURE_INPUT else parameter_label(name).name
