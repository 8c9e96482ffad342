"""Figures of a sensitivity analysis: tornado, Sobol, Morris and PSA.

A difference between strategies is read in the better direction for patients: its
P(better) is the share of draws in which the first strategy is better (lower NRM,
higher survival), the direction each metric's definition gives (``Metric.better``).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from simulator.analysis.labels import parameter_label, strategy_title
from simulator.analysis.outcomes import clopper_pearson
from simulator.analysis.trial_metrics import CURVES, TRIAL_METRICS
from simulator.plots.common import (
    DEFAULT_FORMAT,
    LEGEND_SIZE,
    LINE,
    TITLE_SIZE,
    ZERO_LINE,
    panel_grid,
    save,
    text_width,
    wrap,
)
from simulator.sensitivity.report import output_unit

TORNADO_TOP = 15  # parameters shown in a tornado diagram
PLOT_TIME = 24.0  # months: the time point shown for survival read at several (the nearest one)
SENSITIVITY_COLORS = ("tab:blue", "tab:orange")  # low / S1, high / ST
MAX_CURVES = 10  # parameters drawn in a convergence or time-course panel
PSA_SPAGHETTI = 60  # draws drawn as thin lines in the PSA time-course figure
STEMS = {"one_way": "tornado", "sobol": "sobol", "morris": "morris", "psa": "psa"}  # file names by method
MORRIS_NAMED = 10  # parameters named in a Morris screen (largest mu* first)
LABEL_SIZE = 7.5  # points: parameter names
# metric ids by label (results record an output's label, not its metric); survival curves are better higher
METRIC_BY_LABEL = {m.label: m for m in TRIAL_METRICS}
SURVIVAL_LABELS = {f"{title} (KM)" for _, title in CURVES.values()}


def _sensitivity_output(ds: xr.Dataset, output: str) -> dict:
    """The output's entry in ``attrs['outputs']`` (name, label, units, strategy, minus)."""
    outputs = {o["name"]: o for o in json.loads(ds.attrs["outputs"])}
    if output not in outputs:
        raise KeyError(f"no output '{output}' (outputs: {', '.join(outputs)})")
    return outputs[output]


def _metric_label(o: dict) -> str:
    """The label of the output's metric, without the strategies of a difference."""
    return o["label"].rsplit(": ", 1)[0] if o["minus"] else o["label"]


def _metric(o: dict) -> str:
    """The output's metric, capitalised: ``Overall survival (KM)``."""
    metric = _metric_label(o)
    return metric[:1].upper() + metric[1:]


def _strategy(ds: xr.Dataset, strategy: str) -> str:
    return strategy_title(ds.attrs.get("scenario_name", strategy) if strategy == "base" else strategy)


def _title(ds: xr.Dataset, o: dict) -> str:
    """The output in words: ``Overall survival (KM): Two cycles, then stop minus Label dosing``."""
    if o["minus"]:
        return f"{_metric(o)}: {_strategy(ds, o['strategy'])} minus {_strategy(ds, o['minus'])}"
    return _metric(o) if o["strategy"] == "base" else f"{_metric(o)} ({_strategy(ds, o['strategy'])})"


def _better(o: dict) -> float:
    """+1 where a higher figure is better for patients, -1 where lower is, 0 where no direction is known."""
    metric = _metric_label(o)
    if metric in SURVIVAL_LABELS:
        return 1.0
    better = METRIC_BY_LABEL[metric].better if metric in METRIC_BY_LABEL else ""
    return {"higher": 1.0, "lower": -1.0}.get(better, 0.0)


def _p_better(ds: xr.Dataset, o: dict, draws: xr.DataArray) -> tuple[str, str, np.ndarray]:
    """P(better) of a difference over the draws of a PSA, with its uncertainties.

    ``draws`` is the output over (draw, statistic), and time if not read at one.
    Returns the event's name ("P(better)", or "P(higher)" for a metric with no better
    direction), a sentence saying what it is, and rows (time, 5): the share of draws in
    which the first strategy is better, its Clopper-Pearson 95% CI over draws, and its
    Monte Carlo range (draws better beyond doubt; draws whose CI reaches the better side).
    """
    sign = _better(o) or 1.0
    est, lo, hi = (sign * draws.sel(statistic=k).transpose("draw", ...).values.reshape(draws.sizes["draw"], -1)
                   for k in ("estimate", "lower", "upper"))
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)  # the lower limit is the upper one once the sign is turned
    n = len(est)
    rows = []
    for t in range(est.shape[1]):
        better = int(np.sum(est[:, t] > 0))
        rows.append([better / n, *clopper_pearson(better, n), np.mean(lo[:, t] > 0), np.mean(hi[:, t] > 0)])
    first = _strategy(ds, o["strategy"])
    first = first[:1].lower() + first[1:]
    if not _better(o):
        return "P(higher)", f"P(higher): share of draws in which {first} gives the higher figure", np.array(rows)
    return ("P(better)", f"P(better): share of draws in which {first} is better "
            f"({'higher' if sign > 0 else 'lower'} is better)", np.array(rows))


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


def _tornado_panel(ax: plt.Axes, ds: xr.Dataset, o: dict, time: float | None, order: np.ndarray,
                   baseline: str = "baseline {base} {unit}") -> float:
    """One tornado: bars from the baseline to the figure at each end of every parameter's range.

    ``baseline`` labels the baseline's line. Returns the baseline, in display units.
    """
    factor, unit = output_unit(o)
    change = _at_time(ds[f"{o['name']}_change"], time)[0]
    base = float(_at_time(ds[f"{o['name']}_baseline"], time)[0].sel(statistic="estimate")) * factor
    rows = np.arange(len(order))
    for end, color, label in zip((change.isel(point=0), change.isel(point=-1)), SENSITIVITY_COLORS,
                                 ("low end of the range", "high end of the range")):
        est, lo, hi = (end.sel(statistic=s).values[order] * factor for s in ("estimate", "lower", "upper"))
        ax.barh(rows, est, left=base, color=color, alpha=0.8, height=0.6, label=label)
        ax.errorbar(base + est, rows, xerr=np.abs(np.stack([lo, hi]) - est), fmt="none", ecolor="black",
                    elinewidth=0.8, capsize=2)
    ax.axvline(base, color="black", lw=1.2,
               label=baseline.format(base=f"{base:+.2f}" if o["minus"] else f"{base:.3g}", unit=unit))
    if o["minus"]:
        ax.axvline(0.0, color="grey", lw=1.0, ls="--", label="no difference between the strategies")
    ax.grid(axis="x", alpha=0.3)
    return base


def _swing_order(change: xr.DataArray, top: int) -> np.ndarray:
    """The ``top`` parameters by their largest swing (low end to high end) at any time, largest last (on top)."""
    change = change.sel(statistic="estimate")
    swing = np.abs(change.isel(point=-1) - change.isel(point=0))
    swing = swing.max("time") if "time" in swing.dims else swing
    return np.argsort(-swing.values)[:top][::-1]


def tornado(ds: xr.Dataset, output: str, time: float | None = None, top: int = TORNADO_TOP) -> plt.Figure:
    """Tornado diagram of a one-way result: the figure at each end of every parameter's range.

    Bars run from the baseline to the figure at the low (blue) and high (orange) end,
    largest swing on top; whiskers are the 95% Monte Carlo CIs of the paired changes.
    A solid line marks the baseline and, for a difference between strategies, a
    dashed one marks no difference (zero).
    """
    o = _sensitivity_output(ds, output)
    _, unit = output_unit(o)
    change, when = _at_time(ds[f"{output}_change"], time)
    order = _swing_order(change, top)
    fig, ax = plt.subplots(figsize=(9.0, 1.6 + 0.46 * len(order)), constrained_layout=True)
    _tornado_panel(ax, ds, o, time, order)
    ax.set_yticks(np.arange(len(order)), [_parameter_text(ds, j) for j in order], fontsize=LABEL_SIZE)
    ax.set_xlabel(f"{_title(ds, o)}{when} ({unit})")
    ax.legend(fontsize=LEGEND_SIZE, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2,
              title="whiskers: 95% Monte Carlo CI of the paired change", title_fontsize=LEGEND_SIZE)
    ax.set_title(f"Which assumptions move it most? One parameter at a time over its range\n{_title(ds, o)}{when}\n"
                 f"{_sensitivity_note(ds)}", fontsize=TITLE_SIZE)
    return fig


def tornado_over_time(ds: xr.Dataset, output: str, top: int = TORNADO_TOP) -> plt.Figure:
    """Tornado diagrams of a survival curve, one per time point: when does each assumption matter?

    The parameters keep one order in every panel (largest swing at any time on top) and
    the panels one scale; bars and whiskers as in :func:`tornado`.
    """
    o = _sensitivity_output(ds, output)
    _, unit = output_unit(o)
    order = _swing_order(ds[f"{output}_change"], top)
    names = [_parameter_text(ds, j) for j in order]
    times = ds.time.values
    left, width = text_width("\n".join(names), LABEL_SIZE) + 0.3, 2.6
    title = wrap(f"When does each assumption matter? One parameter at a time over its range\n{_title(ds, o)}\n"
                 f"{_sensitivity_note(ds)}", left + len(times) * (width + 0.3) - 0.3, TITLE_SIZE)
    fig, axs = panel_grid(1, len(times), width, 0.46 * len(order) + 0.3, left=left, right=0.3,
                          top=0.55 + LINE * (title.count("\n") + 1), bottom=1.3, wspace=0.3, sharex=True,
                          sharey=True)
    for ax, t in zip(axs[0], times):
        base = _tornado_panel(ax, ds, o, float(t), order, "baseline: in each panel's title")
        ax.set_title(f"at {float(t):g} months (baseline {base:+.1f})" if o["minus"]
                     else f"at {float(t):g} months", fontsize=TITLE_SIZE)
        ax.set_xlabel(f"difference ({unit})" if o["minus"] else unit)
    axs[0, 0].set_yticks(np.arange(len(order)), names, fontsize=LABEL_SIZE)
    fig.legend(*axs[0, 0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=LEGEND_SIZE,
               title="whiskers: 95% Monte Carlo CI of the paired change", title_fontsize=LEGEND_SIZE)
    fig.suptitle(title, fontsize=TITLE_SIZE)
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
    fig.legend(*axs[1].get_legend_handles_labels(), loc="outside lower right", ncol=2, fontsize=LEGEND_SIZE,
               title="the parameters with the largest total-order index", title_fontsize=LEGEND_SIZE)
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
    """Morris screen: mu* (mean absolute elementary effect, with its CI) against sigma, per parameter.

    The :data:`MORRIS_NAMED` parameters with the largest mu* are named in a column
    beside the panel, in the order of their sigma, each joined to its point.
    """
    o = _sensitivity_output(ds, output)
    factor, unit = output_unit(o)
    idx, when = _at_time(ds[output], time)
    mu_star, conf, sigma = (idx.sel(index=k).values * factor for k in ("mu_star", "mu_star_conf", "sigma"))
    named = np.argsort(-np.nan_to_num(mu_star, nan=-np.inf))[:MORRIS_NAMED]
    named = named[np.argsort(np.nan_to_num(sigma[named]))]  # bottom to top, as their points lie
    names = [_parameter_text(ds, j, with_range=False) for j in named]
    fig, ax = plt.subplots(figsize=(6.0 + text_width("\n".join(names), LABEL_SIZE), 5.0), constrained_layout=True)
    ax.errorbar(mu_star, sigma, xerr=conf, fmt="o", ms=4, capsize=2)
    for k, (j, name) in enumerate(zip(named, names)):
        ax.annotate(name, (mu_star[j], sigma[j]), xytext=(1.03, (k + 0.5) / len(named)), textcoords="axes fraction",
                    va="center", fontsize=LABEL_SIZE, arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.6})
    ax.set_xlabel(f"mu* ({unit} per whole range of the parameter)")
    ax.set_ylabel(f"sigma ({unit}): non-linearity and interactions")
    ax.grid(alpha=0.3)
    ax.set_title(f"Morris screen: {_title(ds, o)}{when}\n{ds.attrs['n']} trajectories; {_sensitivity_note(ds)}\n"
                 f"named: the {len(named)} parameters with the largest mu*", fontsize=TITLE_SIZE)
    return fig


def psa_scatter(ds: xr.Dataset, output: str, time: float | None = None, against: str | None = None
                ) -> plt.Figure:
    """PSA: the figure under each draw against its most influential parameter, and its distribution.

    Left: one point per draw (whiskers: Monte Carlo CI) against ``against`` (default:
    the parameter with the largest rank correlation). Right: histogram over draws with
    its mean and 95% interval; for a difference between strategies, P(better): the
    share of draws in which the first strategy is better for patients.
    """
    o = _sensitivity_output(ds, output)
    factor, unit = output_unit(o)
    draws, when = _at_time(ds[output], time)
    summary = _at_time(ds[f"{output}_summary"], time)[0]
    rho = _at_time(ds[f"{output}_rank_correlation"], time)[0]
    against = against or str(rho.parameter.values[int(np.nanargmax(np.abs(rho.values)))])
    est, lo, hi = (draws.sel(statistic=s).values * factor for s in ("estimate", "lower", "upper"))
    x = ds["inputs"].sel(parameter=against).values
    axis = f"{_metric(o)}{when}\ndifference ({unit})" if o["minus"] else f"{_metric(o)}{when} ({unit})"
    fig, axs = plt.subplots(1, 2, figsize=(12.0, 4.6), constrained_layout=True)
    axs[0].errorbar(x, est, yerr=np.abs(np.stack([lo, hi]) - est), fmt="o", ms=3, alpha=0.7, ecolor="lightgrey",
                    elinewidth=0.8, label="one draw; whisker: its 95% Monte Carlo CI")
    axs[0].axhline(0.0, **ZERO_LINE)
    axs[0].set_xlabel(f"{parameter_label(against).text()}\nrank correlation {float(rho.sel(parameter=against)):+.2f}")
    axs[0].set_ylabel(axis)
    axs[0].grid(alpha=0.3)
    axs[0].legend(fontsize=LEGEND_SIZE)
    axs[1].hist(est, bins="auto", color=SENSITIVITY_COLORS[0], alpha=0.8)
    axs[1].axvline(0.0, color="black", lw=0.9)
    axs[1].set_xlabel(axis)
    axs[1].set_ylabel("draws of the calibrated ensemble")
    p = {k: float(summary.sel(summary=k)) * factor for k in ("mean", "q025", "q975")}
    spread = f"mean {p['mean']:+.2f} {unit}, 95% of draws in ({p['q025']:+.2f}, {p['q975']:+.2f}) {unit}"
    if o["minus"]:
        event, meaning, rows = _p_better(ds, o, draws)
        prob, prob_lo, prob_hi, mc_lo, mc_hi = rows[0]
        spread = (f"{event} = {prob:.2f} (95% CI over draws {prob_lo:.2f}-{prob_hi:.2f}; Monte Carlo range "
                  f"{mc_lo:.2f}-{mc_hi:.2f})\n{spread}\n{meaning}")
    axs[1].set_title(wrap(spread, 5.5, 8.5), fontsize=8.5)
    fig.suptitle(f"Probabilistic sensitivity analysis over {ds.sizes['draw']} draws of the calibrated ensemble\n"
                 f"{_title(ds, o)}{when}\n{_sensitivity_note(ds)}", fontsize=TITLE_SIZE)
    return fig


def psa_time_course(ds: xr.Dataset, output: str) -> plt.Figure:
    """PSA of a survival curve: the figure over time under the ensemble's draws and, for a difference, P(better).

    Top: the median over draws with the band holding 95% of draws (parameter
    uncertainty), thin lines for single draws. Bottom, for a difference between
    strategies: P(better) over time, the share of draws in which the first strategy is
    better, with its 95% CI over draws.
    """
    o = _sensitivity_output(ds, output)
    factor, unit = output_unit(o)
    times = ds.time.values
    draws = ds[output].sel(statistic="estimate").transpose("draw", "time").values * factor
    summary = ds[f"{output}_summary"]
    q = {k: summary.sel(summary=k).values for k in map(str, summary.summary.values)}
    fig, axs = plt.subplots(2 if o["minus"] else 1, 1, figsize=(11.0, 6.6 if o["minus"] else 4.6), sharex=True,
                            squeeze=False, gridspec_kw={"height_ratios": (2, 1) if o["minus"] else (1,)},
                            constrained_layout=True)
    axs = axs[:, 0]
    step = max(1, len(draws) // PSA_SPAGHETTI)
    for k, row in enumerate(draws[::step]):
        axs[0].plot(times, row, color="grey", lw=0.5, alpha=0.35, label="single draws" if k == 0 else None)
    axs[0].fill_between(times, q["q025"] * factor, q["q975"] * factor, color=SENSITIVITY_COLORS[0], alpha=0.25,
                        label="95% of draws (parameter uncertainty)")
    axs[0].plot(times, q["median"] * factor, color=SENSITIVITY_COLORS[0], lw=2, marker="o", ms=4,
                label="median over draws")
    axs[0].axhline(0.0, **ZERO_LINE)
    axs[0].set_ylabel(f"difference ({unit})" if o["minus"] else f"{_metric(o)} ({unit})")
    axs[0].grid(alpha=0.3)
    axs[0].legend(fontsize=LEGEND_SIZE, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the draws
    if o["minus"]:
        event, meaning, rows = _p_better(ds, o, ds[output])
        axs[1].fill_between(times, rows[:, 1], rows[:, 2], color=SENSITIVITY_COLORS[1], alpha=0.25,
                            label="95% CI over draws")
        axs[1].plot(times, rows[:, 0], color=SENSITIVITY_COLORS[1], lw=2, marker="o", ms=4,
                    label=wrap(meaning, 2.6, LEGEND_SIZE))
        axs[1].axhline(0.5, color="grey", lw=0.8, ls="--")
        axs[1].set_ylim(0, 1)
        axs[1].set_ylabel(event)
        axs[1].grid(alpha=0.3)
        axs[1].legend(fontsize=LEGEND_SIZE, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axs[-1].set_xlabel("months from the first dose")
    fig.suptitle(f"How the answer changes over time under {ds.sizes['draw']} draws of the calibrated ensemble\n"
                 f"{_title(ds, o)}\n{_sensitivity_note(ds)}", fontsize=TITLE_SIZE)
    return fig


def plot_sensitivity(ds: xr.Dataset, out_dir: str | Path, fmt: str = DEFAULT_FORMAT) -> list[Path]:
    """Every figure of a sensitivity result, one per output (``fmt``: png, svg or pdf).

    One-way: tornado, or for a survival curve a tornado per time point; Sobol: indices
    and convergence; Morris: mu*-sigma screen; PSA: scatter and distribution, or for a
    survival curve its time course. Sobol and Morris show a survival curve at the time
    point nearest :data:`PLOT_TIME` (the Sobol figure also over time).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    method = ds.attrs["method"]
    draw = {"one_way": tornado, "sobol": sobol_indices, "morris": morris_screen, "psa": psa_scatter}[method]
    paths = []
    for o in json.loads(ds.attrs["outputs"]):
        timed = "time" in ds[o["name"]].dims
        over_time = {"psa": psa_time_course, "one_way": tornado_over_time}.get(method) if timed else None
        fig = (over_time or draw)(ds, o["name"])
        paths.append(save(fig, out_dir, f"{STEMS[method]}_{o['name']}", fmt))
    return paths
