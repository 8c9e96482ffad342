"""Figures, one module per capability; PNG by default, SVG or PDF for papers.

Sits above every capability (it reads their results) and below :mod:`simulator.cli`.
Each name is imported from its module when first used, so that drawing a sweep does
not import the calibration and sensitivity machinery.
"""

import importlib

import matplotlib

matplotlib.use("Agg")

_MODULES = {"plot_check": "calibration", "plot_sensitivity": "sensitivity", "forest": "sweep", "heatmap": "sweep",
            "plot_all": "sweep", "survival": "sweep",
            "plot_trial": "trial"}
__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module 'simulator.plots' has no attribute {name!r}")
    return getattr(importlib.import_module(f"simulator.plots.{_MODULES[name]}"), name)
