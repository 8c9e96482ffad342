"""Probabilistic sensitivity analysis over the calibrated ensemble (joint draws).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from simulator.analysis.outcomes import clopper_pearson
from simulator.analysis.trial_metrics import mc_summary
from simulator.model.config import Scenario
from simulator.sensitivity.common import (
    PSA_SUMMARY,
    STATISTICS,
    results_dataset,
    variable,
)
from simulator.sensitivity.distributions import (
    SpecError,
    load_ensemble,
    varied_parameters,
)
from simulator.sensitivity.models import (
    DEFAULT_PATIENTS,
    DEFAULT_REPLICATES,
    DEFAULT_SEED,
    Model,
    as_model,
)


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
        See :func:`one_way`. Every strategy simulates the same patients; every draw its own
        (draw ``k`` of the ensemble: block ``k``, see :meth:`SimulatorModel.evaluate`), so the
        Monte Carlo errors of the draws are independent and average out over draws.

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
    results = model.evaluate(names, values, progress, blocks=chosen)  # every draw its own patients
    data_vars = {"inputs": (("draw", "parameter"), values, {"long_name": "parameter values of each draw"})}
    for o in model.outputs:
        est, lo, hi, _ = mc_summary(results[o.name])
        dims = ("draw", "time", "statistic")
        data_vars[o.name] = variable(o, dims, np.stack([est, lo, hi], axis=-1), "under each draw")
        data_vars[f"{o.name}_summary"] = variable(o, ("time", "summary"), _psa_summary(est, lo, hi),
                                                   "over the draws")
        data_vars[f"{o.name}_rank_correlation"] = variable(
            o, ("parameter", "time"), _rank_correlations(values, est), "Spearman correlation with the parameter", "1")
    coords = {"parameter": names, "draw": ens["draw"].values[chosen], "statistic": list(STATISTICS),
              "summary": list(PSA_SUMMARY),
              "distribution": ("parameter", [f"ensemble (mean {v.mean():.4g}, sd {v.std():.4g})"
                                             for v in values.T])}
    return results_dataset("psa", model, data_vars, coords,
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
