"""Figures of a simulated trial design: stopping by look, estimates against the truth,
dose selection, power by sample size.

All read the Dataset of :func:`simulator.trial.simulate_trials` (and the truth of
:func:`simulator.trial.true_values`, the search of :func:`simulator.trial.sample_size_search`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from simulator.analysis.outcomes import CONFIDENCE, clopper_pearson
from simulator.plots.common import TITLE_SIZE, save, text_width
from simulator.trial import engine as E
from simulator.trial.summary import RATIO_ESTIMANDS, at_stop, primary_tests

EFFICACY_COLOUR, FUTILITY_COLOUR = "#2a7f62", "#c0504d"
HISTOGRAM_BINS = 60
NOTE = {"fontsize": 7, "color": "0.4"}  # the line under a figure saying what it shows
HAZARD_RATIO_TICKS = (1.0, 2.0, 5.0)  # a log scale of hazard ratios is labelled at 0.5, 1, 2, 5, ...


def _note(ds: xr.Dataset, bars: bool = True) -> str:
    null = " (null: every arm on the control's strategy)" if ds.attrs["null"] else ""
    return f"{ds.sizes['trial']:,} simulated trials{null}" + (f"; bars: {CONFIDENCE:.0%} Monte Carlo CI" if bars else "")


def _share(hits: np.ndarray) -> tuple[float, float, float]:
    k, n = int(hits.sum()), hits.size
    lo, hi = clopper_pearson(k, n)
    return 100 * k / n, 100 * lo, 100 * hi


def _values(ax: plt.Axes, x: np.ndarray, est: np.ndarray) -> None:
    """Each bar's value at its top, right of its error bar."""
    for xi, e in zip(x, est):
        ax.annotate(f"{e:.1f}", (xi, e), xytext=(3, 2), textcoords="offset points", ha="left", va="bottom",
                    fontsize=8)


def stopping(ds: xr.Dataset, out_dir: Path) -> Path:
    """Probability of stopping at each look, for efficacy and for futility (primary test)."""
    prim = primary_tests(ds)
    looks = ds.look.values
    dec = ds.decision.sel(test=prim)
    title = f"When does the trial stop?\nprimary test: {ds.attrs['primary']}"
    fig, ax = plt.subplots(figsize=(max(2.4 + 1.3 * len(looks), text_width(title, 10) + 0.4, 5.0), 4.2),
                           constrained_layout=True)
    futility = np.isfinite(ds.futility_bound.values[:-1]).any()
    width = 0.38 if futility else 0.6
    kinds = (
        (-width / 2, "stop for efficacy (reject H0)", EFFICACY_COLOUR,
         lambda k: ((dec.sel(look=k) == E.EFFICACY) | (dec.sel(look=k) == E.HARM)).any("test").values),
        (width / 2, "stop for futility (last look: not rejected)", FUTILITY_COLOUR,
         lambda k: (dec.sel(look=k) == E.FUTILITY).all("test").values),
    )
    for offset, label, colour, hits_at in (kinds if futility else ((0.0,) + kinds[0][1:],)):
        est, lo, hi = zip(*[_share((ds.stop_look.values == k) & hits_at(k)) for k in looks])
        ax.bar(looks + offset, est, width, color=colour, label=label,
               yerr=[np.subtract(est, lo), np.subtract(hi, est)], capsize=3)
        _values(ax, looks + offset, est)
    cut = ds.cut_time.mean("trial", skipna=True).values
    ax.set_xticks(looks, [f"look {k}\n(mean cut {c:.0f} mo)" for k, c in zip(looks, cut)])
    ax.set_ylabel("trials stopping here (%)")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    fig.supxlabel(_note(ds), **NOTE)
    return save(fig, out_dir, "stopping_by_look")


def estimates(ds: xr.Dataset, truth: xr.Dataset | None, out_dir: Path) -> Path:
    """Distribution of each estimate at the stopping look, against its large-sample truth."""
    tests = [t for t in ds.test.values if np.isfinite(at_stop(ds, "estimate").sel(test=t).values).any()]
    cols = min(3, len(tests))
    rows = -(-len(tests) // cols)
    fig, axs = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows), squeeze=False, constrained_layout=True)
    for ax, t in zip(axs.ravel(), tests):
        est = at_stop(ds, "estimate").sel(test=t).values
        est = est[np.isfinite(est)]
        ratio = ds.test_type.sel(test=t).item() in RATIO_ESTIMANDS
        unit = str(ds.estimate_units.sel(test=t).item())
        scale = 1.0 if ratio or unit != "1" else 100.0
        ax.hist(est * scale, bins=min(HISTOGRAM_BINS, np.unique(est).size), color="0.7")
        ax.axvline(np.median(est) * scale, color="0.2", lw=1, label="median estimate")
        true = np.nan if truth is None else truth.true_estimate.sel(test=t).isel(look=-1).item()
        if np.isfinite(true):
            ax.axvline(true * scale, color=FUTILITY_COLOUR, lw=1.5, label="truth at the final look (10^6 per arm)")
        if ratio:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=HAZARD_RATIO_TICKS))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("hazard ratio, experimental / control")
        else:
            ax.set_xlabel({"month": "difference, months", "1": "difference, percentage points"}[unit])
        ax.set_title(str(t), fontsize=TITLE_SIZE)
        ax.set_yticks([])
        ax.legend(fontsize=7, frameon=False)
    for ax in axs.ravel()[len(tests):]:
        ax.axis("off")
    fig.suptitle(f"How close are the estimates to the truth? At the look where each trial stopped\n"
                 f"{_note(ds, bars=False)}", fontsize=TITLE_SIZE)
    return save(fig, out_dir, "estimates_vs_truth")


def selection(ds: xr.Dataset, truth: xr.Dataset | None, out_dir: Path) -> Path:
    """Probability that each experimental arm is selected, beside its true utility."""
    exp = [a for a in ds.arm.values if a != ds.attrs["control"]]
    est, lo, hi = zip(*[_share(ds.selected.sel(arm=a).values == 1) for a in exp])
    fig, ax = plt.subplots(figsize=(max(3.0 + 1.6 * len(exp), 5.0), 4.2), constrained_layout=True)
    x = np.arange(len(exp))
    ax.bar(x, est, 0.6, color=EFFICACY_COLOUR, yerr=[np.subtract(est, lo), np.subtract(hi, est)], capsize=3)
    _values(ax, x, est)
    labels = list(exp)
    if truth is not None:
        u = truth.true_utility.sel(arm=exp).values
        best = int(np.argmax(u))
        labels = [f"{a}\ntrue utility {v:.3f}" + ("\n(the best)" if i == best else "") for i, (a, v) in
                  enumerate(zip(exp, u))]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("trials selecting the arm (%)")
    ax.set_title("Which dose is selected at the interim?", fontsize=10)
    fig.supxlabel("utility = P(CR/CRi) - weight x P(post-HSCT SOS)\n" + _note(ds), **NOTE)
    return save(fig, out_dir, "selection")


def power_curve(search: xr.Dataset, out_dir: Path) -> Path:
    """Power of the primary test over nested sample sizes, with the target."""
    n = search.sample_size.values
    fig, ax = plt.subplots(figsize=(5.0, 3.6), constrained_layout=True)
    ax.fill_between(n, 100 * search.lower, 100 * search.upper, color=EFFICACY_COLOUR, alpha=0.25,
                    label=f"{CONFIDENCE:.0%} Monte Carlo CI")
    ax.plot(n, 100 * search.power, "o-", color=EFFICACY_COLOUR, label="simulated power")
    ax.axhline(100 * search.attrs["target"], color="0.4", ls="--", lw=1, label="target")
    ax.set_xlabel("sample size (patients randomised)")
    ax.set_ylabel("null rejected (%)" if search.attrs["null"] else "power (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Power by sample size: {search.attrs['design']}", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return save(fig, out_dir, "power_by_sample_size")


def plot_trial(ds: xr.Dataset, truth: xr.Dataset | None, out_dir: str | Path,
               search: xr.Dataset | None = None) -> list[Path]:
    """Every figure of a simulated design into ``out_dir`` (PNG); returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [stopping(ds, out_dir), estimates(ds, truth, out_dir)]
    if "selected" in ds:
        paths.append(selection(ds, truth, out_dir))
    if search is not None:
        paths.append(power_curve(search, out_dir))
    return paths
