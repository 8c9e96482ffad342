"""The value of information of a strategy decision: what study would settle it."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from simulator.analysis.labels import metric_label, parameter_label
from simulator.analysis.trial_metrics import FRACTION_UNIT
from simulator.plots.common import save

TOP = 12  # inputs shown at most
SHOWN_SHARE = 0.01  # inputs worth less than this share of the EVPI are left out


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
        The decision, e.g. "Two cycles then stop instead of label dosing".
    stem : str
        File name without extension.
    """
    k = 100.0 if voi.attrs["unit"] == FRACTION_UNIT else 1.0
    label = metric_label(voi.attrs["metric"], difference=True)
    worth = voi.evppi.values > SHOWN_SHARE * float(voi.evpi)  # inputs worth something, largest first
    shown = voi.isel(input=np.flatnonzero(worth)[:TOP])
    names = [str(n) for n in shown.input.values][::-1]
    values = k * shown.evppi.values[::-1]
    colors = ["tab:red" if n == "model structure" else ("tab:orange" if f else "tab:blue")
              for n, f in zip(names, shown.flips.values[::-1])]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(names) + 2.2))
    ax.barh(np.arange(len(names)), values, color=colors)
    ax.axvline(k * float(voi.evpi), color="black", linestyle="--", linewidth=1)
    ax.text(k * float(voi.evpi), len(names) - 0.4, " all uncertainty (EVPI)", va="bottom", fontsize=8)
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_yticks(np.arange(len(names)), [n if n == "model structure" else parameter_label(n).name for n in names],
                  fontsize=8)
    ax.set_xlabel(f"Expected gain from learning it before deciding\n({label.unit} of {label.name}, per patient)")
    ax.set_title(f"{title}: what would settle it?\nexpected difference {k * float(voi.expected_difference):+.2f} "
                 f"{label.unit} ({voi.attrs['better']} is better)", fontsize=10)
    fig.text(0.01, 0.01, "Red: the model structure (which mechanism drives NRM, relapse on InO, second transplants); "
             "orange: the better choice flips across this parameter's range; blue: it does not. "
             "Parameters: quartiles of the combined posterior ensemble; each bar has the noise floor of its "
             "finite groups removed.", fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return save(fig, Path(out_dir), stem)
