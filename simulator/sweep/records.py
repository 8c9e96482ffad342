"""One large run of patients in bounded memory: the summary table and the patient records.

:func:`run_records` simulates the patients in chunks of :data:`CHUNK_PATIENTS`,
counts the summary chunk by chunk (:func:`simulator.analysis.outcomes.summarize_chunks`,
which keeps what its medians need on disk) and appends each chunk to the records file,
so the memory a run needs does not grow with the number of patients; what does not
fit on disk is refused before any work (see ``docs/performance.md``). The
results equal those of one :func:`simulator.simulate` call: patient ``i`` draws the
same numbers whatever chunk simulates it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import xarray as xr

from simulator.analysis.outcomes import DEFAULT_CUTOFF, SPILL_BYTES, summarize_chunks
from simulator.model.config import Scenario
from simulator.model.simulation import RECORD_BYTES, simulate
from simulator.runtime.storage import appending_netcdf, require_free_space

CHUNK_PATIENTS = 1_000_000  # about 0.2 GB of records at a time


def run_records(scenario: Scenario, n_patients: int | None = None, seed: int | None = None, *,
                cutoff: float | None = DEFAULT_CUTOFF, out: str | Path | None = None,
                chunk_patients: int = CHUNK_PATIENTS,
                progress: Callable[[int, int], Any] | None = None) -> xr.Dataset:
    """Simulate a scenario chunk by chunk; summarise it and optionally save every record.

    Parameters
    ----------
    scenario : Scenario
    n_patients, seed : int, optional
        Default to the scenario's ``simulation`` values.
    cutoff : float or None
        Cumulative-dose cutoff of the summary's groups, mg/m2.
    out : str or Path, optional
        netCDF file for the patient records (written chunk by chunk, renamed into
        place once complete). Refused up front if it, and the summary's sorted
        values in the temporary folder, cannot fit on their disks.
    chunk_patients : int
        Patients simulated at a time; the results do not depend on it.
    progress : callable, optional
        Called as ``progress(done, total)`` in patients, after each chunk.

    Returns
    -------
    xarray.Dataset
        The summary (see :func:`simulator.summarize`), equal to that of one
        :func:`simulator.simulate` call; its attrs carry the seed and version.
    """
    n = scenario.simulation.patients if n_patients is None else int(n_patients)
    seed = scenario.simulation.seed if seed is None else int(seed)
    if n < 1 or chunk_patients < 1:
        raise ValueError(f"n_patients and chunk_patients must be at least 1, got {n} and {chunk_patients}")
    spill = Path(tempfile.gettempdir())
    require_free_space(({Path(out): n * RECORD_BYTES} if out is not None else {}) | {spill: n * SPILL_BYTES})

    def chunks(append: Callable[[xr.Dataset], None] | None) -> Iterator[xr.Dataset]:
        for first in range(0, n, chunk_patients):
            ds = simulate(scenario, min(chunk_patients, n - first), seed, first_patient=first)
            if append is not None:
                append(ds)
            if progress:
                progress(first + ds.sizes["patient"], n)
            yield ds

    with appending_netcdf(out, "patient", n) if out is not None else nullcontext() as append:
        return summarize_chunks(chunks(append), cutoff, spill_dir=spill)
