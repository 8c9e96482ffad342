"""Infrastructure every capability shares: where tasks run (this process or a dask cluster) and
how results reach the disk (atomic netCDF and figure files).

Imports :mod:`simulator.model` only (for its one-line error type).
"""

from simulator.runtime.scaleout import scheduler
from simulator.runtime.storage import atomic_path, read_netcdf, write_netcdf

__all__ = ["atomic_path", "read_netcdf", "scheduler", "write_netcdf"]
