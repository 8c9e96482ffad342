"""Shared figure conventions: file formats, resolution, unit scaling.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import xarray as xr  # noqa: E402

from simulator.analysis.trial_metrics import FRACTION_UNIT  # noqa: E402

FORMATS = ("png", "svg")
DPI = 120
MAX_CURVES = 10
FOREST_COLUMNS = 4
TRIAL_RANGE = (2.5, 97.5)  # percentiles of single trials' curves shown as a light band


def save(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    paths = []
    for ext in FORMATS:
        path = out_dir / f"{stem}.{ext}"
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def scale(unit: str) -> tuple[float, str]:
    """Factor and label to show a metric: fractions as %."""
    return (100.0, "%") if unit == FRACTION_UNIT else (1.0, unit)


def sizes_note(ds: xr.Dataset) -> str:
    return (f"{ds.attrs['replicates']} replicates x {ds.attrs['patients_per_replicate']} patients, "
            f"{ds.attrs['confidence']:.0%} Monte Carlo CI")
