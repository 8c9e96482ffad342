"""Writing results to disk atomically: a finished file or none, never a partial one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import xarray as xr

NETCDF_ENGINE = "h5netcdf"


def write_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to netCDF-4 at ``path`` atomically.

    The data go to a temporary file in the same folder, which is renamed over
    ``path`` only once complete; an interruption leaves ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
    try:
        ds.to_netcdf(tmp, engine=NETCDF_ENGINE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_netcdf(path: str | Path) -> xr.Dataset:
    """Read a results file written by :func:`write_netcdf` into memory."""
    with xr.open_dataset(path, engine=NETCDF_ENGINE) as ds:
        return ds.load()
