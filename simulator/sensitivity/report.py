"""Text reports of sensitivity results: tables sorted by importance, with their intervals, each
within :data:`simulator.analysis.text.WIDTH` columns (every number is in the results file)."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from simulator.analysis.labels import display_unit, scale
from simulator.analysis.text import paragraph, table

RANK_CORRELATIONS_SHOWN = 8  # PSA: parameters listed by rank correlation when no `top` is given
INDENT = "  "


def output_unit(output: dict) -> tuple[float, str]:
    """Factor and display unit of an output (an entry of ``attrs['outputs']``): rates in %, their
    differences between strategies in percentage points (pp)."""
    return scale(output["units"]), display_unit(output["units"], difference=bool(output["minus"]))


def _number(value: float, factor: float, sign: str = "") -> str:
    """A value in its output's display unit, two decimals; ``sign`` ``+`` for a change."""
    return f"{factor * value:{sign}.2f}"


def _interval(r: xr.DataArray, factor: float, sign: str = "") -> str:
    """``estimate (lower, upper)`` of a variable with a ``statistic`` dimension."""
    est, lo, hi = (_number(float(r.sel(statistic=k)), factor, sign) for k in ("estimate", "lower", "upper"))
    return f"{est} ({lo}, {hi})"


def _times(ds: xr.Dataset, name: str) -> list[tuple[str, dict]]:
    """(suffix, selection) for each time point of a variable, or one untimed entry."""
    if "time" not in ds[name].dims:
        return [("", {})]
    return [(f" at {t:g} months", {"time": t}) for t in ds.time.values]


def format_result(ds: xr.Dataset, top: int | None = None) -> str:
    """A text report of a sensitivity result: tables sorted by importance, and its warnings.

    Parameters
    ----------
    ds : xarray.Dataset
        The result of :func:`one_way`, :func:`psa`, :func:`sobol` or :func:`morris`.
    top : int, optional
        Show only the most important parameters.
    """
    method = ds.attrs["method"]
    lines = []
    for o in json.loads(ds.attrs["outputs"]):
        factor, unit = output_unit(o)
        for at, sel in _times(ds, o["name"]):
            lines += ["", paragraph(f"{o['label']}{at} ({unit})")]
            lines += _FORMATTERS[method](ds, o["name"], sel, factor, top)
    return "\n".join(lines + [paragraph(f"warning: {w}") for w in json.loads(ds.attrs["warnings"])]).lstrip("\n")


def _format_one_way(ds: xr.Dataset, name: str, sel: dict, factor: float, top: int | None) -> list[str]:
    base = ds[f"{name}_baseline"].sel(sel)
    change = ds[f"{name}_change"].sel(sel)
    first, last = change.isel(point=0), change.isel(point=-1)
    swing = np.abs(last.sel(statistic="estimate") - first.sel(statistic="estimate")).values
    rows = [("parameter", "range", "change at low", "change at high", "swing"), ("", "", "(95% CI)", "(95% CI)", "")]
    for j in np.argsort(-swing)[:top]:
        rows.append((str(ds.parameter.values[j]), f"{float(ds.low[j]):.4g} to {float(ds.high[j]):.4g}",
                     *(_interval(end.isel(parameter=j), factor, "+") for end in (first, last)),
                     _number(swing[j], factor)))
    return [f"{INDENT}baseline {_interval(base, factor)}", *table(rows, "<>>>>", indent=INDENT)]


def _format_sobol(ds: xr.Dataset, name: str, sel: dict, factor: float, top: int | None) -> list[str]:
    idx = ds[name].sel(sel)
    conv = ds[f"{name}_convergence"].sel(sel)
    order = np.argsort(-np.nan_to_num(idx.sel(index="ST").values, nan=-np.inf))[:top]
    sizes = ", ".join(str(int(s)) for s in ds.base_samples.values)
    rows = [("parameter", "S1 (95% CI)", "ST (95% CI)", f"ST at n = {sizes}")]
    for j in order:
        r = idx.isel(parameter=j)
        rows.append((str(ds.parameter.values[j]),
                     *(f"{float(r.sel(index=k)):.3f} +- {float(r.sel(index=f'{k}_conf')):.3f}" for k in ("S1", "ST")),
                     " ".join(f"{v:.2f}" for v in conv.isel(parameter=j).sel(index="ST").values)))
    return [*table(rows, "<>><", indent=INDENT),
            f"{INDENT}sum of S1 = {float(idx.sel(index='S1').sum()):.3f} (1 - sum: the share of variance from "
            "interactions)"]


def _format_morris(ds: xr.Dataset, name: str, sel: dict, factor: float, top: int | None) -> list[str]:
    idx = ds[name].sel(sel)
    order = np.argsort(-np.nan_to_num(idx.sel(index="mu_star").values, nan=-np.inf))[:top]
    rows = [("parameter", "range", "mu* (95% CI)", "mu", "sigma")]
    for j in order:
        r = idx.isel(parameter=j)
        rows.append((str(ds.parameter.values[j]), f"{float(ds.low[j]):.4g} to {float(ds.high[j]):.4g}",
                     f"{_number(float(r.sel(index='mu_star')), factor)} +- "
                     f"{_number(float(r.sel(index='mu_star_conf')), factor)}",
                     *(_number(float(r.sel(index=k)), factor) for k in ("mu", "sigma"))))
    return table(rows, "<>>>>", indent=INDENT)


def _format_psa(ds: xr.Dataset, name: str, sel: dict, factor: float, top: int | None) -> list[str]:
    s = ds[f"{name}_summary"].sel(sel)

    def get(key: str) -> float:
        return float(s.sel(summary=key))

    rho = ds[f"{name}_rank_correlation"].sel(sel)
    order = np.argsort(-np.nan_to_num(np.abs(rho.values), nan=-np.inf))[:top or RANK_CORRELATIONS_SHOWN]
    together = "\N{NO-BREAK SPACE}"  # a parameter and its correlation stay on one line
    return [paragraph(text, indent=INDENT).replace(together, " ") for text in (
        f"over {ds.sizes['draw']} draws: mean {_number(get('mean'), factor)}, SD {_number(get('sd'), factor)}, "
        f"95% of draws in ({_number(get('q025'), factor)}, {_number(get('q975'), factor)})",
        f"P(> 0) = {get('prob_positive'):.3f} (95% CI over draws {get('prob_positive_lower'):.3f}-"
        f"{get('prob_positive_upper'):.3f}; Monte Carlo range {get('prob_positive_mc_low'):.3f}-"
        f"{get('prob_positive_mc_high'):.3f})",
        "rank correlation with the parameters: "
        + ", ".join(f"{ds.parameter.values[j]}{together}{float(rho[j]):+.2f}" for j in order))]


_FORMATTERS = {"one_way": _format_one_way, "sobol": _format_sobol, "morris": _format_morris, "psa": _format_psa}
