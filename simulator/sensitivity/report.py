"""Text reports of sensitivity results: tables sorted by importance, with their intervals."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from simulator.analysis.labels import display_unit, scale

RANK_CORRELATIONS_SHOWN = 8  # PSA: parameters listed by rank correlation when no `top` is given


def output_unit(output: dict) -> tuple[float, str]:
    """Factor and display unit of an output (an entry of ``attrs['outputs']``): rates in %, their
    differences between strategies in percentage points (pp)."""
    return scale(output["units"]), display_unit(output["units"], difference=bool(output["minus"]))


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
            lines += ["", f"{o['label']}{at} ({unit})"]
            lines += _FORMATTERS[method](ds, o["name"], sel, factor, top)
    return "\n".join(lines + [f"warning: {w}" for w in json.loads(ds.attrs["warnings"])]).lstrip("\n")


def _format_one_way(ds: xr.Dataset, name: str, sel: dict, factor: float, top: int | None) -> list[str]:
    base = ds[f"{name}_baseline"].sel(sel)
    change = ds[f"{name}_change"].sel(sel)
    first, last = change.isel(point=0), change.isel(point=-1)
    swing = np.abs(last.sel(statistic="estimate") - first.sel(statistic="estimate")).values
    lines = [f"  baseline {factor * float(base.sel(statistic='estimate')):.2f} "
             f"({factor * float(base.sel(statistic='lower')):.2f}, {factor * float(base.sel(statistic='upper')):.2f})",
             f"  {'parameter':<38} {'range':>21} {'change at low (95% CI)':>26} {'change at high (95% CI)':>26} "
             f"{'swing':>7}"]
    for j in np.argsort(-swing)[:top]:
        cells = []
        for end in (first, last):
            e = end.isel(parameter=j)
            cells.append(f"{factor * float(e.sel(statistic='estimate')):+.2f} "
                         f"({factor * float(e.sel(statistic='lower')):+.2f}, {factor * float(e.sel(statistic='upper')):+.2f})")
        rng = f"{float(ds.low[j]):.4g} to {float(ds.high[j]):.4g}"
        lines.append(f"  {str(ds.parameter.values[j]):<38} {rng:>21} {cells[0]:>26} {cells[1]:>26} "
                     f"{factor * swing[j]:7.2f}")
    return lines


def _format_sobol(ds: xr.Dataset, name: str, sel: dict, factor: float, top: int | None) -> list[str]:
    idx = ds[name].sel(sel)
    conv = ds[f"{name}_convergence"].sel(sel)
    order = np.argsort(-np.nan_to_num(idx.sel(index="ST").values, nan=-np.inf))[:top]
    sizes = ", ".join(str(int(s)) for s in ds.base_samples.values)
    lines = [f"  {'parameter':<38} {'S1 (95% CI)':>22} {'ST (95% CI)':>22}   ST at n = {sizes}"]
    for j in order:
        r = idx.isel(parameter=j)
        cells = [f"{float(r.sel(index=k)):.3f} +- {float(r.sel(index=f'{k}_conf')):.3f}" for k in ("S1", "ST")]
        path = " ".join(f"{v:.2f}" for v in conv.isel(parameter=j).sel(index="ST").values)
        lines.append(f"  {str(ds.parameter.values[j]):<38} {cells[0]:>22} {cells[1]:>22}   {path}")
    lines.append(f"  sum of S1 = {float(idx.sel(index='S1').sum()):.3f} (1 - sum: the share of variance "
                 "from interactions)")
    return lines


def _format_morris(ds: xr.Dataset, name: str, sel: dict, factor: float, top: int | None) -> list[str]:
    idx = ds[name].sel(sel)
    order = np.argsort(-np.nan_to_num(idx.sel(index="mu_star").values, nan=-np.inf))[:top]
    lines = [f"  {'parameter':<38} {'range':>21} {'mu* (95% CI)':>20} {'mu':>9} {'sigma':>9}"]
    for j in order:
        r = idx.isel(parameter=j)
        rng = f"{float(ds.low[j]):.4g} to {float(ds.high[j]):.4g}"
        mu_star = f"{factor * float(r.sel(index='mu_star')):.2f} +- {factor * float(r.sel(index='mu_star_conf')):.2f}"
        lines.append(f"  {str(ds.parameter.values[j]):<38} {rng:>21} {mu_star:>20} "
                     f"{factor * float(r.sel(index='mu')):9.2f} {factor * float(r.sel(index='sigma')):9.2f}")
    return lines


def _format_psa(ds: xr.Dataset, name: str, sel: dict, factor: float, top: int | None) -> list[str]:
    s = ds[f"{name}_summary"].sel(sel)

    def get(key: str) -> float:
        return float(s.sel(summary=key))

    rho = ds[f"{name}_rank_correlation"].sel(sel)
    order = np.argsort(-np.nan_to_num(np.abs(rho.values), nan=-np.inf))[:top or RANK_CORRELATIONS_SHOWN]
    return [
        f"  over {ds.sizes['draw']} draws: mean {factor * get('mean'):.2f}, SD {factor * get('sd'):.2f}, "
        f"95% of draws in ({factor * get('q025'):.2f}, {factor * get('q975'):.2f})",
        f"  P(> 0) = {get('prob_positive'):.3f} (95% CI over draws {get('prob_positive_lower'):.3f}-"
        f"{get('prob_positive_upper'):.3f}; Monte Carlo range {get('prob_positive_mc_low'):.3f}-"
        f"{get('prob_positive_mc_high'):.3f})",
        "  rank correlation with the parameters: "
        + ", ".join(f"{ds.parameter.values[j]} {float(rho[j]):+.2f}" for j in order),
    ]


_FORMATTERS = {"one_way": _format_one_way, "sobol": _format_sobol, "morris": _format_morris, "psa": _format_psa}
