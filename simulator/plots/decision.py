"""Figures of a strategy decision: the answer with its three uncertainties, for whom it holds, and what
study would settle it.

All read the Dataset of :func:`simulator.sensitivity.strategies.compare_strategies`
(the segment figure one made with ``by``; the value of information through
:func:`simulator.sensitivity.strategies.value_of_information`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.transforms import blended_transform_factory

from simulator.analysis.labels import (
    NRM_DRIVER_TITLES,
    STRATEGIES,
    metric_label,
    parameter_label,
    scale,
    strategy_title,
)
from simulator.analysis.trial_metrics import FRACTION_UNIT
from simulator.model.structure import structure_from_id
from simulator.plots.common import (
    DEFAULT_FORMAT,
    LEGEND_SIZE,
    LINE,
    MARGIN,
    TICK_SIZE,
    TITLE_SIZE,
    ZERO_LINE,
    panel_grid,
    save,
    text_width,
    wrap,
)
from simulator.sensitivity.strategies import LEVEL, STRUCTURE_INPUT, driver_means

TOP = 12  # inputs shown at most
SHOWN_SHARE = 0.01  # inputs worth less than this share of the EVPI are left out
MIN_DRIVER_DRAWS = 20  # an NRM driver with fewer combined-ensemble draws gets no interval of its own
ANSWER_COLUMNS = 3  # metric panels per row of an answer figure
NOTE_SIZE = 7.5  # points: the notes under a figure
MONTE_CARLO_COLOR, POSTERIOR_COLOR, DRIVER_COLOR = "black", "tab:blue", "tab:grey"
P_BETTER = "P(better)"


def _name(strategy: str) -> str:
    """A known strategy's title; any other name (a scenario's, a grid point's ``axis=value,...``) as it is."""
    return strategy_title(strategy) if strategy in STRATEGIES else strategy


def decision_title(answers: xr.Dataset, strategy: str) -> str:
    """The decision in words: ``Two cycles, then stop instead of label dosing``."""
    reference = _name(answers.attrs["reference"])
    return f"{_name(strategy)} instead of {reference[:1].lower() + reference[1:]}"


def _driver_rows(answers: xr.Dataset) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """The combined ensemble's draws grouped by NRM driver, heaviest first: (row label, draw mask).

    Drivers with fewer than :data:`MIN_DRIVER_DRAWS` draws are returned apart, as text.
    """
    if not answers.sizes["structure"]:
        return [], []
    drivers = np.array([structure_from_id(str(s)).nrm_driver for s in answers.draw_structure.values])
    weight: dict[str, float] = {}
    for s, w in zip(answers.structure.values, answers.structure_weight.values):
        driver = structure_from_id(str(s)).nrm_driver
        weight[driver] = weight.get(driver, 0.0) + float(w)
    rows, apart = [], []
    for driver in sorted(weight, key=lambda d: -weight[d]):
        mask = drivers == driver
        share = f"{weight[driver]:.0%}" if weight[driver] >= 0.01 else f"{weight[driver]:.1%}"
        text = f"{NRM_DRIVER_TITLES[driver]} (weight {share}"
        if mask.sum() >= MIN_DRIVER_DRAWS:
            rows.append((f"{text})", mask))
        else:
            apart.append(f"{text}, {mask.sum()} draws)")
    return rows, apart


def answer_plot(answers: xr.Dataset, strategy: str, out_dir: str | Path, fmt: str = DEFAULT_FORMAT) -> Path:
    """Each metric's difference, strategy minus reference, with its three uncertainties and P(better).

    One panel per metric, one row per kind of uncertainty:

    * at the fitted values, the Monte Carlo 95% CI: the finite simulated patients only;
    * over the combined ensemble of parameters and model structures, the posterior mean
      and 95% interval, with each draw as a dot;
    * under each driver of post-HSCT non-relapse mortality, the same over the combined
      ensemble's draws of the structures with that driver, with its posterior weight.

    A column beside each panel gives P(better): the share of draws in which the strategy
    is better for patients (higher survival, lower NRM: the Dataset's ``better``).

    Parameters
    ----------
    answers : xarray.Dataset
        A result of :func:`simulator.sensitivity.strategies.compare_strategies`.
    strategy : str
        One of its strategies.
    out_dir : str or Path
        Folder for ``answer_<strategy>.<fmt>``.
    fmt : str
        png, svg or pdf.
    """
    one = answers.sel(strategy=strategy)
    metrics = [str(m) for m in answers.metric.values]
    drivers, apart = _driver_rows(answers)
    labels = ["At the fitted values (Monte Carlo)", "Parameters and model structures (posterior)",
              *[text for text, _ in drivers]]
    name, reference = _name(strategy), _name(answers.attrs["reference"])
    ncols = min(len(metrics), ANSWER_COLUMNS)
    nrows = -(-len(metrics) // ncols)
    left, width, gap = text_width("\n".join(labels), TICK_SIZE) + 0.3, 3.0, 0.3  # inches
    column = 0.04 * width + text_width(P_BETTER, LEGEND_SIZE) + 0.1  # the P(better) column beside each panel
    fig_width = left + ncols * (width + column + gap) - gap
    title = wrap(f"{decision_title(answers, strategy)}: the answer and how sure it is\n"
                 f"{name} minus {reference} on the same virtual patients; bars: 95% intervals; "
                 "dots: draws of the posterior", fig_width - MARGIN, TITLE_SIZE)
    draws = answers.attrs["combined_draws"]
    note = wrap(f"Monte Carlo: {answers.attrs['fitted_replicates']} trials of {answers.attrs['patients']} patients at "
                "the fitted parameter values of the shipped structure; it covers the finite simulated patients "
                f"only. Posterior: {draws} draws of the combined ensemble, {answers.attrs['replicates']} trials of "
                f"{answers.attrs['patients']} patients each; it covers the calibrated parameters of every model "
                "structure, each weighted by how well it explains the published figures. By NRM driver: the draws "
                "of the structures in which that mechanism drives post-HSCT NRM. P(better): the share of draws in "
                f"which {name[:1].lower() + name[1:]} is better for patients."
                + (f" Too few draws to show: {'; '.join(apart)}." if apart else ""), fig_width - MARGIN, NOTE_SIZE)
    fig, axs = panel_grid(nrows, ncols, width, 0.5 * len(labels) + 0.2, left=left, right=column,
                          top=0.55 + LINE * (title.count("\n") + 1), bottom=0.6 + LINE * (note.count("\n") + 1),
                          wspace=column + gap, hspace=1.1, sharey=True)
    rows = np.arange(len(labels))[::-1]
    rng = np.random.default_rng(0)  # jitter of the dots only
    for ax, metric in zip(axs.flat, metrics):
        r = one.sel(metric=metric)
        better = str(r.better.values)
        k, sign = scale(str(r.unit.values)), 1.0 if better == "higher" else -1.0
        d = k * r.draw_difference.values
        ax.hlines(rows[0], k * r.fitted_lower, k * r.fitted_upper, color=MONTE_CARLO_COLOR, lw=3)
        ax.plot(k * r.fitted, rows[0], "|", color=MONTE_CARLO_COLOR, ms=12, mew=2)
        cells = [(rows[1], np.ones(len(d), bool), float(r.posterior_mean) * k, float(r.posterior_lower) * k,
                  float(r.posterior_upper) * k, float(r.prob_better), POSTERIOR_COLOR)]
        for row, (_, mask) in zip(rows[2:], drivers):
            lo, hi = np.quantile(d[mask], [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
            cells.append((row, mask, d[mask].mean(), lo, hi, float(np.mean(sign * d[mask] > 0)), DRIVER_COLOR))
        beside = blended_transform_factory(ax.transAxes, ax.transData)  # the P(better) column right of the panel
        for row, mask, mean, lo, hi, p, color in cells:
            ax.scatter(d[mask], row + rng.uniform(-0.18, 0.18, mask.sum()), s=5, color=color, alpha=0.25, lw=0)
            ax.hlines(row, lo, hi, color=color, lw=3)
            ax.plot(mean, row, "o", color=color, ms=6, mec="white")
            ax.text(1.04, row, _chance(p, better), transform=beside, va="center", fontsize=TICK_SIZE)
        ax.text(1.04, 1.0, P_BETTER, transform=ax.transAxes, va="bottom", fontsize=LEGEND_SIZE)
        ax.axvline(0.0, **ZERO_LINE)
        _difference_axes(ax, metric, better)
    return _finish(fig, axs, len(metrics), rows, labels, title, note, fig_width, Path(out_dir) / f"answer_{strategy}", fmt)


def _chance(p: float, better: str) -> str:
    """P(better) as shown beside a panel: '-' where the metric has no better direction (or no value)."""
    return f"{p:.2f}" if np.isfinite(p) and better != "none" else "-"


def _difference_axes(ax, metric: str, better: str) -> None:
    """A panel of differences of ``metric``: its title with which direction is ``better``, axis label, grid."""
    label = metric_label(metric, difference=True)
    direction = f"{better} is better" if better != "none" else "no better direction"
    ax.set_title(f"{label.name}\n({direction})", fontsize=TITLE_SIZE)
    ax.set_xlabel(f"difference ({label.unit})")
    ax.grid(axis="x", alpha=0.3)


def _finish(fig, axs, n_panels: int, rows, labels: list[str], title: str, note: str, fig_width: float,
            path: Path, fmt: str) -> Path:
    """Hide unused panels, label the rows of the first column, add the title and the note, save as ``path``."""
    for ax in axs.flat[n_panels:]:
        ax.set_visible(False)
    for ax in axs[:, 0]:
        ax.set_yticks(rows, labels, fontsize=TICK_SIZE)
    fig.suptitle(title, fontsize=TITLE_SIZE, y=1 - 0.1 / fig.get_figheight(), va="top")
    fig.text(MARGIN / 2 / fig_width, 0.1 / fig.get_figheight(), note, fontsize=NOTE_SIZE, va="bottom")
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(fig, path.parent, path.name, fmt)


def segment_plot(answers: xr.Dataset, strategy: str, out_dir: str | Path, fmt: str = DEFAULT_FORMAT) -> Path:
    """For whom is the strategy better? Each segment's difference, with its three uncertainties and P(better).

    One panel per metric, one row per segment (the whole population first, then each
    split's segments with their share of the patients); on each row:

    * the posterior mean and 95% interval over the combined ensemble of parameters and
      model structures (each draw with its own patients);
    * above it, the Monte Carlo 95% CI at the fitted values (the segment's simulated
      patients only);
    * grey ticks: the posterior mean under each driver of post-HSCT non-relapse mortality.

    A column beside each panel gives P(better) in the segment.

    Parameters
    ----------
    answers : xarray.Dataset
        A result of :func:`simulator.sensitivity.strategies.compare_strategies` with ``by``.
    strategy : str
        One of its strategies.
    out_dir : str or Path
        Folder for ``segments_<strategy>.<fmt>``.
    fmt : str
        png, svg or pdf.
    """
    one = answers.sel(strategy=strategy)
    metrics = [str(m) for m in answers.metric.values]
    labels = [f"{g} ({float(share):.0%})" for g, share in zip(answers.segment.values, answers.share.values)]
    name, reference = _name(strategy), _name(answers.attrs["reference"])
    ncols = min(len(metrics), ANSWER_COLUMNS)
    nrows = -(-len(metrics) // ncols)
    left, width, gap = text_width("\n".join(labels), TICK_SIZE) + 0.3, 3.0, 0.3  # inches
    column = 0.04 * width + text_width(P_BETTER, LEGEND_SIZE) + 0.1
    fig_width = left + ncols * (width + column + gap) - gap
    title = wrap(f"For whom is {name[:1].lower() + name[1:]} better than {reference[:1].lower() + reference[1:]}?\n"
                 f"{name} minus {reference[:1].lower() + reference[1:]} by patient segment (share of patients), on "
                 "the same virtual patients",
                 fig_width - MARGIN, TITLE_SIZE)
    note = wrap(f"Blue: posterior mean and 95% interval over {answers.attrs['combined_draws']} draws of the combined "
                "ensemble of parameters and model structures, each draw with its own "
                f"{answers.attrs['replicates']} trials of {answers.attrs['patients']} patients. Black, above: Monte "
                f"Carlo 95% CI at the fitted values ({answers.attrs['fitted_replicates']} trials), the segment's "
                "simulated patients only; smaller segments have wider ones. Grey ticks: the posterior mean under "
                "each driver of post-HSCT NRM. P(better): the share of draws in which "
                f"{name[:1].lower() + name[1:]} is better for the segment's patients ('-': no better direction, or "
                "no patient of the segment in the figure's denominator).", fig_width - MARGIN, NOTE_SIZE)
    fig, axs = panel_grid(nrows, ncols, width, 0.32 * len(labels) + 0.2, left=left, right=column,
                          top=0.55 + LINE * (title.count("\n") + 1), bottom=0.6 + LINE * (note.count("\n") + 1),
                          wspace=column + gap, hspace=1.1, sharey=True)
    rows = np.arange(len(labels))[::-1].astype(float)
    splits = answers.split.values
    breaks = [rows[i] + 0.5 for i in range(1, len(splits)) if splits[i] != splits[i - 1]]
    for ax, metric in zip(axs.flat, metrics):
        r = one.sel(metric=metric)
        k = scale(str(r.unit.values))
        beside = blended_transform_factory(ax.transAxes, ax.transData)
        for row, g in zip(rows, answers.segment.values):
            c = r.sel(segment=g)
            ax.hlines(row + 0.22, k * c.fitted_lower, k * c.fitted_upper, color=MONTE_CARLO_COLOR, lw=1.5)
            ax.plot(k * c.fitted, row + 0.22, "|", color=MONTE_CARLO_COLOR, ms=6, mew=1.5)
            ax.hlines(row, k * c.posterior_lower, k * c.posterior_upper, color=POSTERIOR_COLOR, lw=3)
            ax.plot(k * c.posterior_mean, row, "o", color=POSTERIOR_COLOR, ms=6, mec="white")
            drivers = list(driver_means(answers.sel(segment=g), strategy, metric).values())
            ax.plot(k * np.array(drivers), np.full(len(drivers), row), "|", color=DRIVER_COLOR, ms=9, mew=1.2)
            ax.text(1.04, row, _chance(float(c.prob_better), str(r.better.values)), transform=beside, va="center",
                    fontsize=TICK_SIZE)
        for y in breaks:
            ax.axhline(y, color="lightgrey", lw=0.8)
        ax.text(1.04, 1.0, P_BETTER, transform=ax.transAxes, va="bottom", fontsize=LEGEND_SIZE)
        ax.axvline(0.0, **ZERO_LINE)
        _difference_axes(ax, metric, str(r.better.values))
        ax.set_ylim(rows[-1] - 0.6, rows[0] + 0.6)
    return _finish(fig, axs, len(metrics), rows, labels, title, note, fig_width, Path(out_dir) / f"segments_{strategy}",
                   fmt)


def value_of_information_plot(voi: xr.Dataset, out_dir: str | Path, title: str,
                              stem: str = "value_of_information") -> Path:
    """Bars of the expected value of partial perfect information, largest first.

    Parameters
    ----------
    voi : xarray.Dataset
        A result of :func:`simulator.sensitivity.strategies.value_of_information`.
    out_dir : str or Path
        Folder for ``<stem>.png``.
    title : str
        The decision (:func:`decision_title`).
    stem : str
        File name without extension.
    """
    k = 100.0 if voi.attrs["unit"] == FRACTION_UNIT else 1.0
    label = metric_label(voi.attrs["metric"], difference=True)
    worth = voi.evppi.values > SHOWN_SHARE * float(voi.evpi)  # inputs worth something, largest first
    shown = voi.isel(input=np.flatnonzero(worth)[:TOP])
    names = [str(n) for n in shown.input.values][::-1]
    values = k * shown.evppi.values[::-1]
    colors = ["tab:red" if n == STRUCTURE_INPUT else ("tab:orange" if f else "tab:blue")
              for n, f in zip(names, shown.flips.values[::-1])]
    ticks = [n if n == STRUCTURE_INPUT else parameter_label(n).name for n in names]
    left, width = text_width("\n".join(ticks), 8) + 0.3, 6.0
    note = wrap("Red: the model structure (which mechanism drives NRM, relapse on InO, second transplants); "
                "orange: the better choice flips across this parameter's range; blue: it does not. "
                "Parameters: quartiles of the combined posterior ensemble; each bar has the noise floor of its "
                "finite groups removed.", left + width + 0.3 - MARGIN, NOTE_SIZE)
    fig, ax = panel_grid(1, 1, width, 0.42 * len(names) + 0.3, left=left, right=0.3, top=0.7,
                         bottom=1.0 + LINE * (note.count("\n") + 1))
    ax = ax[0, 0]
    ax.barh(np.arange(len(names)), values, color=colors)
    ax.axvline(k * float(voi.evpi), color="black", linestyle="--", linewidth=1,
               label=f"all uncertainty (EVPI): {k * float(voi.evpi):.2f}")
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_yticks(np.arange(len(names)), ticks, fontsize=8)
    ax.set_xlabel(f"Expected gain from learning it before deciding\n({label.unit} of {label.name}, per patient)")
    ax.set_title(f"{title}: what would settle it?\nexpected difference {k * float(voi.expected_difference):+.2f} "
                 f"{label.unit} ({voi.attrs['better']} is better)", fontsize=10)
    ax.legend(fontsize=8, loc="lower center")  # the shortest bars are at the bottom
    fig.text(MARGIN / 2 / fig.get_figwidth(), 0.1 / fig.get_figheight(), note, fontsize=NOTE_SIZE, va="bottom")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return save(fig, Path(out_dir), stem)
