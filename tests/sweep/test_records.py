"""A large run in chunks: the same table and the same records file as one run, bounded memory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import namedtuple

import numpy as np
import pytest
import xarray as xr
from conftest import CONFIGS

from simulator import ConfigError, load_scenario, simulate, summarize
from simulator.analysis.outcomes import SPILL_BYTES, summarize_chunks
from simulator.cli import main
from simulator.model.simulation import RECORD_BYTES
from simulator.runtime import storage
from simulator.runtime.storage import read_netcdf
from simulator.sweep.records import run_records

N = 30_000


@pytest.fixture(scope="module")
def pooled():
    return load_scenario(CONFIGS / "pooled_analysis.yaml")


@pytest.fixture(scope="module")
def whole(pooled):
    return simulate(pooled, N, seed=5)


@pytest.mark.parametrize("cutoff", [3.3, 1.8, None])
def test_chunked_table_equals_the_unchunked_one_exactly(pooled, whole, tmp_path, cutoff):
    out = tmp_path / "records.nc"
    chunked = run_records(pooled, N, 5, cutoff=cutoff, out=out, chunk_patients=7_001)  # uneven last chunk
    expected = summarize(whole, cutoff=cutoff)
    xr.testing.assert_identical(chunked, expected)  # bit for bit: medians, CIs, counts, attrs
    assert set(expected.metric.values) >= {"os_median_months", "pfs_median_months",
                                           "cumulative_dose_median_mg_m2", "cr_cri"}
    xr.testing.assert_identical(read_netcdf(out), whole)  # the file holds every record, as one run would
    assert list(tmp_path.iterdir()) == [out]


def test_summaries_do_not_depend_on_how_records_are_split(whole):
    parts = [whole.isel(patient=slice(a, b)) for a, b in ((0, 1), (1, 12_000), (12_000, N))]
    xr.testing.assert_identical(summarize_chunks(parts), summarize(whole))


def test_what_cannot_fit_on_disk_is_refused_before_any_work(pooled, tmp_path, monkeypatch, capsys):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(storage.shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 10**6, 10**6))
    out = tmp_path / "big.nc"
    simulated = []
    monkeypatch.setattr("simulator.sweep.records.simulate", lambda *a, **k: simulated.append(1))
    # the records and the summary's sorted values share the disk here (tmp_path is in the temporary folder)
    needed = 2_000_000 * (RECORD_BYTES + SPILL_BYTES) / 1e9
    with pytest.raises(ConfigError, match=rf"big.nc: needs {needed:.1f} GB, only 0.0 GB free on that disk"):
        run_records(pooled, 2_000_000, out=out)
    assert main(["run", "--patients", "200000000", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"needs {200_000_000 * (RECORD_BYTES + SPILL_BYTES) / 1e9:,.1f} GB" in err
    with pytest.raises(ConfigError, match=r": needs 0.1 GB, only 0.0 GB free"):  # no file: the summary alone
        run_records(pooled, 2_000_000)
    assert not simulated and list(tmp_path.iterdir()) == []


def test_an_interrupted_chunked_write_leaves_no_file(pooled, tmp_path, monkeypatch):
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return simulate(*args, **kwargs)

    monkeypatch.setattr("simulator.sweep.records.simulate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_records(pooled, 1_000, out=tmp_path / "r.nc", chunk_patients=400)
    assert list(tmp_path.iterdir()) == []


def test_run_piped_into_head_keeps_the_file_and_exits_quietly(tmp_path):
    out = tmp_path / "x.nc"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen([sys.executable, "-m", "simulator", "run", "--patients", "3000", "--out", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    head = subprocess.run(["head", "-1"], stdin=run.stdout, capture_output=True, timeout=300)
    run.stdout.close()  # only head reads the pipe: the simulator sees it closed once head is done
    err = run.stderr.read().decode()
    assert run.wait(timeout=300) == 141, err
    assert err == "" and head.stdout.decode().startswith("InOSim")
    ds = read_netcdf(out)
    assert ds.sizes["patient"] == 3000 and np.isfinite(ds.cumulative_dose.values).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nc"]
