"""Figures, one module per capability; every figure is written as PNG and SVG.

Sits above every capability (it reads their results) and below :mod:`simulator.cli`.
"""

import matplotlib

matplotlib.use("Agg")

from simulator.plots.calibration import plot_check  # noqa: E402
from simulator.plots.sensitivity import plot_sensitivity  # noqa: E402
from simulator.plots.sweep import forest, heatmap, km_curves, plot_all  # noqa: E402
from simulator.plots.trial import plot_trial  # noqa: E402

__all__ = ["forest", "heatmap", "km_curves", "plot_all", "plot_check", "plot_sensitivity", "plot_trial"]
