"""Writing results to disk atomically: a finished file or none, never a partial one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import xarray as xr

from simulator.model.config import ConfigError

NETCDF_ENGINE = "h5netcdf"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first bytes of a netCDF-4 file
FIGURE_FORMATS = ("png", "svg", "pdf")  # figures: PNG to look at, SVG or PDF for papers
DEFAULT_FIGURE_FORMAT = "png"
GB = 1e9


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


def is_netcdf(path: str | Path) -> bool:
    """Whether the file starts as the netCDF-4 (HDF5) files :func:`write_netcdf` writes do."""
    with open(path, "rb") as f:
        return f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE


def read_netcdf(path: str | Path) -> xr.Dataset:
    """Read a results file written by :func:`write_netcdf` into memory."""
    with xr.open_dataset(path, engine=NETCDF_ENGINE) as ds:
        return ds.load()


def require_free_space(needs: dict[Path, int]) -> None:
    """Refuse, in one line, files (path: bytes) that cannot fit on their disks, added up per disk."""
    per_disk: dict[int, tuple[Path, Path, int]] = {}
    for path, needed in needs.items():
        path = Path(path)
        folder = next((p for p in (path, *path.parents) if p.is_dir()), Path.cwd())
        device = os.stat(folder).st_dev
        first, where, total = per_disk.get(device, (path, folder, 0))
        per_disk[device] = (first, where, total + needed)
    for path, folder, needed in per_disk.values():
        free = shutil.disk_usage(folder).free
        if needed > free:
            raise ConfigError(f"{path}: needs {needed / GB:,.1f} GB, only {free / GB:,.1f} GB free on that disk")


@contextmanager
def appending_netcdf(path: str | Path, dim: str, size: int) -> Iterator[Callable[[xr.Dataset], None]]:
    """A netCDF file filled in blocks along ``dim``, written atomically.

    Yields ``append(ds)``: each call writes the next block of ``ds.sizes[dim]``
    entries (the first block also sets the variables, their attributes and the
    file's); every variable must lie along ``dim``. The file appears at ``path``
    only when the block completes with all ``size`` entries written, so memory
    holds one block at a time and an interrupted run leaves no file.
    """
    import h5netcdf

    done = 0
    with atomic_path(path) as tmp:
        with h5netcdf.File(tmp, "w") as f:
            def append(ds: xr.Dataset) -> None:
                nonlocal done
                if not f.variables:
                    f.dimensions = {dim: size}
                    f.attrs.update(ds.attrs)
                    for name, var in ds.variables.items():
                        out = f.create_variable(name, (dim,), var.dtype)
                        out.attrs.update(var.attrs)
                end = done + ds.sizes[dim]
                for name, var in ds.variables.items():
                    f.variables[name][done:end] = var.values
                done = end

            yield append
        if done != size:
            raise ValueError(f"{path}: {done} of {size} entries along '{dim}' were written")
