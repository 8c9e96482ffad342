"""Sensitivity analysis: one-way (tornado), probabilistic (calibrated ensemble), Sobol and Morris.

Every method has the same call shape and returns an :class:`xarray.Dataset`::

    one_way(scenario, parameters, metrics, ...)   # each parameter alone over its range
    psa(scenario, ensemble, metrics, ...)         # every parameter set of an ensemble
    sobol(scenario, problem, metrics, n, ...)     # variance-based indices (SALib)
    morris(scenario, problem, metrics, n, ...)    # elementary effects (SALib)

``parameters``/``problem`` are parameter specs (:class:`simulator.uncertainty.ParameterSpec`,
a mapping of its keys, or just a parameter name: then the calibrated ensemble gives its
mean and SD). ``metrics`` are figures of :data:`simulator.trial_metrics.TRIAL_METRICS`,
survival curves read at time points (``{metric: os_curve, times: [12, 24]}``: indices
over a ``time`` dimension), under the scenario or a named strategy, or the difference
between two strategies (``{metric: os_24_months, strategy: two_cycles, minus: base}``).

**How the simulator is run.** Every parameter set simulates the same ``replicates`` x
``patients`` virtual patients (one seed, patient ids from 0): common random numbers
across parameter sets *and* strategies, so a strategy difference is paired patient by
patient, and a parameter the figure does not use changes nothing at all. A set's
figure is the mean over its replicates (trials of ``patients`` patients, as in
:mod:`simulator.experiment`), with a Monte Carlo CI from their spread. The sets run in
parallel through :func:`simulator.simulation.run_parameter_sets`, in chunks of at most
:data:`simulator.experiment.MAX_PATIENTS_PER_CHUNK` patients.

**Global methods.** Sampling and estimation are SALib's: Saltelli/Sobol' sequences and
the Saltelli-Jansen estimators with bootstrap CIs, Morris trajectories. SALib samples
the unit hypercube; each column goes through the parameter's quantile function (Sobol,
so the indices are those of the specified distributions) or onto its one-way range
(Morris, so mu* is the change over the range, comparable to the tornado). Sobol indices
are recomputed on the nested sub-samples of size n/2, n/4, ... (a prefix of a Sobol'
sequence is itself one) as a convergence check; :class:`SensitivityWarning` says when
indices fall outside [0, 1] (n too small) or move between n/2 and n.

Sobol, Morris and one-way analyses treat parameters as independent; :func:`psa` keeps the
ensemble's joint distribution (its correlations), so it is the one to trust for the
uncertainty of an answer, the others for which assumption drives it.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import xarray as xr
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from scipy import stats

from simulator.config import ConfigError, Scenario, load_scenario, read_yaml, validate
from simulator.outcomes import CONFIDENCE, clopper_pearson
from simulator.sensitivity_models import (
    DEFAULT_PATIENTS,
    DEFAULT_REPLICATES,
    DEFAULT_SEED,
    FunctionModel,
    MetricSpec,
    Model,
    Output,
    SimulatorModel,
    as_model,
    resolve_parameters,
)
from simulator.sensitivity_report import format_result
from simulator.trial_metrics import mc_summary
from simulator.uncertainty import (
    ParameterSpec,
    SpecError,
    UncertainParameter,
    load_ensemble,
    varied_parameters,
)

__all__ = ["FunctionModel", "MetricSpec", "ParameterSpec", "SensitivityWarning", "SimulatorModel",
           "format_result", "load_sensitivity", "morris", "one_way", "psa", "run_sensitivity", "sobol"]

DEFAULT_POINTS = 2  # one-way: values per parameter (2: the two ends of its range)
DEFAULT_SOBOL_N = 256  # Sobol: base samples (a power of 2); (k + 2) n model runs
DEFAULT_MORRIS_N = 20  # Morris: trajectories; (k + 1) n model runs
DEFAULT_LEVELS = 4  # Morris grid levels
DEFAULT_RESAMPLES = 200  # bootstrap resamples of SALib's confidence intervals
MIN_CONVERGENCE_N = 32  # smallest sub-sample of the Sobol convergence check
INDEX_TOLERANCE = 0.05  # a Sobol index below -tol or above 1 + tol means n is too small
CONVERGENCE_TOLERANCE = 0.05  # largest change of an index between n/2 and n deemed converged
ANALYZE_SEED_OFFSET = 1  # SALib's analyze treats seed 0 as "unseeded": it gets seed + 1
STATISTICS = ("estimate", "lower", "upper")  # a figure with its Monte Carlo CI
SOBOL_INDICES = ("S1", "S1_conf", "ST", "ST_conf")  # *_conf: half-width of the bootstrap CI
MORRIS_INDICES = ("mu", "mu_star", "sigma", "mu_star_conf")
PSA_SUMMARY = ("mean", "sd", "q025", "median", "q975", "prob_positive", "prob_positive_lower",
               "prob_positive_upper", "prob_positive_mc_low", "prob_positive_mc_high")


class SensitivityWarning(UserWarning):
    """Sensitivity indices that should not be trusted as they stand (e.g. n too small)."""


# ----------------------------------------------------------------------------- results
def _timed(o: Output, dims: tuple[str, ...], data: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """Dims and data with the ``time`` axis kept for timed outputs, dropped (length 1) otherwise."""
    if o.timed:
        return dims, data
    axis = dims.index("time")
    return dims[:axis] + dims[axis + 1:], np.take(data, 0, axis=axis)


def _variable(o: Output, dims: tuple[str, ...], data: np.ndarray, what: str, unit: str | None = None
              ) -> tuple[tuple[str, ...], np.ndarray, dict]:
    """A data variable of an output: (dims, data, attrs with long name and unit)."""
    dims, data = _timed(o, dims, data)
    return dims, data, {"long_name": f"{o.label}: {what}", "units": o.unit if unit is None else unit}


def _parameter_coords(params: Sequence[UncertainParameter]) -> dict:
    """Coordinates along ``parameter``: names, distributions and baseline values."""
    return {"parameter": [p.name for p in params],
            "distribution": ("parameter", [p.describe() for p in params]),
            "baseline_value": ("parameter", [p.baseline for p in params])}


def _results(method: str, model: Model, data_vars: dict, coords: dict, attrs: dict, messages: list[str]
             ) -> xr.Dataset:
    """The results Dataset: variables, coordinates (the time points added) and the common attributes."""
    from simulator import __version__

    coords = dict(coords)
    if any(o.timed for o in model.outputs):
        coords["time"] = ("time", list(model.times), {"units": "month", "long_name": "months from the first dose"})
    outputs = [{"name": o.name, "label": o.label, "units": o.unit, "strategy": o.strategy, "minus": o.minus}
               for o in model.outputs]
    return xr.Dataset(data_vars, coords=coords, attrs={
        "title": f"InOSim sensitivity analysis ({method})",
        "method": method,
        "outputs": json.dumps(outputs),
        "warnings": json.dumps(messages),
        "inosim_version": __version__,
        **model.attrs(),
        **attrs,
    })


def _warn(messages: list[str], text: str) -> None:
    messages.append(text)
    warnings.warn(text, SensitivityWarning, stacklevel=4)  # the caller of sobol()


# ----------------------------------------------------------------------------- one-way
def one_way(scenario: Scenario | Model, parameters: Sequence, metrics: Sequence | None, *,
            points: int = DEFAULT_POINTS, strategies: Mapping | None = None,
            patients: int = DEFAULT_PATIENTS, replicates: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
            ensemble: str | Path | xr.Dataset | None = None,
            progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """One-way sensitivity: each parameter alone over its range, the others at baseline.

    Parameters
    ----------
    scenario : Scenario or model
        The base scenario (or a :class:`SimulatorModel`/:class:`FunctionModel`).
    parameters : sequence
        Parameter specs; the range is ``low``-``high`` or the central 95% of the distribution.
    metrics : sequence
        Metric specs (see :class:`MetricSpec`).
    points : int
        Values per parameter, evenly spaced over its range (2: the two ends).
    strategies, patients, replicates, seed, ensemble
        See :class:`SimulatorModel`.
    progress : callable, optional
        ``progress(done, total)`` in parameter sets.

    Returns
    -------
    xarray.Dataset
        Per output ``o`` (``time`` only for survival curves), each with
        ``statistic`` = estimate, lower, upper (mean over replicates, Monte Carlo CI):
        ``o`` (parameter, point, time, statistic), the figure at each value;
        ``o_change`` (same dims), the paired change from the baseline run;
        ``o_baseline`` (time, statistic). Coordinates: ``value`` (parameter, point)
        the parameter's value, ``low``/``high`` the range.
    """
    options = dict(strategies=strategies, patients=patients, replicates=replicates, seed=seed, ensemble=ensemble)
    model = as_model(scenario, metrics, options)
    params = resolve_parameters(model, parameters)
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    k = len(params)
    grid = np.array([np.linspace(*p.range, points) for p in params])
    values = np.tile([p.baseline for p in params], (1 + k * points, 1))
    for j in range(k):
        values[1 + j * points: 1 + (j + 1) * points, j] = grid[j]
    results = model.evaluate([p.name for p in params], values, progress)
    data_vars = {}
    for o in model.outputs:
        r = results[o.name]
        base, at = r[0], r[1:].reshape(k, points, *r.shape[1:])
        dims = ("parameter", "point", "time", "statistic")
        data_vars[o.name] = _variable(o, dims, np.stack(mc_summary(at)[:3], axis=-1), "value at each point")
        data_vars[f"{o.name}_change"] = _variable(o, dims, np.stack(mc_summary(at - base)[:3], axis=-1),
                                                  "paired change from the baseline run")
        data_vars[f"{o.name}_baseline"] = _variable(o, ("time", "statistic"), np.stack(mc_summary(base)[:3], -1),
                                                    "value with every parameter at baseline")
    ranges = np.array([p.range for p in params])
    coords = {"point": np.arange(points), "statistic": list(STATISTICS),
              "value": (("parameter", "point"), grid), "low": ("parameter", ranges[:, 0]),
              "high": ("parameter", ranges[:, 1])}
    return _results("one_way", model, data_vars, _parameter_coords(params) | coords,
                    {"seed": seed, "points": points}, [])


# ----------------------------------------------------------------------------- PSA
def psa(scenario: Scenario | Model, ensemble: str | Path | xr.Dataset | None, metrics: Sequence | None, *,
        draws: int | None = None, strategies: Mapping | None = None,
        patients: int = DEFAULT_PATIENTS, replicates: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
        progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """Probabilistic sensitivity analysis: every parameter set of an ensemble, joint as sampled.

    Parameters
    ----------
    scenario : Scenario or model
        The base scenario; parameters the ensemble does not vary keep its values.
    ensemble : str, Path, xarray.Dataset or None
        ``parameters`` over (draw, parameter) (None: the shipped calibrated ensemble).
        Its ``fitted`` parameters (or, without that coordinate, those whose draws
        differ) are taken from it.
    metrics : sequence
        Metric specs; a strategy difference gives the probability that one strategy is better.
    draws : int, optional
        Use this many draws, evenly spaced through the ensemble (default: all).
    strategies, patients, replicates, seed, progress
        See :func:`one_way`.

    Returns
    -------
    xarray.Dataset
        Per output ``o``: ``o`` (draw, time, statistic): the figure under each draw
        with its Monte Carlo CI; ``o_summary`` (time, summary): over draws, the mean,
        SD, 2.5%/50%/97.5% quantiles, the share of draws above 0 (``prob_positive``)
        with its Clopper-Pearson CI over draws (``_lower``/``_upper``) and its Monte
        Carlo range (``_mc_low``: draws whose CI lies above 0; ``_mc_high``: draws
        whose CI reaches above 0); ``o_rank_correlation`` (parameter, time):
        Spearman correlation of the figure with each varied parameter.
        ``inputs`` (draw, parameter): the varied parameters' values.
    """
    options = dict(strategies=strategies, patients=patients, replicates=replicates, seed=seed, ensemble=ensemble)
    model = as_model(scenario, metrics, options)
    ens = load_ensemble(ensemble)
    names = varied_parameters(ens)
    if not names:
        raise SpecError("ensemble: no parameter varies across its draws")
    chosen = np.arange(ens.sizes["draw"])
    if draws is not None:
        if not 1 <= draws <= len(chosen):
            raise ValueError(f"draws must be in 1..{len(chosen)}, got {draws}")
        chosen = np.unique(np.linspace(0, len(chosen) - 1, draws).round().astype(int))
    values = ens["parameters"].sel(parameter=names).values[chosen]
    results = model.evaluate(names, values, progress)
    data_vars = {"inputs": (("draw", "parameter"), values, {"long_name": "parameter values of each draw"})}
    for o in model.outputs:
        est, lo, hi, _ = mc_summary(results[o.name])
        dims = ("draw", "time", "statistic")
        data_vars[o.name] = _variable(o, dims, np.stack([est, lo, hi], axis=-1), "under each draw")
        data_vars[f"{o.name}_summary"] = _variable(o, ("time", "summary"), _psa_summary(est, lo, hi),
                                                   "over the draws")
        data_vars[f"{o.name}_rank_correlation"] = _variable(
            o, ("parameter", "time"), _rank_correlations(values, est), "Spearman correlation with the parameter", "1")
    coords = {"parameter": names, "draw": ens["draw"].values[chosen], "statistic": list(STATISTICS),
              "summary": list(PSA_SUMMARY),
              "distribution": ("parameter", [f"ensemble (mean {v.mean():.4g}, sd {v.std():.4g})"
                                             for v in values.T])}
    return _results("psa", model, data_vars, coords,
                    {"seed": seed, "draws": len(chosen), "ensemble_draws": int(ens.sizes["draw"]),
                     "ensemble": json.dumps({k: str(v) for k, v in ens.attrs.items()})}, [])


def _psa_summary(est: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """:data:`PSA_SUMMARY` over draws (axis 0), for each time point: shape (times, summary)."""
    n = est.shape[0]
    rows = []
    for t in range(est.shape[1]):
        e = est[:, t]
        positive = int(np.sum(e > 0))
        ci = clopper_pearson(positive, n)
        with np.errstate(invalid="ignore"):
            sure, maybe = np.sum(lo[:, t] > 0), np.sum(hi[:, t] > 0)
        mc = (sure / n, maybe / n) if np.all(np.isfinite(lo[:, t])) else (math.nan, math.nan)
        q025, median, q975 = np.quantile(e, [0.025, 0.5, 0.975])
        rows.append([e.mean(), e.std(ddof=1) if n > 1 else math.nan, q025, median, q975, positive / n, *ci, *mc])
    return np.array(rows)


def _rank_correlations(values: np.ndarray, est: np.ndarray) -> np.ndarray:
    """Spearman correlation of each parameter column with each time point's figure (NaN if constant)."""
    out = np.full((values.shape[1], est.shape[1]), np.nan)
    for j in range(values.shape[1]):
        for t in range(est.shape[1]):
            if np.ptp(values[:, j]) > 0 and np.ptp(est[:, t]) > 0:
                out[j, t] = stats.spearmanr(values[:, j], est[:, t]).statistic
    return out


# ----------------------------------------------------------------------------- Sobol
def _unit_problem(params: Sequence[UncertainParameter]) -> dict:
    """SALib's problem on the unit hypercube (columns are mapped onto the parameters afterwards)."""
    return {"num_vars": len(params), "names": [p.name for p in params], "bounds": [[0.0, 1.0]] * len(params)}


def convergence_sizes(n: int) -> list[int]:
    """Base sample sizes of the convergence check: n, n/2, n/4, ... down to :data:`MIN_CONVERGENCE_N`."""
    sizes = [n]
    while sizes[0] // 2 >= MIN_CONVERGENCE_N:
        sizes.insert(0, sizes[0] // 2)
    return sizes


def _sobol_indices(problem: dict, y: np.ndarray, confidence: float, resamples: int, seed: int) -> np.ndarray:
    """SALib's first- and total-order indices with bootstrap CIs: shape (k, 4), NaN if y is undefined or flat."""
    from SALib.analyze import sobol as salib_sobol

    if not np.all(np.isfinite(y)) or np.ptp(y) == 0:
        return np.full((problem["num_vars"], len(SOBOL_INDICES)), np.nan)
    si = salib_sobol.analyze(problem, y, calc_second_order=False, num_resamples=resamples,
                             conf_level=confidence, seed=seed + ANALYZE_SEED_OFFSET)
    return np.stack([si[key] for key in SOBOL_INDICES], axis=-1)


def sobol(scenario: Scenario | Model, problem: Sequence, metrics: Sequence | None, n: int = DEFAULT_SOBOL_N, *,
          confidence: float = CONFIDENCE, resamples: int = DEFAULT_RESAMPLES, strategies: Mapping | None = None,
          patients: int = DEFAULT_PATIENTS, replicates: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
          ensemble: str | Path | xr.Dataset | None = None,
          progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """Sobol first- and total-order indices (SALib: Sobol' sequence sampling, Saltelli-Jansen estimators).

    Parameters
    ----------
    scenario, problem, metrics
        As ``scenario``, ``parameters``, ``metrics`` of :func:`one_way`; each parameter
        follows its spec's distribution.
    n : int
        Base samples, a power of 2; the model runs (k + 2) n parameter sets.
    confidence : float
        Level of the bootstrap confidence intervals.
    resamples : int
        Bootstrap resamples.
    strategies, patients, replicates, seed, ensemble, progress
        See :func:`one_way`; ``seed`` also seeds the sampling and the bootstrap.

    Returns
    -------
    xarray.Dataset
        Per output ``o``: ``o`` (parameter, time, index) with ``index`` = S1, S1_conf,
        ST, ST_conf (``_conf``: half-width of the CI); ``o_convergence``
        (base_samples, parameter, time, index): the same on the first n/2, n/4, ...
        base samples; ``o_samples`` (sample, time): the figure of each parameter set
        (mean over replicates). ``inputs`` (sample, parameter): the sampled values.
        ``attrs['warnings']`` lists what :class:`SensitivityWarning` said.
    """
    from SALib.sample import sobol as salib_sample

    options = dict(strategies=strategies, patients=patients, replicates=replicates, seed=seed, ensemble=ensemble)
    model = as_model(scenario, metrics, options)
    params = resolve_parameters(model, problem)
    if n < 2 or n & (n - 1):
        raise ValueError(f"n must be a power of 2 (Sobol' sequences balance only then), got {n}")
    unit = _unit_problem(params)
    u = salib_sample.sample(unit, n, calc_second_order=False, scramble=True, seed=seed)
    values = np.column_stack([p.ppf(u[:, j]) for j, p in enumerate(params)])
    results = model.evaluate(unit["names"], values, progress)
    sizes = convergence_sizes(n)
    step = len(params) + 2
    data_vars = {"inputs": (("sample", "parameter"), values, {"long_name": "sampled parameter values"})}
    messages: list[str] = []
    for o in model.outputs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            y = np.nanmean(results[o.name], axis=-1)  # (sets, times)
        idx = np.array([[_sobol_indices(unit, y[:size * step, t], confidence, resamples, seed)
                         for t in range(y.shape[1])] for size in sizes])  # (sizes, times, k, 4)
        idx = idx.transpose(0, 2, 1, 3)  # (sizes, k, times, 4)
        _check_sobol(o, model.times, [p.name for p in params], idx, n, messages)
        data_vars[o.name] = _variable(o, ("parameter", "time", "index"), idx[-1], "Sobol indices", "1")
        data_vars[f"{o.name}_convergence"] = _variable(o, ("base_samples", "parameter", "time", "index"), idx,
                                                       "Sobol indices on the first base samples", "1")
        data_vars[f"{o.name}_samples"] = _variable(o, ("sample", "time"), y, "figure of each sampled set")
    coords = {"index": list(SOBOL_INDICES), "base_samples": sizes, "sample": np.arange(len(values))}
    return _results("sobol", model, data_vars, _parameter_coords(params) | coords,
                    {"seed": seed, "n": n, "confidence": confidence, "resamples": resamples,
                     "estimator": "SALib.analyze.sobol (Saltelli 2010 first order, Jansen total order)"}, messages)


def _check_sobol(o: Output, times: Sequence[float], names: list[str], idx: np.ndarray, n: int,
                 messages: list[str]) -> None:
    """Warn when indices leave [0, 1] (n too small), move between n/2 and n, or are undefined."""
    where = [f" at {t:g} months" for t in times] if o.timed else [""]
    final = idx[-1]  # (k, times, 4)
    for t, at in enumerate(where):
        if np.all(np.isnan(final[:, t])):
            _warn(messages, f"sobol: {o.name}{at}: no indices (the figure is undefined for some sets or never "
                            "varies)")
            continue
        point = final[:, t][:, [0, 2]]  # S1, ST
        bad = [f"{kind} of {names[j]} = {point[j, c]:.3f}" for j in range(len(names)) for c, kind in
               enumerate(("S1", "ST")) if not -INDEX_TOLERANCE <= point[j, c] <= 1 + INDEX_TOLERANCE]
        if bad:
            _warn(messages, f"sobol: {o.name}{at}: indices outside [0, 1] ({'; '.join(bad)}): n = {n} is too "
                            "small for stable indices; increase n (or replicates, if the figure is noisy)")
        if len(idx) > 1:
            moved = float(np.nanmax(np.abs(idx[-1][:, t][:, [0, 2]] - idx[-2][:, t][:, [0, 2]])))
            if moved > CONVERGENCE_TOLERANCE:
                _warn(messages, f"sobol: {o.name}{at}: indices moved by up to {moved:.3f} between n = {n // 2} "
                                f"and n = {n}: not converged; increase n")


# ----------------------------------------------------------------------------- Morris
def morris(scenario: Scenario | Model, problem: Sequence, metrics: Sequence | None, n: int = DEFAULT_MORRIS_N, *,
           levels: int = DEFAULT_LEVELS, confidence: float = CONFIDENCE, resamples: int = DEFAULT_RESAMPLES,
           strategies: Mapping | None = None, patients: int = DEFAULT_PATIENTS,
           replicates: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
           ensemble: str | Path | xr.Dataset | None = None,
           progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """Morris elementary effects (SALib) over each parameter's one-way range: a cheap screen.

    Parameters
    ----------
    scenario, problem, metrics
        As for :func:`sobol`; each parameter moves over its one-way range (bounds, or
        the central 95% of its distribution).
    n : int
        Trajectories; the model runs (k + 1) n parameter sets.
    levels : int
        Grid levels of the trajectories.
    confidence, resamples, strategies, patients, replicates, seed, ensemble, progress
        See :func:`sobol`.

    Returns
    -------
    xarray.Dataset
        Per output ``o``: ``o`` (parameter, time, index) with ``index`` = mu, mu_star,
        sigma, mu_star_conf, in the figure's unit per whole range of the parameter;
        ``o_samples`` (sample, time). ``inputs`` (sample, parameter).
    """
    from SALib.analyze import morris as salib_analyze
    from SALib.sample import morris as salib_sample

    options = dict(strategies=strategies, patients=patients, replicates=replicates, seed=seed, ensemble=ensemble)
    model = as_model(scenario, metrics, options)
    params = resolve_parameters(model, problem)
    unit = _unit_problem(params)
    u = salib_sample.sample(unit, n, num_levels=levels, seed=seed)
    ranges = np.array([p.range for p in params])
    values = ranges[:, 0] + u * (ranges[:, 1] - ranges[:, 0])
    results = model.evaluate(unit["names"], values, progress)
    data_vars = {"inputs": (("sample", "parameter"), values, {"long_name": "parameter values of the trajectories"})}
    for o in model.outputs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            y = np.nanmean(results[o.name], axis=-1)
        idx = np.full((len(params), y.shape[1], len(MORRIS_INDICES)), np.nan)
        for t in range(y.shape[1]):
            if np.all(np.isfinite(y[:, t])):
                si = salib_analyze.analyze(unit, u, y[:, t], num_resamples=resamples, conf_level=confidence,
                                           num_levels=levels, seed=seed + ANALYZE_SEED_OFFSET)
                idx[:, t] = np.stack([si[key] for key in MORRIS_INDICES], axis=-1)
        data_vars[o.name] = _variable(o, ("parameter", "time", "index"), idx,
                                      "elementary effects per whole range of the parameter")
        data_vars[f"{o.name}_samples"] = _variable(o, ("sample", "time"), y, "figure of each trajectory point")
    coords = {"index": list(MORRIS_INDICES), "sample": np.arange(len(values)),
              "low": ("parameter", ranges[:, 0]), "high": ("parameter", ranges[:, 1])}
    return _results("morris", model, data_vars, _parameter_coords(params) | coords,
                    {"seed": seed, "n": n, "levels": levels, "confidence": confidence, "resamples": resamples}, [])



# ----------------------------------------------------------------------------- files
def _named(key: str) -> Callable[[Any], Any]:
    """A list item given as a bare string means ``{key: string}``."""
    return lambda v: {key: v} if isinstance(v, str) else v


class _SensitivityFile(BaseModel):
    """The keys of a sensitivity file (``inosim sensitivity``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    name: str
    description: str = ""
    method: Literal["one_way", "psa", "sobol", "morris"]
    scenario: str = Field(description="base scenario file, relative to this file")
    strategies: dict[str, str | dict[str, Any]] = {}
    metrics: Annotated[list[Annotated[MetricSpec, BeforeValidator(_named("metric"))]], Field(min_length=1)]
    parameters: list[Annotated[ParameterSpec, BeforeValidator(_named("name"))]] = []
    ensemble: str | None = None
    draws: Annotated[int, Field(ge=1)] | None = None
    n: Annotated[int, Field(ge=2, le=1 << 20)] | None = None
    points: Annotated[int, Field(ge=2, le=101)] | None = None
    levels: Annotated[int, Field(ge=2, le=20)] | None = None
    confidence: Annotated[float, Field(gt=0.0, lt=1.0)] = CONFIDENCE
    patients: Annotated[int, Field(ge=1, le=10_000_000)] = DEFAULT_PATIENTS
    replicates: Annotated[int, Field(ge=1, le=100_000)] = DEFAULT_REPLICATES
    seed: Annotated[int, Field(ge=0, lt=2**63)] = DEFAULT_SEED

    @model_validator(mode="after")
    def _keys_of_the_method(self) -> _SensitivityFile:
        applies = {"draws": ("psa",), "n": ("sobol", "morris"), "points": ("one_way",), "levels": ("morris",)}
        for key, methods in applies.items():
            if getattr(self, key) is not None and self.method not in methods:
                raise ValueError(f"{key}: applies to method {' or '.join(methods)} only")
        if self.method == "psa" and self.parameters:
            raise ValueError("parameters: psa varies the ensemble's fitted parameters; remove this key")
        if self.method != "psa" and not self.parameters:
            raise ValueError(f"parameters: required for method {self.method}")
        if self.method == "sobol" and self.n is not None and self.n & (self.n - 1):
            raise ValueError(f"n: must be a power of 2 for sobol, got {self.n}")
        return self


@dataclass(frozen=True)
class SensitivityConfig:
    """A validated sensitivity file: the model, its resolved parameters and the method's options."""

    name: str
    description: str
    source: str
    method: str
    model: SimulatorModel
    parameters: tuple[UncertainParameter, ...]
    ensemble: xr.Dataset | None
    options: dict


def load_sensitivity(path: str | Path, *, patients: int | None = None, replicates: int | None = None,
                     seed: int | None = None, dask: str | None = None) -> SensitivityConfig:
    """Load a sensitivity file and check everything that can be checked before simulating.

    Parameters
    ----------
    path : str or Path
        The YAML file; ``scenario``, ``strategies`` files and ``ensemble`` are relative to it.
    patients, replicates, seed : int, optional
        Override the file's sizes (validated as if written in it).
    dask : str, optional
        Run the parameter sets on a dask.distributed cluster (see :class:`SimulatorModel`).

    Raises
    ------
    ConfigError
        One line naming the file and the key path.
    """
    path = Path(path)
    source = str(path)
    sizes = {"patients": patients, "replicates": replicates, "seed": seed}
    spec = validate(_SensitivityFile, read_yaml(path) | {k: v for k, v in sizes.items() if v is not None}, source)
    try:
        scenario = load_scenario(path.parent / spec.scenario)
    except ConfigError as exc:
        raise ConfigError(f"{source}: scenario: {exc}") from None
    strategies: dict[str, Scenario | dict] = {}
    for name, value in spec.strategies.items():
        try:
            strategies[name] = load_scenario(path.parent / value) if isinstance(value, str) else value
        except ConfigError as exc:
            raise ConfigError(f"{source}: strategies.{name}: {exc}") from None
    ensemble_path = path.parent / spec.ensemble if spec.ensemble else None
    try:
        ensemble = load_ensemble(ensemble_path)
        model = SimulatorModel(scenario, spec.metrics, strategies=strategies, patients=spec.patients,
                               replicates=spec.replicates, seed=spec.seed, ensemble=ensemble, dask=dask)
        params = resolve_parameters(model, spec.parameters) if spec.method != "psa" else ()
    except ConfigError as exc:  # SpecError included
        raise ConfigError(f"{source}: {exc}") from None
    options = {"one_way": {"points": spec.points or DEFAULT_POINTS},
               "psa": {"draws": spec.draws},
               "sobol": {"n": spec.n or DEFAULT_SOBOL_N, "confidence": spec.confidence},
               "morris": {"n": spec.n or DEFAULT_MORRIS_N, "levels": spec.levels or DEFAULT_LEVELS,
                          "confidence": spec.confidence}}[spec.method]
    return SensitivityConfig(spec.name, spec.description, source, spec.method, model, params,
                             ensemble if spec.method == "psa" else None, options)


def run_sensitivity(config: SensitivityConfig, progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """Run a loaded sensitivity file; the result also records the file's name and description."""
    seed = config.model.seed
    if config.method == "psa":
        ds = psa(config.model, config.ensemble, None, seed=seed, progress=progress, **config.options)
    else:
        method = {"one_way": one_way, "sobol": sobol, "morris": morris}[config.method]
        ds = method(config.model, config.parameters, None, seed=seed, progress=progress, **config.options)
    return ds.assign_attrs(name=config.name, description=config.description, source=config.source)
