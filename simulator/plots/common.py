"""Shared figure conventions: file formats, resolution, colours, notes on intervals.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from simulator.runtime.storage import DEFAULT_FIGURE_FORMAT as DEFAULT_FORMAT  # noqa: E402
from simulator.runtime.storage import atomic_path  # noqa: E402

DPI = 110
PNG_COMPRESSION = 1  # zlib level: a sixth faster to write than the default 6, files about 15% larger
DIVERGING = "RdBu"  # differences: blue better for patients, red worse (reversed where lower is better)
NEUTRAL_DIVERGING = "PuOr_r"  # differences of a metric with no better direction
REFERENCE_COLOR = "black"
ZERO_LINE = {"color": "black", "lw": 0.9, "zorder": 1}


def save(fig: plt.Figure, out_dir: Path, stem: str, fmt: str = DEFAULT_FORMAT) -> Path:
    """Write ``fig`` as ``out_dir/stem.fmt`` atomically and close it."""
    path = Path(out_dir) / f"{stem}.{fmt}"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format=fmt, **({"pil_kwargs": {"compress_level": PNG_COMPRESSION}}
                                                 if fmt == "png" else {}))
    plt.close(fig)
    return path


def mc_note(ds: xr.Dataset) -> str:
    """What the bands and +- of a sweep figure cover, in one line."""
    return (f"{ds.attrs['confidence']:.0%} Monte Carlo CI: {ds.attrs['replicates']} trials of "
            f"{ds.attrs['patients_per_replicate']} patients per grid point; finite simulated patients only, not "
            "parameter or structural uncertainty")


def panel_grid(nrows: int, ncols: int, width: float, height: float, *, left: float = 0.9, right: float = 0.3,
               bottom: float = 0.7, top: float = 0.9, wspace: float = 0.35, hspace: float = 0.6,
               **subplots) -> tuple[plt.Figure, np.ndarray]:
    """A figure of ``nrows x ncols`` panels of ``width x height`` inches, margins and gaps in inches.

    A fixed layout instead of a layout engine: saving then draws the figure once,
    not twice (a layout engine measures every text in a draw of its own first).
    ``height`` may be a sequence of row heights.
    """
    heights = np.broadcast_to(np.asarray(height, dtype=float), (nrows,))
    fig_w = left + right + ncols * width + (ncols - 1) * wspace
    fig_h = bottom + top + heights.sum() + (nrows - 1) * hspace
    fig, axs = plt.subplots(nrows, ncols, figsize=(fig_w, fig_h), squeeze=False, gridspec_kw={
        "left": left / fig_w, "right": 1 - right / fig_w, "bottom": bottom / fig_h, "top": 1 - top / fig_h,
        "wspace": wspace / width, "hspace": hspace / heights.mean(), "height_ratios": heights}, **subplots)
    return fig, axs
