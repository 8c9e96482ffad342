"""Writing results to disk atomically: a finished file or none, never a partial one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xarray as xr

NETCDF_ENGINE = "h5netcdf"
FIGURE_FORMATS = ("png", "svg", "pdf")  # figures: PNG to look at, SVG or PDF for papers
DEFAULT_FIGURE_FORMAT = "png"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path``, renamed over it once the block completes.

    The caller writes the temporary file; if the block raises (or is interrupted)
    the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to netCDF-4 at ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=NETCDF_ENGINE)
    return Path(path)


def read_netcdf(path: str | Path) -> xr.Dataset:
    """Read a results file written by :func:`write_netcdf` into memory."""
    with xr.open_dataset(path, engine=NETCDF_ENGINE) as ds:
        return ds.load()
