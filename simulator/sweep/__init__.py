"""Sweeps and strategy comparison: experiment files, grids, chunks, resume, paired differences and the
observational-vs-causal table.

Imports :mod:`simulator.model`, :mod:`simulator.runtime` and :mod:`simulator.analysis`.
"""

from simulator.sweep.compare import dose_contrast, paired_differences
from simulator.sweep.experiment import (
           load_experiment,
           load_results,
           plan_chunks,
           run_chunk,
           run_sweep,
)

__all__ = ["dose_contrast", "load_experiment", "load_results", "paired_differences", "plan_chunks", "run_chunk",
           "run_sweep"]
