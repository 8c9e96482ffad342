"""Figures of a sweep: heatmaps over two axes, Kaplan-Meier curves, a forest plot.

Every figure is written as PNG and SVG, with a title, units and Monte Carlo
intervals; all read the results Dataset of :func:`simulator.experiment.run_sweep`.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from simulator.compare import HEADLINE_METRICS, paired_differences, reference_index  # noqa: E402
from simulator.experiment import sweep_axes  # noqa: E402
from simulator.trial_metrics import CURVES, FRACTION_UNIT, mc_summary  # noqa: E402

FORMATS = ("png", "svg")
DPI = 120
MAX_CURVES = 10
FOREST_COLUMNS = 4
TRIAL_RANGE = (2.5, 97.5)  # percentiles of single trials' curves shown as a light band


def _save(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    paths = []
    for ext in FORMATS:
        path = out_dir / f"{stem}.{ext}"
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _scale(unit: str) -> tuple[float, str]:
    """Factor and label to show a metric: fractions as %."""
    return (100.0, "%") if unit == FRACTION_UNIT else (1.0, unit)


def _sizes_note(ds: xr.Dataset) -> str:
    return (f"{ds.attrs['replicates']} replicates x {ds.attrs['patients_per_replicate']} patients, "
            f"{ds.attrs['confidence']:.0%} Monte Carlo CI")


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
    factor, unit = _scale(str(row.unit.values))
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
                 f"{ds.attrs['experiment_name']}; {_sizes_note(ds)}" + (f"; {others}" if others else ""),
                 fontsize=10)
    return _save(fig, out_dir, f"heatmap_{metric}")


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
                 f"light band: middle 95% of single trials)\n{_sizes_note(ds)}"
                 + (f"; {others}" if others else ""), fontsize=10)
    return _save(fig, out_dir, "km_os_pfs")


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
        factor, unit = _scale(str(r.unit.values))
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
                 f"{_sizes_note(ds)}", fontsize=10)
    return _save(fig, out_dir, "forest")


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


# ----------------------------------------------------------------------------- sensitivity analysis (issue 5)
TORNADO_TOP = 15  # parameters shown in a tornado diagram
PLOT_TIME = 24.0  # months: the time point shown for survival read at several (the nearest one)
SENSITIVITY_COLORS = ("tab:blue", "tab:orange")  # low / S1, high / ST


def _sensitivity_output(ds: xr.Dataset, output: str) -> dict:
    """The output's entry in ``attrs['outputs']`` (name, label, units, strategy, minus)."""
    outputs = {o["name"]: o for o in json.loads(ds.attrs["outputs"])}
    if output not in outputs:
        raise KeyError(f"no output '{output}' (outputs: {', '.join(outputs)})")
    return outputs[output]


def _at_time(da: xr.DataArray, time: float | None) -> tuple[xr.DataArray, str]:
    """The array at the time point nearest ``time`` (default :data:`PLOT_TIME`), and a title suffix."""
    if "time" not in da.dims:
        return da, ""
    da = da.sel(time=PLOT_TIME if time is None else time, method="nearest")
    return da, f" at {float(da.time):g} months"


def _sensitivity_note(ds: xr.Dataset) -> str:
    if "replicates" not in ds.attrs:
        return ds.attrs["method"]
    return (f"{ds.attrs.get('scenario_name', '')}; {ds.attrs['replicates']} replicates x "
            f"{ds.attrs['patients_per_replicate']} patients per parameter set, same patients in every set")


def tornado(ds: xr.Dataset, output: str, out_dir: Path, time: float | None = None, top: int = TORNADO_TOP
            ) -> list[Path]:
    """Tornado diagram of a one-way result: the figure at each end of every parameter's range.

    Bars run from the baseline to the figure at the low (blue) and high (orange) end,
    largest swing on top; whiskers are the 95% Monte Carlo CIs of the paired changes.
    """
    o = _sensitivity_output(ds, output)
    factor, unit = _scale(o["units"])
    change, when = _at_time(ds[f"{output}_change"], time)
    base = float(_at_time(ds[f"{output}_baseline"], time)[0].sel(statistic="estimate")) * factor
    ends = [change.isel(point=0), change.isel(point=-1)]
    swing = np.abs((ends[1] - ends[0]).sel(statistic="estimate").values)
    order = np.argsort(-swing)[:top][::-1]
    fig, ax = plt.subplots(figsize=(8.5, 1.4 + 0.42 * len(order)), constrained_layout=True)
    rows = np.arange(len(order))
    for end, color, label in zip(ends, SENSITIVITY_COLORS, ("low end of the range", "high end of the range")):
        est, lo, hi = (end.sel(statistic=s).values[order] * factor for s in ("estimate", "lower", "upper"))
        ax.barh(rows, est, left=base, color=color, alpha=0.8, height=0.6, label=label)
        ax.errorbar(base + est, rows, xerr=np.abs(np.stack([lo, hi]) - est), fmt="none", ecolor="black",
                    elinewidth=0.8, capsize=2)
    ax.axvline(base, color="black", lw=0.9)
    names = [f"{ds.parameter.values[j]}\n({float(ds.low[j]):.3g} to {float(ds.high[j]):.3g})" for j in order]
    ax.set_yticks(rows, names, fontsize=7.5)
    ax.set_xlabel(f"{o['label']}{when} ({unit})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"One-way sensitivity: {o['label']}{when}\nbaseline {base:.2f} {unit}; whiskers: 95% Monte "
                 f"Carlo CI of the paired change; {_sensitivity_note(ds)}", fontsize=9)
    return _save(fig, out_dir, f"tornado_{output}")


def sobol_indices(ds: xr.Dataset, output: str, out_dir: Path, time: float | None = None) -> list[Path]:
    """Sobol first- and total-order indices with their bootstrap CIs, and their convergence with n.

    Left: S1 and ST per parameter (sorted by ST). Middle: ST against the number of
    base samples (the convergence check). Right, for survival read at several time
    points: ST over time.
    """
    o = _sensitivity_output(ds, output)
    idx, when = _at_time(ds[output], time)
    conv = _at_time(ds[f"{output}_convergence"], time)[0]
    order = np.argsort(-np.nan_to_num(idx.sel(index="ST").values, nan=-np.inf))[::-1]
    timed = "time" in ds[output].dims
    fig, axs = plt.subplots(1, 3 if timed else 2, figsize=(13.5 if timed else 10.0, 1.6 + 0.4 * len(order)),
                            constrained_layout=True)
    rows = np.arange(len(order))
    for shift, key, color in zip((0.2, -0.2), ("S1", "ST"), SENSITIVITY_COLORS):
        axs[0].barh(rows + shift, idx.sel(index=key).values[order], xerr=idx.sel(index=f"{key}_conf").values[order],
                    height=0.38, color=color, alpha=0.85, ecolor="black", capsize=2,
                    label="first order S1" if key == "S1" else "total order ST")
    axs[0].set_yticks(rows, ds.parameter.values[order], fontsize=7.5)
    axs[0].axvline(0.0, color="grey", lw=0.8)
    axs[0].set_xlabel("Sobol index (share of the figure's variance)")
    axs[0].legend(fontsize=8, loc="lower right")
    axs[0].grid(axis="x", alpha=0.3)
    sizes = ds.base_samples.values
    colors = plt.get_cmap("tab10")
    for rank, j in enumerate(order[::-1][:MAX_CURVES]):
        st = conv.isel(parameter=j)
        axs[1].errorbar(sizes, st.sel(index="ST").values, yerr=st.sel(index="ST_conf").values, marker="o", ms=3,
                        capsize=2, color=colors(rank % 10), label=str(ds.parameter.values[j]))
    axs[1].set_xscale("log", base=2)
    axs[1].set_xlabel("base samples n (model runs: (k + 2) n)")
    axs[1].set_ylabel("total-order index ST")
    axs[1].set_title("convergence", fontsize=9)
    axs[1].grid(alpha=0.3)
    axs[1].legend(fontsize=7)
    if timed:
        for rank, j in enumerate(order[::-1][:MAX_CURVES]):
            st = ds[output].isel(parameter=j)
            axs[2].plot(ds.time.values, st.sel(index="ST").values, marker="o", ms=3, color=colors(rank % 10))
        axs[2].set_xlabel("months from the first dose")
        axs[2].set_ylabel("total-order index ST")
        axs[2].set_title("over time", fontsize=9)
        axs[2].grid(alpha=0.3)
    fig.suptitle(f"Sobol indices: {o['label']}{when} (bars: 95% bootstrap CI; n = {ds.attrs['n']})\n"
                 f"{_sensitivity_note(ds)}", fontsize=9)
    return _save(fig, out_dir, f"sobol_{output}")


def morris_screen(ds: xr.Dataset, output: str, out_dir: Path, time: float | None = None) -> list[Path]:
    """Morris screen: mu* (mean absolute elementary effect, with its CI) against sigma, per parameter."""
    o = _sensitivity_output(ds, output)
    factor, unit = _scale(o["units"])
    idx, when = _at_time(ds[output], time)
    mu_star, conf, sigma = (idx.sel(index=k).values * factor for k in ("mu_star", "mu_star_conf", "sigma"))
    fig, ax = plt.subplots(figsize=(7.5, 5.0), constrained_layout=True)
    ax.errorbar(mu_star, sigma, xerr=conf, fmt="o", ms=4, capsize=2)
    for name, x, y in zip(ds.parameter.values, mu_star, sigma):
        ax.annotate(str(name), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"mu* ({unit} per whole range of the parameter)")
    ax.set_ylabel(f"sigma ({unit}): non-linearity and interactions")
    ax.grid(alpha=0.3)
    ax.set_title(f"Morris screen: {o['label']}{when}\n{ds.attrs['n']} trajectories; {_sensitivity_note(ds)}",
                 fontsize=9)
    return _save(fig, out_dir, f"morris_{output}")


def psa_scatter(ds: xr.Dataset, output: str, out_dir: Path, time: float | None = None,
                against: str | None = None) -> list[Path]:
    """PSA: the figure under each draw against its most influential parameter, and its distribution.

    Left: one point per draw (whiskers: Monte Carlo CI) against ``against`` (default:
    the parameter with the largest rank correlation). Right: histogram over draws,
    with the probability that the figure is above 0: for a strategy difference, the
    probability that the first strategy gives the larger figure.
    """
    o = _sensitivity_output(ds, output)
    factor, unit = _scale(o["units"])
    draws, when = _at_time(ds[output], time)
    summary = _at_time(ds[f"{output}_summary"], time)[0]
    rho = _at_time(ds[f"{output}_rank_correlation"], time)[0]
    against = against or str(rho.parameter.values[int(np.nanargmax(np.abs(rho.values)))])
    est, lo, hi = (draws.sel(statistic=s).values * factor for s in ("estimate", "lower", "upper"))
    x = ds["inputs"].sel(parameter=against).values
    fig, axs = plt.subplots(1, 2, figsize=(12.0, 4.6), constrained_layout=True)
    axs[0].errorbar(x, est, yerr=np.abs(np.stack([lo, hi]) - est), fmt="o", ms=3, alpha=0.7, ecolor="lightgrey",
                    elinewidth=0.8)
    axs[0].axhline(0.0, color="grey", lw=0.8)
    axs[0].set_xlabel(f"{against} (rank correlation {float(rho.sel(parameter=against)):+.2f})")
    axs[0].set_ylabel(f"{o['label']}{when} ({unit})")
    axs[0].grid(alpha=0.3)
    axs[1].hist(est, bins="auto", color=SENSITIVITY_COLORS[0], alpha=0.8)
    axs[1].axvline(0.0, color="black", lw=0.9)
    axs[1].set_xlabel(f"{o['label']}{when} ({unit})")
    axs[1].set_ylabel("draws")
    p = {k: float(summary.sel(summary=k)) for k in summary.summary.values}
    event = f"{o['strategy']} - {o['minus']} > 0" if o["minus"] else "figure > 0"
    axs[1].set_title(f"P({event}) = {p['prob_positive']:.3f}\n95% CI over draws {p['prob_positive_lower']:.3f}-"
                     f"{p['prob_positive_upper']:.3f}; Monte Carlo range {p['prob_positive_mc_low']:.3f}-"
                     f"{p['prob_positive_mc_high']:.3f}", fontsize=9)
    fig.suptitle(f"Probabilistic sensitivity analysis over {ds.sizes['draw']} draws of the calibrated ensemble: "
                 f"{o['label']}{when}\n{_sensitivity_note(ds)}", fontsize=9)
    return _save(fig, out_dir, f"psa_{output}")


def plot_sensitivity(ds: xr.Dataset, out_dir: str | Path) -> list[Path]:
    """Every figure of a sensitivity result, one per output (PNG and SVG).

    One-way: tornado; Sobol: indices and convergence; Morris: mu*-sigma screen; PSA:
    scatter and distribution. Survival read at several time points is shown at the
    one nearest :data:`PLOT_TIME` (the Sobol figure also over time).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    draw = {"one_way": tornado, "sobol": sobol_indices, "morris": morris_screen, "psa": psa_scatter}
    paths = []
    for o in json.loads(ds.attrs["outputs"]):
        paths += draw[ds.attrs["method"]](ds, o["name"], out_dir)
    return paths
