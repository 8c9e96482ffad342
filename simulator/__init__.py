"""InOSim: Monte Carlo trial simulator for inotuzumab ozogamicin dosing strategies.

The public API is small: load a scenario, simulate it, summarise the records.

>>> import simulator
>>> scenario = simulator.load_scenario("configs/pooled_analysis.yaml")
>>> ds = simulator.simulate(scenario, n_patients=10_000, seed=1)
>>> table = simulator.summarize(ds, cutoff=3.3)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("inosim")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

from simulator.analysis import summarize
from simulator.model import ConfigError, Scenario, load_scenario, simulate

__all__ = ["ConfigError", "Scenario", "load_scenario", "simulate", "summarize", "__version__"]
