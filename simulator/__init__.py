"""InOSim: Monte Carlo trial simulator for inotuzumab ozogamicin dosing strategies.

The public API is small: load a scenario, simulate it, summarise the records.

>>> import simulator
>>> scenario = simulator.load_scenario("configs/pooled_analysis.yaml")
>>> ds = simulator.simulate(scenario, n_patients=10_000, seed=1)
>>> table = simulator.summarize(ds, cutoff=3.3)
"""

import os
import sys
from hashlib import blake2b
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _numba_cache_dir() -> Path:
    """numba's on-disk cache for this package's sources: a folder named by a hash of them.

    numba keys a cached function on its own file only, so a jitted function that calls one
    of another file would keep its old machine code when only that other file changes (a
    new version, a ``git pull``) and silently compute the old model. One folder per version
    of the sources makes every change a fresh compile. Set ``NUMBA_CACHE_DIR`` to override.
    """
    root = Path(__file__).parent
    digest = blake2b(digest_size=8)
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    name = f"numba-{digest.hexdigest()}"
    if os.access(root, os.W_OK):
        return root / "__pycache__" / name
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "inosim" / name  # read-only install


os.environ.setdefault("NUMBA_CACHE_DIR", str(_numba_cache_dir()))
if "numba" in sys.modules:  # numba read its configuration before this point: make it read it again
    sys.modules["numba"].core.config.reload_config()

try:
    __version__ = version("inosim")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

from simulator.analysis import summarize  # noqa: E402 (after NUMBA_CACHE_DIR is set)
from simulator.model import ConfigError, Scenario, load_scenario, simulate  # noqa: E402

__all__ = ["ConfigError", "Scenario", "load_scenario", "simulate", "summarize", "__version__"]
