"""Shared figure conventions: file formats, resolution, colours, notes on intervals, text that fits.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.font_manager import FontProperties

from simulator.runtime.storage import DEFAULT_FIGURE_FORMAT as DEFAULT_FORMAT
from simulator.runtime.storage import atomic_path

DPI = 110
PNG_COMPRESSION = 1  # zlib level: a sixth faster to write than the default 6, files about 15% larger
DIVERGING = "RdBu"  # differences: blue better for patients, red worse (reversed where lower is better)
NEUTRAL_DIVERGING = "PuOr_r"  # differences of a metric with no better direction
REFERENCE_COLOR = "black"
ZERO_LINE = {"color": "black", "lw": 0.9, "zorder": 1}
POINTS_PER_INCH = 72
TICK_SIZE, TITLE_SIZE = 10.0, 9.0  # points: tick and axis labels (matplotlib's default), panel and figure titles
LEGEND_SIZE = 7.5  # points
LINE = 0.16  # inches per line of a title
MARGIN = 0.2  # inches of the figure's width left free beside a title
TEXT_MARGIN = 1.06  # measured text widths are rounded up by this much: hinting differs a little by resolution


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


@cache
def _measuring() -> RendererAgg:
    return RendererAgg(1, 1, POINTS_PER_INCH)  # one pixel per point


def text_width(text: str, fontsize: float) -> float:
    """Width in inches of ``text`` (its longest line) at ``fontsize`` points, as the figures draw it."""
    prop = FontProperties(size=fontsize)
    return TEXT_MARGIN * max(_measuring().get_text_width_height_descent(line, prop, ismath=False)[0]
                             for line in text.split("\n")) / POINTS_PER_INCH


def wrap(text: str, width: float, fontsize: float) -> str:
    """``text`` with each line broken between words so that none is wider than ``width`` inches."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            longer = f"{line} {word}" if line else word
            if line and text_width(longer, fontsize) > width:
                lines.append(line)
                longer = word
            line = longer
        lines.append(line)
    return "\n".join(lines)


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
