"""The model: scenario files and their validation, the numba kernel, and the one conversion
point scenario -> arrays -> kernel -> :class:`xarray.Dataset`.

The bottom layer: it imports nothing else from :mod:`simulator`. The kernel
(:mod:`simulator.model.kernel`) is the only numba code that simulates patients.
"""

from simulator.model.config import ConfigError, Parameters, Scenario
from simulator.model.files import load_parameters, load_scenario
from simulator.model.simulation import simulate

__all__ = ["ConfigError", "Parameters", "Scenario", "load_parameters", "load_scenario", "simulate"]
