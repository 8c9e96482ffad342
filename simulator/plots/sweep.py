"""Figures of a sweep: heatmaps over two axes, Kaplan-Meier curves, a forest plot.

All read the results Dataset of :func:`simulator.sweep.run_sweep`.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from simulator.analysis.trial_metrics import CURVES, mc_summary  # noqa: E402
from simulator.plots.common import (
    FOREST_COLUMNS,
    MAX_CURVES,
    TRIAL_RANGE,
    save,
    scale,
    sizes_note,
)
from simulator.sweep.compare import (  # noqa: E402
    HEADLINE_METRICS,
    paired_differences,
    reference_index,
)
from simulator.sweep.experiment import sweep_axes  # noqa: E402


def heatmap(ds: xr.Dataset, metric: str, out_dir: Path, x: str | None = None, y: str | None = None,
            ) -> list[Path]:
    """Pooled estimate of ``metric`` over two axes, one panel per value of a third.

    Axes not shown are held at the reference grid point. Each cell shows the
    estimate and its Monte Carlo CI.
    """
    free = [d for d in sweep_axes(ds) if ds.sizes[d] > 1]
    x = x or free[0]
    y = y or next(d for d in free if d != x)
    ref = reference_index(ds)
    facet = next((d for d in free if d not in (x, y)), None)
    held = {d: i for d, i in ref.items() if d not in (x, y, facet)}
    panels = list(range(ds.sizes[facet])) if facet else [None]
    row = ds.isel(held).sel(metric=metric)
    factor, unit = scale(str(row.unit.values))
    est = row.pooled_estimate * factor
    lo, hi = row.pooled_lower * factor, row.pooled_upper * factor
    vmin, vmax = float(est.min()), float(est.max())
    fig, axs = plt.subplots(1, len(panels), figsize=(1.6 + 1.45 * ds.sizes[x] * len(panels), 1.2 + 0.75 * ds.sizes[y]),
                            squeeze=False, constrained_layout=True)
    for ax, p in zip(axs[0], panels):
        sel = {facet: p} if facet else {}
        grid, lo_grid, hi_grid = (a.isel(sel).transpose(y, x).values for a in (est, lo, hi))
        image = ax.imshow(grid, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for (j, i), value in np.ndenumerate(grid):
            dark = value < vmin + 0.5 * (vmax - vmin)
            ax.text(i, j, f"{value:.3g}\n({lo_grid[j, i]:.3g}-{hi_grid[j, i]:.3g})", ha="center", va="center",
                    fontsize=6.5, color="white" if dark else "black")
        ax.set_xticks(range(ds.sizes[x]), [str(v) for v in ds[x].values])
        ax.set_yticks(range(ds.sizes[y]), [str(v) for v in ds[y].values])
        ax.set_xlabel(f"{x} ({ds[x].attrs.get('key_path', x)})")
        ax.set_ylabel(y)
        if facet:
            ax.set_title(f"{facet} = {ds[facet].values[p]}", fontsize=9)
    fig.colorbar(image, ax=axs[0].tolist(), label=f"{row.label.values} ({unit})")
    others = ", ".join(f"{d}={ds[d].values[i]}" for d, i in held.items())
    fig.suptitle(f"{row.label.values} ({unit}): mean over trials, cells: estimate (95% CI)\n"
                 f"{ds.attrs['experiment_name']}; {sizes_note(ds)}" + (f"; {others}" if others else ""),
                 fontsize=10)
    return save(fig, out_dir, f"heatmap_{metric}")


def _strategy_axis(ds: xr.Dataset) -> str:
    """The axis whose values are drawn as separate curves: ``strategy`` or the first that varies."""
    axes = sweep_axes(ds)
    return "strategy" if "strategy" in axes else next((d for d in axes if ds.sizes[d] > 1), axes[0])


def km_curves(ds: xr.Dataset, out_dir: Path, along: str | None = None) -> list[Path]:
    """Kaplan-Meier OS and PFS, one curve per value of an axis (others at the reference).

    The line is the mean of the trials' curves with its Monte Carlo CI (dark band);
    the light band spans the middle 95% of single trials (what one trial might show).
    """
    along = along or _strategy_axis(ds)
    held = {d: i for d, i in reference_index(ds).items() if d != along}
    fig, axs = plt.subplots(1, len(CURVES), figsize=(6.0 * len(CURVES), 4.4), constrained_layout=True)
    months = ds.month.values
    colors = plt.get_cmap("tab10")
    for ax, (name, (_, title)) in zip(np.atleast_1d(axs), CURVES.items()):
        curves = ds[name].isel(held).transpose(along, "replicate", "month").values.astype(float)
        for k, label in enumerate(ds[along].values[:MAX_CURVES]):
            est, lo, hi, _ = mc_summary(curves[k], axis=0)
            low, high = np.nanpercentile(curves[k], TRIAL_RANGE, axis=0)
            color = colors(k % 10)
            ax.fill_between(months, 100 * low, 100 * high, color=color, alpha=0.08, step="post", lw=0)
            ax.fill_between(months, 100 * lo, 100 * hi, color=color, alpha=0.35, step="post", lw=0)
            ax.step(months, 100 * est, where="post", color=color, lw=1.6, label=f"{along}={label}")
        ax.set_title(f"Kaplan-Meier {title}")
        ax.set_xlabel("months from the first dose")
        ax.set_ylabel(f"{title} (%)")
        ax.set_ylim(0, 100)
        ax.set_xlim(months[0], months[-1])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    others = ", ".join(f"{d}={ds[d].values[i]}" for d, i in held.items())
    fig.suptitle(f"{ds.attrs['experiment_name']}: mean of trial curves (dark band: 95% Monte Carlo CI; "
                 f"light band: middle 95% of single trials)\n{sizes_note(ds)}"
                 + (f"; {others}" if others else ""), fontsize=10)
    return save(fig, out_dir, "km_os_pfs")


def forest(ds: xr.Dataset, out_dir: Path, metrics: tuple[str, ...] = HEADLINE_METRICS) -> list[Path]:
    """Paired differences from the reference, one row per grid point, one panel per metric."""
    diffs = paired_differences(ds)
    ref = json.loads(diffs.attrs["reference"])
    stacked = diffs.stack(point=sweep_axes(ds))
    keep = [i for i, p in enumerate(stacked.point.values) if dict(zip(sweep_axes(ds), map(str, p))) != ref]
    stacked = stacked.isel(point=keep)
    names = [", ".join(f"{d}={v}" for d, v in zip(sweep_axes(ds), p)) for p in stacked.point.values]
    rows = np.arange(len(names))[::-1]
    ncols = min(len(metrics), FOREST_COLUMNS)
    nrows = -(-len(metrics) // ncols)
    fig, axs = plt.subplots(nrows, ncols, figsize=(3.2 * ncols + 2.5, nrows * (1.2 + 0.22 * len(names))),
                            sharey=True, squeeze=False, constrained_layout=True)
    for ax in axs.flat[len(metrics):]:
        ax.set_visible(False)
    for ax, m in zip(axs.flat, metrics):
        r = stacked.sel(metric=m)
        factor, unit = scale(str(r.unit.values))
        est = r.estimate.values * factor
        err = np.abs(np.stack([r.lower.values, r.upper.values]) * factor - est)
        ax.errorbar(est, rows, xerr=err, fmt="o", ms=3.5, color="tab:blue", ecolor="tab:blue", capsize=2)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_title(f"{r.label.values}", fontsize=8.5)
        ax.set_xlabel("difference (pp)" if unit == "%" else f"difference ({unit})", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in axs[:, 0]:
        ax.set_yticks(rows, names, fontsize=7)
    fig.suptitle(f"{ds.attrs['experiment_name']}: paired differences from the reference "
                 f"({', '.join(f'{d}={v}' for d, v in ref.items())}), same virtual patients\n"
                 f"{sizes_note(ds)}", fontsize=10)
    return save(fig, out_dir, "forest")


def plot_all(ds: xr.Dataset, out_dir: str | Path, metrics: tuple[str, ...] = HEADLINE_METRICS,
             x: str | None = None, y: str | None = None) -> list[Path]:
    """Every figure for a results Dataset: heatmaps (if two axes vary), KM curves, forest plot.

    Returns
    -------
    list of Path
        The files written (PNG and SVG of each figure).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    if sum(ds.sizes[d] > 1 for d in sweep_axes(ds)) >= 2:
        for m in metrics:
            paths += heatmap(ds, m, out_dir, x, y)
    paths += km_curves(ds, out_dir)
    paths += forest(ds, out_dir, metrics)
    return paths
