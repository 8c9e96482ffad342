"""The calibration check figure: reported vs simulated with both intervals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.calibration.check import CheckRow
from simulator.calibration.figures import Z95
from simulator.runtime.storage import atomic_path


def plot_check(rows: list[CheckRow], path: str | Path) -> Path:
    """Reported vs simulated, with the reported 95% intervals and Monte Carlo errors (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(13, 6))
    colours = {"primary": "tab:blue", "secondary": "tab:orange", "validation": "tab:grey"}
    for ax, kind, title, unit in ((axes[0], "rate", "Rates and shares", "%"),
                                  (axes[1], "median", "Medians", "months, mg/m² or cycles")):
        chosen = [r for r in rows if r.figure.kind == kind and np.isfinite(r.sim.estimate)]
        k = 100.0 if kind == "rate" else 1.0
        for section, colour in colours.items():
            sel = [r for r in chosen if r.section == section]
            if not sel:
                continue
            x = np.array([k * r.figure.value for r in sel])
            y = np.array([k * r.sim.estimate for r in sel])
            xerr = np.array([[k * (r.figure.value - r.interval[0]), k * (r.interval[1] - r.figure.value)]
                             for r in sel]).T
            yerr = np.array([Z95 * k * r.sim.se for r in sel])
            ax.errorbar(x, y, xerr=np.clip(xerr, 0, None), yerr=yerr, fmt="o", color=colour, ms=4,
                        capsize=2, label=f"{section} ({sum(r.inside for r in sel)}/{len(sel)} inside)")
            for r, xi, yi in zip(sel, x, y):
                if not r.inside:  # named: the figures the model misses
                    ax.annotate(r.figure.label, (xi, yi), xytext=(4, -4), textcoords="offset points", va="top",
                                fontsize=7)
        # the whole of every interval in view
        lim = [0, max([k * max(r.interval[1], r.sim.estimate + Z95 * r.sim.se) for r in chosen] + [1]) * 1.05]
        ax.plot(lim, lim, color="black", lw=0.8)
        ax.set(xlim=lim, ylim=lim, title=title, xlabel=f"reported ({unit}) with 95% interval at published n",
               ylabel=f"simulated ({unit}) with 95% Monte Carlo CI")
        ax.legend(fontsize=8)
    fig.suptitle("Does the model reproduce the published figures? Reported vs simulated, on the diagonal when "
                 "they agree")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path
