"""Figures of a sweep, each answering one question about differences from the reference.

- :func:`heatmap` (two or more axes vary): "which grid points change this metric, by
  how much, against the reference?" One panel per value of a third axis, a diverging
  colour scale centred on no difference and shared by the panels, the reference cell
  framed and named, every other cell annotated with its difference (the Monte Carlo
  half-widths in the title).
- :func:`forest` (at most :data:`FOREST_MAX` grid points besides the reference): "how
  does each strategy differ from the reference on the headline metrics?"
- :func:`survival` : "when, after the first dose, does survival differ from the
  reference, and by how much?" Paired difference curves with Monte Carlo bands, and
  the survival curves themselves in a small panel below.

All read the results Dataset of :func:`simulator.sweep.run_sweep`; names and units
come from :mod:`simulator.analysis.labels`.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.patches import Rectangle
from matplotlib.transforms import blended_transform_factory

from simulator.analysis.labels import (
    NO_LIMIT,
    axis_label,
    metric_label,
    scale,
    strategy_title,
)
from simulator.analysis.trial_metrics import CURVES, mc_summary
from simulator.plots.common import (
    DEFAULT_FORMAT,
    DIVERGING,
    LEGEND_SIZE,
    LINE,
    MARGIN,
    NEUTRAL_DIVERGING,
    REFERENCE_COLOR,
    TICK_SIZE,
    TITLE_SIZE,
    ZERO_LINE,
    mc_note,
    panel_grid,
    save,
    text_width,
    wrap,
)
from simulator.sweep.compare import (
    HEADLINE,
    HEADLINE_METRICS,
    paired_differences,
    reference_index,
)
from simulator.sweep.experiment import STRATEGY_AXIS, axis_labels, sweep_axes

FOREST_MAX = 8  # grid points besides the reference that a forest plot shows
FOREST_COLUMNS = 4  # metric panels per row of a forest plot
FOREST_SIZE = 8.0  # points: the grid points' names
MAX_CURVES = 8  # survival curves drawn along one axis
VIRIDIS_END = 0.8  # numeric values run through viridis up to here: its yellow end is hard to see on white
REFERENCE_GID = "reference"  # the artist framing the reference cell of a heatmap


# ----------------------------------------------------------------------------- names
def _keys(ds: xr.Dataset) -> dict[str, str]:
    """Scenario key path of every axis."""
    return {a["name"]: a["key"] for a in json.loads(ds.attrs["experiment"])["axes"]}


def _value_text(ds: xr.Dataset, dim: str, i: int, unit: bool = False) -> str:
    """A value of an axis as read on a figure: ``3.3``, ``no cap`` for none, a strategy's title."""
    key, label = _keys(ds)[dim], axis_labels(ds)[dim][i]
    if key == STRATEGY_AXIS:
        return strategy_title(label)
    if label == NO_LIMIT:
        return "no cap" if key.endswith("cap") else "no limit"
    total = f"{dim}_total"
    suffix = f" ({float(ds[total].values[i]):g} total)" if total in ds.coords and unit else ""
    return label + (f" {axis_label(key).unit}" if unit and axis_label(key).unit else "") + suffix


def _point_text(ds: xr.Dataset, index: dict[str, int]) -> str:
    """A grid point in words: ``Cumulative dose cap 3.3 mg/m², Maximum cycles 2``."""
    keys = _keys(ds)
    return ", ".join(_value_text(ds, d, i) if keys[d] == STRATEGY_AXIS else
                     f"{axis_label(keys[d]).name} {_value_text(ds, d, i, unit=True)}" for d, i in index.items())


def _colormap(metric: str) -> str:
    """Blue where the difference is better for patients, red where worse."""
    direction = HEADLINE.get(metric)
    if direction is None:
        return NEUTRAL_DIVERGING
    return DIVERGING if direction > 0 else f"{DIVERGING}_r"


# ----------------------------------------------------------------------------- heatmap
def heatmap(ds: xr.Dataset, metric: str, x: str | None = None, y: str | None = None,
            diffs: xr.Dataset | None = None) -> plt.Figure:
    """Paired differences from the reference over two axes, one panel per value of a third.

    Axes not shown are held at the reference. The colour scale is diverging,
    centred on no difference and shared by every panel; blue is better for the
    patient where the metric has a better direction.
    """
    diffs = paired_differences(ds) if diffs is None else diffs
    free = [d for d in sweep_axes(ds) if ds.sizes[d] > 1]
    x = x or free[0]
    y = y or next(d for d in free if d != x)
    ref = reference_index(ds)
    facet = next((d for d in free if d not in (x, y)), None)
    held = {d: i for d, i in ref.items() if d not in (x, y, facet)}
    cell = diffs.sel(metric=metric).isel(held)
    factor = scale(str(cell.unit.values))
    diff_label, label = metric_label(metric, difference=True), metric_label(metric)
    est = (cell.estimate * factor).transpose(*([facet] if facet else []), y, x).values
    half = ((cell.upper - cell.lower) / 2 * factor).transpose(*([facet] if facet else []), y, x).values
    est, half = (a if facet else a[None] for a in (est, half))
    limit = float(np.nanmax(np.abs(est))) or 1.0
    keys = _keys(ds)
    n_panels = est.shape[0]
    x_ticks = [_value_text(ds, x, i) for i in range(ds.sizes[x])]
    y_ticks = [_value_text(ds, y, j) for j in range(ds.sizes[y])]
    facet_titles = [f"{axis_label(keys[facet]).name}: {_value_text(ds, facet, p, unit=True)}" if facet else ""
                    for p in range(n_panels)]
    bar_label = f"difference ({diff_label.unit})" + ("\nblue: better for patients" if metric in HEADLINE else "")
    width = max(ds.sizes[x] * max(0.95, text_width("\n".join(x_ticks), TICK_SIZE) + 0.2),
                text_width("\n".join(facet_titles), TITLE_SIZE) + 0.1, text_width(axis_label(keys[x]).text(),
                                                                                   TICK_SIZE) + 0.1)
    height = max(0.5 * ds.sizes[y] + 0.3, text_width(bar_label, TICK_SIZE) + 0.1)
    left = text_width("\n".join(y_ticks), TICK_SIZE) + 0.55
    others = f"; held at {_point_text(ds, held)}" if held else ""
    ref_value = float(cell.reference_value.values.flat[0]) * factor
    right, gap = 1.5, 0.3  # inches: the colour bar, between panels
    title = wrap(f"{label.name}: difference from the reference ({ref_value:.1f} {label.unit}), same virtual "
                 f"patients{others}\ncells: difference in {diff_label.unit}, each within ± {np.nanmin(half):.1f} to "
                 f"{np.nanmax(half):.1f} {diff_label.unit} ({mc_note(ds)})",
                 left + right + n_panels * width + (n_panels - 1) * gap - MARGIN, TITLE_SIZE)
    top = 0.3 + LINE * (title.count("\n") + 1 + bool(facet))  # the title, and the panels' own titles
    fig, axs = panel_grid(1, n_panels, width, height, left=left, right=right, top=top, bottom=0.7, wspace=gap,
                          sharey=True)
    for p, ax in enumerate(axs[0]):
        image = ax.imshow(est[p], origin="lower", cmap=_colormap(metric), vmin=-limit, vmax=limit, aspect="auto")
        framed = facet is None or p == ref[facet]
        for (j, i), value in np.ndenumerate(est[p]):
            if value != value:
                continue
            strong = abs(value) > 0.6 * limit
            is_reference = framed and (i, j) == (ref[x], ref[y])
            ax.text(i, j, "reference" if is_reference else f"{value:+.1f}", ha="center", va="center", fontsize=8,
                    fontweight="bold" if is_reference else "normal", color="white" if strong else "black",
                    in_layout=False)  # inside the axes: not measured
        if framed:
            ax.add_patch(Rectangle((ref[x] - 0.5, ref[y] - 0.5), 1, 1, fill=False, lw=2.5,
                                   edgecolor=REFERENCE_COLOR, gid=REFERENCE_GID))
        ax.set_xticks(range(ds.sizes[x]), x_ticks)
        ax.set_yticks(range(ds.sizes[y]), y_ticks)
        ax.set_xlabel(axis_label(keys[x]).text())
        if p == 0:
            ax.set_ylabel(axis_label(keys[y]).text())
        if facet:
            ax.set_title(facet_titles[p], fontsize=TITLE_SIZE)
    right = axs[0, -1].get_position()
    fig.colorbar(image, cax=fig.add_axes((right.x1 + 0.25 / fig.get_figwidth(), right.y0,
                                          0.15 / fig.get_figwidth(), right.height)), label=bar_label)
    fig.suptitle(title, fontsize=TITLE_SIZE)
    return fig


# ----------------------------------------------------------------------------- forest
def _non_reference_points(ds: xr.Dataset) -> list[dict[str, int]]:
    ref = reference_index(ds)
    dims = sweep_axes(ds)
    points = [dict(zip(dims, map(int, i))) for i in np.ndindex(*(ds.sizes[d] for d in dims))]
    return [p for p in points if p != ref]


def forest(ds: xr.Dataset, metrics: tuple[str, ...] = HEADLINE_METRICS, diffs: xr.Dataset | None = None
           ) -> plt.Figure:
    """Paired differences from the reference: one row per grid point, one panel per metric.

    Panels with the same unit share their scale, so a difference reads the same size
    everywhere; each panel's mean differences are written in a column to its right.
    Meant for a handful of strategies (see :data:`FOREST_MAX`).
    """
    diffs = paired_differences(ds) if diffs is None else diffs
    points = _non_reference_points(ds)
    names = [_point_text(ds, {d: i for d, i in p.items() if ds.sizes[d] > 1}) for p in points]
    rows = np.arange(len(points))[::-1]
    ncols = min(len(metrics), FOREST_COLUMNS)
    nrows = -(-len(metrics) // ncols)
    left, width, column, gap = text_width("\n".join(names), FOREST_SIZE) + 0.3, 2.3, 0.45, 0.35  # inches
    title = wrap(f"Difference from the reference ({_point_text(ds, reference_index(ds))}), same virtual patients\n"
                 f"dots: mean difference; bars: {mc_note(ds)}\nblue: better for patients, red: worse, grey: the "
                 "interval includes no difference", left + ncols * (width + column + gap) - gap - MARGIN, TITLE_SIZE)
    fig, axs = panel_grid(nrows, ncols, width, 0.42 * len(points) + 0.3, left=left, right=column,
                          top=0.45 + LINE * (title.count("\n") + 1), bottom=0.6, wspace=column + gap, hspace=0.75,
                          sharey=True)
    for ax in axs.flat[len(metrics):]:
        ax.set_visible(False)
    stats = {}
    for m in metrics:
        cell = diffs.sel(metric=m)
        factor = scale(str(cell.unit.values))
        stats[m] = np.array([[float(cell[v].isel(p)) * factor for v in ("estimate", "lower", "upper")]
                             for p in points])
    spans: dict[str, float] = {}  # panels of one unit share their scale
    for m in metrics:
        unit = metric_label(m, difference=True).unit
        spans[unit] = max(spans.get(unit, 0.0), float(np.nanmax(np.abs(stats[m]))) * 1.35 or 1.0)
    for ax, m in zip(axs.flat, metrics):
        est, lo, hi = stats[m].T
        better = HEADLINE.get(m, 0)
        clear = (lo > 0) | (hi < 0)  # the interval excludes no difference
        colors = ["grey" if not c or not better else "tab:blue" if better * e > 0 else "tab:red"
                  for e, c in zip(est, clear)]
        ax.hlines(rows, lo, hi, color=colors, lw=1.6)
        ax.scatter(est, rows, color=colors, s=22, zorder=3)
        label = metric_label(m, difference=True)
        beside = blended_transform_factory(ax.transAxes, ax.transData)  # the values in a column right of the panel
        for r, e in zip(rows, est):
            ax.text(1.02, r, f"{e:+.1f}" if label.unit == "pp" else f"{e:+.2f}", transform=beside, va="center",
                    fontsize=7)
        ax.axvline(0.0, **ZERO_LINE)
        ax.set_xlim(-spans[label.unit], spans[label.unit])
        ax.set_title(label.name, fontsize=8.5)
        ax.set_xlabel(f"difference ({label.unit})", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in axs[:, 0]:
        ax.set_yticks(rows, names, fontsize=FOREST_SIZE)
    fig.suptitle(title, fontsize=TITLE_SIZE)
    return fig


# ----------------------------------------------------------------------------- survival
def _along(ds: xr.Dataset) -> str:
    """The axis whose values are drawn as curves: ``strategy``, else the first that varies."""
    axes = sweep_axes(ds)
    return STRATEGY_AXIS if STRATEGY_AXIS in axes else next((d for d in axes if ds.sizes[d] > 1), axes[0])


def survival(ds: xr.Dataset, along: str | None = None) -> plt.Figure:
    """Survival differences from the reference over time, with the curves themselves below.

    Top: mean paired difference in Kaplan-Meier OS and PFS (each grid point minus
    the reference, trial by trial on the same patients) with its Monte Carlo band.
    Bottom, smaller: the mean Kaplan-Meier curves. Curves run along one axis (at
    most :data:`MAX_CURVES` values), the other axes held at the reference.
    """
    along = along or _along(ds)
    ref = reference_index(ds)
    held = {d: i for d, i in ref.items() if d != along}
    values = [i for i in range(ds.sizes[along]) if i != ref[along]][:MAX_CURVES - 1]
    key = _keys(ds)[along]
    name = "" if key == STRATEGY_AXIS else f"{axis_label(key).name}: "
    labels = {i: f"{name}{_value_text(ds, along, i, True)}" for i in [*values, ref[along]]}
    mc_title, km_title = "line: mean difference\nband: 95% Monte Carlo CI", "mean Kaplan-Meier curves"
    legend = text_width("\n".join([*labels.values(), mc_title, km_title]), LEGEND_SIZE) + 0.8  # inches, with handles
    width, gap = 5.6, 1.0  # inches; the gap holds the right panel's tick labels and y label
    others = f"; held at {_point_text(ds, held)}" if held else ""
    title = wrap(f"Survival against the reference over time, same virtual patients{others}\n{mc_note(ds)}",
                 1.0 + legend + len(CURVES) * (width + gap) - gap - MARGIN, TITLE_SIZE)
    fig, axs = panel_grid(2, len(CURVES), width, (3.4, 1.5), left=1.0, right=legend, top=0.5 + LINE * (
        title.count("\n") + 1), bottom=0.6, wspace=gap, hspace=0.35, sharex=True)
    months = ds.month.values
    palette = plt.get_cmap("viridis" if np.issubdtype(ds[along].dtype, np.number) else "tab10")
    colors = {i: palette(VIRIDIS_END * k / max(len(values) - 1, 1)) if palette.name == "viridis"
              else palette(k % 10) for k, i in enumerate(values)}
    for col, (variable, (_, curve)) in enumerate(CURVES.items()):
        curves = ds[variable].isel(held).transpose(along, "replicate", "month").values.astype(float) * 100
        top, bottom = axs[0, col], axs[1, col]
        top.axhline(0.0, **ZERO_LINE)
        for i in values:
            est, lo, hi, _ = mc_summary(curves[i] - curves[ref[along]], axis=0)
            top.fill_between(months, lo, hi, color=colors[i], alpha=0.25, step="post", lw=0)
            top.step(months, est, where="post", color=colors[i], lw=1.6, label=labels[i])
            bottom.step(months, np.nanmean(curves[i], axis=0), where="post", color=colors[i], lw=1.1)
        bottom.step(months, np.nanmean(curves[ref[along]], axis=0), where="post", color=REFERENCE_COLOR, lw=1.6,
                    label=f"reference: {labels[ref[along]]}")
        top.set_title(f"{curve[:1].upper() + curve[1:]}: difference from the reference", fontsize=10)
        top.set_ylabel("difference in survival (pp)")
        top.grid(alpha=0.3)
        bottom.set_ylabel(f"{curve} (%)", fontsize=8)
        bottom.set_ylim(0, 100)
        bottom.set_xlabel("months from the first dose")
        bottom.grid(alpha=0.3)
        bottom.set_xlim(months[0], months[-1])
    for row, legend_title in ((0, mc_title), (1, km_title)):  # right of the panels, off the curves
        corner = axs[row, -1].get_position()
        fig.legend(*axs[row, 0].get_legend_handles_labels(), loc="upper left", fontsize=LEGEND_SIZE,
                   bbox_to_anchor=(corner.x1 + 0.15 / fig.get_figwidth(), corner.y1), title=legend_title,
                   title_fontsize=LEGEND_SIZE, alignment="left")
    fig.suptitle(title, fontsize=TITLE_SIZE)
    return fig


# ----------------------------------------------------------------------------- all
def plot_all(ds: xr.Dataset, out_dir: str | Path, metrics: tuple[str, ...] = HEADLINE_METRICS,
             x: str | None = None, y: str | None = None, fmt: str = DEFAULT_FORMAT) -> list[Path]:
    """Every figure that suits the results: heatmaps, a forest plot, survival differences.

    Heatmaps (``heatmap_<metric>``) when two or more axes vary; a forest plot
    (``forest``) when at most :data:`FOREST_MAX` grid points differ from the
    reference; the survival figure (``survival``) always.

    Returns
    -------
    list of Path
        The files written, in ``fmt`` (png, svg or pdf).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    diffs = paired_differences(ds)
    paths = []
    if sum(ds.sizes[d] > 1 for d in sweep_axes(ds)) >= 2:
        paths += [save(heatmap(ds, m, x, y, diffs), out_dir, f"heatmap_{m}", fmt) for m in metrics]
    if len(_non_reference_points(ds)) <= FOREST_MAX:
        paths.append(save(forest(ds, metrics, diffs), out_dir, "forest", fmt))
    paths.append(save(survival(ds), out_dir, "survival", fmt))
    return paths
