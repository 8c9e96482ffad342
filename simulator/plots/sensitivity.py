"""Figures of a sensitivity analysis: tornado, Sobol, Morris and PSA.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from simulator.analysis.labels import parameter_label, strategy_title  # noqa: E402
from simulator.plots.common import DEFAULT_FORMAT, ZERO_LINE, save  # noqa: E402
from simulator.sensitivity.report import output_unit  # noqa: E402

TORNADO_TOP = 15  # parameters shown in a tornado diagram
PLOT_TIME = 24.0  # months: the time point shown for survival read at several (the nearest one)
SENSITIVITY_COLORS = ("tab:blue", "tab:orange")  # low / S1, high / ST
MAX_CURVES = 10  # parameters drawn in a convergence or time-course panel
PSA_SPAGHETTI = 60  # draws drawn as thin lines in the PSA time-course figure
STEMS = {"one_way": "tornado", "sobol": "sobol", "morris": "morris", "psa": "psa"}  # file names by method


def _sensitivity_output(ds: xr.Dataset, output: str) -> dict:
    """The output's entry in ``attrs['outputs']`` (name, label, units, strategy, minus)."""
    outputs = {o["name"]: o for o in json.loads(ds.attrs["outputs"])}
    if output not in outputs:
        raise KeyError(f"no output '{output}' (outputs: {', '.join(outputs)})")
    return outputs[output]


def _title(ds: xr.Dataset, o: dict) -> str:
    """The output in words: ``Overall survival (KM): Two cycles, then stop minus Label dosing``."""
    metric = o["label"].split(": ")[0] if o["minus"] else o["label"]
    metric = metric[:1].upper() + metric[1:]

    def name(strategy: str) -> str:
        return strategy_title(ds.attrs.get("scenario_name", strategy) if strategy == "base" else strategy)

    if o["minus"]:
        return f"{metric}: {name(o['strategy'])} minus {name(o['minus'])}"
    return metric if o["strategy"] == "base" else f"{metric} ({name(o['strategy'])})"


def _parameter_text(ds: xr.Dataset, j: int, with_range: bool = True) -> str:
    """A parameter's display name, unit and (one-way) range: two short lines."""
    label = parameter_label(str(ds.parameter.values[j]))
    if not with_range or "low" not in ds.coords:
        return label.text()
    unit = f" {label.unit}" if label.unit else ""
    return f"{label.name}\n{float(ds.low[j]):.3g} to {float(ds.high[j]):.3g}{unit}"


def _at_time(da: xr.DataArray, time: float | None) -> tuple[xr.DataArray, str]:
    """The array at the time point nearest ``time`` (default :data:`PLOT_TIME`), and a title suffix."""
    if "time" not in da.dims:
        return da, ""
    da = da.sel(time=PLOT_TIME if time is None else time, method="nearest")
    return da, f" at {float(da.time):g} months"


def _sensitivity_note(ds: xr.Dataset) -> str:
    if "replicates" not in ds.attrs:
        return ds.attrs["method"]
    return (f"{strategy_title(ds.attrs.get('scenario_name', ''))}; {ds.attrs['replicates']} replicates x "
            f"{ds.attrs['patients_per_replicate']} patients per parameter set, same patients in every set")


def tornado(ds: xr.Dataset, output: str, time: float | None = None, top: int = TORNADO_TOP) -> plt.Figure:
    """Tornado diagram of a one-way result: the figure at each end of every parameter's range.

    Bars run from the baseline to the figure at the low (blue) and high (orange) end,
    largest swing on top; whiskers are the 95% Monte Carlo CIs of the paired changes.
    A solid line marks the baseline and, for a difference between strategies, a
    dashed one marks no difference (zero).
    """
    o = _sensitivity_output(ds, output)
    factor, unit = output_unit(o)
    change, when = _at_time(ds[f"{output}_change"], time)
    base = float(_at_time(ds[f"{output}_baseline"], time)[0].sel(statistic="estimate")) * factor
    ends = [change.isel(point=0), change.isel(point=-1)]
    swing = np.abs((ends[1] - ends[0]).sel(statistic="estimate").values)
    order = np.argsort(-swing)[:top][::-1]
    fig, ax = plt.subplots(figsize=(9.0, 1.6 + 0.46 * len(order)), constrained_layout=True)
    rows = np.arange(len(order))
    for end, color, label in zip(ends, SENSITIVITY_COLORS, ("low end of the range", "high end of the range")):
        est, lo, hi = (end.sel(statistic=s).values[order] * factor for s in ("estimate", "lower", "upper"))
        ax.barh(rows, est, left=base, color=color, alpha=0.8, height=0.6, label=label)
        ax.errorbar(base + est, rows, xerr=np.abs(np.stack([lo, hi]) - est), fmt="none", ecolor="black",
                    elinewidth=0.8, capsize=2)
    ax.axvline(base, color="black", lw=1.2, label=f"baseline {base:+.2f} {unit}" if o["minus"]
               else f"baseline {base:.3g} {unit}")
    if o["minus"]:
        ax.axvline(0.0, color="grey", lw=1.0, ls="--", label="no difference between the strategies")
    ax.set_yticks(rows, [_parameter_text(ds, j) for j in order], fontsize=7.5)
    ax.set_xlabel(f"{_title(ds, o)}{when} ({unit})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2,
              title="whiskers: 95% Monte Carlo CI of the paired change", title_fontsize=7.5)
    ax.set_title(f"Which assumptions move it most? One parameter at a time over its range\n{_title(ds, o)}{when}\n"
                 f"{_sensitivity_note(ds)}", fontsize=9)
    return fig


def sobol_indices(ds: xr.Dataset, output: str, time: float | None = None) -> plt.Figure:
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
    axs[0].set_yticks(rows, [_parameter_text(ds, j, with_range=False) for j in order], fontsize=7.5)
    axs[0].axvline(0.0, color="grey", lw=0.8)
    axs[0].set_xlabel("Sobol index (share of the figure's variance)")
    axs[0].legend(fontsize=8, loc="lower right")
    axs[0].grid(axis="x", alpha=0.3)
    sizes = ds.base_samples.values
    colors = plt.get_cmap("tab10")
    for rank, j in enumerate(order[::-1][:MAX_CURVES]):
        st = conv.isel(parameter=j)
        axs[1].errorbar(sizes, st.sel(index="ST").values, yerr=st.sel(index="ST_conf").values, marker="o", ms=3,
                        capsize=2, color=colors(rank % 10), label=_parameter_text(ds, j, with_range=False))
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
    fig.suptitle(f"Sobol indices: {_title(ds, o)}{when} (bars: 95% bootstrap CI; n = {ds.attrs['n']})\n"
                 f"{_sensitivity_note(ds)}", fontsize=9)
    return fig


def morris_screen(ds: xr.Dataset, output: str, time: float | None = None) -> plt.Figure:
    """Morris screen: mu* (mean absolute elementary effect, with its CI) against sigma, per parameter."""
    o = _sensitivity_output(ds, output)
    factor, unit = output_unit(o)
    idx, when = _at_time(ds[output], time)
    mu_star, conf, sigma = (idx.sel(index=k).values * factor for k in ("mu_star", "mu_star_conf", "sigma"))
    fig, ax = plt.subplots(figsize=(7.5, 5.0), constrained_layout=True)
    ax.errorbar(mu_star, sigma, xerr=conf, fmt="o", ms=4, capsize=2)
    for j, (x, y) in enumerate(zip(mu_star, sigma)):
        ax.annotate(_parameter_text(ds, j, with_range=False), (x, y), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel(f"mu* ({unit} per whole range of the parameter)")
    ax.set_ylabel(f"sigma ({unit}): non-linearity and interactions")
    ax.grid(alpha=0.3)
    ax.set_title(f"Morris screen: {_title(ds, o)}{when}\n{ds.attrs['n']} trajectories; {_sensitivity_note(ds)}",
                 fontsize=9)
    return fig


def psa_scatter(ds: xr.Dataset, output: str, time: float | None = None, against: str | None = None
                ) -> plt.Figure:
    """PSA: the figure under each draw against its most influential parameter, and its distribution.

    Left: one point per draw (whiskers: Monte Carlo CI) against ``against`` (default:
    the parameter with the largest rank correlation). Right: histogram over draws,
    with the probability that the figure is above 0: for a strategy difference, the
    probability that the first strategy gives the larger figure.
    """
    o = _sensitivity_output(ds, output)
    factor, unit = output_unit(o)
    draws, when = _at_time(ds[output], time)
    summary = _at_time(ds[f"{output}_summary"], time)[0]
    rho = _at_time(ds[f"{output}_rank_correlation"], time)[0]
    against = against or str(rho.parameter.values[int(np.nanargmax(np.abs(rho.values)))])
    est, lo, hi = (draws.sel(statistic=s).values * factor for s in ("estimate", "lower", "upper"))
    x = ds["inputs"].sel(parameter=against).values
    title = f"{_title(ds, o)}{when}"
    fig, axs = plt.subplots(1, 2, figsize=(12.0, 4.6), constrained_layout=True)
    axs[0].errorbar(x, est, yerr=np.abs(np.stack([lo, hi]) - est), fmt="o", ms=3, alpha=0.7, ecolor="lightgrey",
                    elinewidth=0.8, label="one draw; whisker: its 95% Monte Carlo CI")
    axs[0].axhline(0.0, **ZERO_LINE)
    axs[0].set_xlabel(f"{parameter_label(against).text()}; rank correlation {float(rho.sel(parameter=against)):+.2f}")
    axs[0].set_ylabel(f"{title} ({unit})")
    axs[0].grid(alpha=0.3)
    axs[0].legend(fontsize=7.5)
    axs[1].hist(est, bins="auto", color=SENSITIVITY_COLORS[0], alpha=0.8)
    axs[1].axvline(0.0, color="black", lw=0.9)
    axs[1].set_xlabel(f"{title} ({unit})")
    axs[1].set_ylabel("draws of the calibrated ensemble")
    p = {k: float(summary.sel(summary=k)) for k in summary.summary.values}
    event = "difference > 0" if o["minus"] else "figure > 0"
    axs[1].set_title(f"P({event}) = {p['prob_positive']:.3f}; 95% CI over draws (parameter uncertainty) "
                     f"{p['prob_positive_lower']:.3f}-{p['prob_positive_upper']:.3f}\nMonte Carlo range "
                     f"{p['prob_positive_mc_low']:.3f}-{p['prob_positive_mc_high']:.3f}", fontsize=8.5)
    fig.suptitle(f"Probabilistic sensitivity analysis over {ds.sizes['draw']} draws of the calibrated ensemble\n"
                 f"{title}\n{_sensitivity_note(ds)}", fontsize=9)
    return fig


def psa_time_course(ds: xr.Dataset, output: str) -> plt.Figure:
    """PSA of a survival curve: the figure over time under the ensemble's draws, and P(> 0) over time.

    Top: the median over draws with the band holding 95% of draws (parameter
    uncertainty), thin lines for single draws. Bottom: the probability over draws
    that the figure is above 0, with its 95% CI over draws.
    """
    o = _sensitivity_output(ds, output)
    factor, unit = output_unit(o)
    times = ds.time.values
    draws = ds[output].sel(statistic="estimate").transpose("draw", "time").values * factor
    summary = ds[f"{output}_summary"]
    q = {k: summary.sel(summary=k).values for k in map(str, summary.summary.values)}
    fig, axs = plt.subplots(2, 1, figsize=(9.0, 6.6), sharex=True, gridspec_kw={"height_ratios": (2, 1)},
                            constrained_layout=True)
    step = max(1, len(draws) // PSA_SPAGHETTI)
    for k, row in enumerate(draws[::step]):
        axs[0].plot(times, row, color="grey", lw=0.5, alpha=0.35, label="single draws" if k == 0 else None)
    axs[0].fill_between(times, q["q025"] * factor, q["q975"] * factor, color=SENSITIVITY_COLORS[0], alpha=0.25,
                        label="95% of draws (parameter uncertainty)")
    axs[0].plot(times, q["median"] * factor, color=SENSITIVITY_COLORS[0], lw=2, marker="o", ms=4,
                label="median over draws")
    axs[0].axhline(0.0, **ZERO_LINE)
    axs[0].set_ylabel(f"difference ({unit})" if o["minus"] else unit)
    axs[0].grid(alpha=0.3)
    axs[0].legend(fontsize=7.5)
    axs[1].fill_between(times, q["prob_positive_lower"], q["prob_positive_upper"], color=SENSITIVITY_COLORS[1],
                        alpha=0.25, label="95% CI over draws")
    axs[1].plot(times, q["prob_positive"], color=SENSITIVITY_COLORS[1], lw=2, marker="o", ms=4,
                label="share of draws above 0")
    axs[1].axhline(0.5, color="grey", lw=0.8, ls="--")
    axs[1].set_ylim(0, 1)
    axs[1].set_ylabel("P(difference > 0)" if o["minus"] else "P(figure > 0)")
    axs[1].set_xlabel("months from the first dose")
    axs[1].grid(alpha=0.3)
    axs[1].legend(fontsize=7.5)
    fig.suptitle(f"How the answer changes over time under {ds.sizes['draw']} draws of the calibrated ensemble\n"
                 f"{_title(ds, o)}\n{_sensitivity_note(ds)}", fontsize=9)
    return fig


def plot_sensitivity(ds: xr.Dataset, out_dir: str | Path, fmt: str = DEFAULT_FORMAT) -> list[Path]:
    """Every figure of a sensitivity result, one per output (``fmt``: png, svg or pdf).

    One-way: tornado; Sobol: indices and convergence; Morris: mu*-sigma screen; PSA:
    scatter and distribution, or for a survival curve its time course. Other
    survival curves are shown at the time point nearest :data:`PLOT_TIME` (the
    Sobol figure also over time).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    method = ds.attrs["method"]
    draw = {"one_way": tornado, "sobol": sobol_indices, "morris": morris_screen, "psa": psa_scatter}[method]
    paths = []
    for o in json.loads(ds.attrs["outputs"]):
        timed = "time" in ds[o["name"]].dims
        fig = psa_time_course(ds, o["name"]) if method == "psa" and timed else draw(ds, o["name"])
        paths.append(save(fig, out_dir, f"{STEMS[method]}_{o['name']}", fmt))
    return paths
