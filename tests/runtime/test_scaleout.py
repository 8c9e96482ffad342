"""Deterministic scale-out: a sweep on a dask cluster, in other chunk sizes, or resumed across
schedulers gives the same bits as the local in-process run.

(1 vs 2 numba threads and the patient chunking of ``simulate()`` are in test_kernel.py;
replicate blocks of ``run_chunk`` in test_experiment.py.)
"""

from __future__ import annotations

import os
import signal

import dask
import numba
import numpy as np
import pytest
import xarray as xr
from conftest import write_experiment
from distributed import LocalCluster

from simulator import ConfigError
from simulator.cli import main
from simulator.runtime.scaleout import scheduler
from simulator.sweep import experiment as E
from simulator.sweep.experiment import load_experiment, partial_dir, run_sweep

AXES = {"regimen.cumulative_cap": [1.8, 3.3, None], "regimen.max_cycles": [2, 6]}
BLOCK = 2  # replicates per chunk on the cluster: 3 chunks per grid point, 18 in all


@pytest.fixture(scope="module")
def cluster():
    """A 2-worker LocalCluster of single-threaded processes on the loopback interface."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as c:
        yield c


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scaleout")
    return load_experiment(write_experiment(folder, AXES, replicates=6, patients=60))


@pytest.fixture(scope="module")
def local(experiment, tmp_path_factory):
    """The reference: the local, in-process run with the default chunks (one per grid point)."""
    path = tmp_path_factory.mktemp("local") / "local.nc"
    return run_sweep(experiment, path), path


def _worker_facts(_: int) -> tuple[int, int, bool]:
    return os.getpid(), numba.get_num_threads(), signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_sweep_on_a_two_worker_cluster_is_identical_to_the_local_run(cluster, experiment, local, tmp_path):
    out = tmp_path / "dask.nc"
    ds = run_sweep(experiment, out, dask=cluster.scheduler_address, replicates_per_chunk=BLOCK)
    xr.testing.assert_identical(ds, local[0])
    assert out.read_bytes() == local[1].read_bytes()
    assert not partial_dir(out).exists()


def test_other_chunk_sizes_locally_are_identical(experiment, local):
    for block in (1, 4):  # 6 and 2 chunks per grid point (the last one short)
        xr.testing.assert_identical(run_sweep(experiment, replicates_per_chunk=block), local[0])


def test_local_cluster_from_the_command_line(experiment, local, tmp_path, capsys):
    out = tmp_path / "cli.nc"
    assert main(["sweep", experiment.source, "--out", str(out), "--dask", "local:2"]) == 0
    assert "6 grid points" in " ".join(capsys.readouterr().out.split())  # the header wraps at 100 columns
    assert out.read_bytes() == local[1].read_bytes()


def test_local_cluster_workers_are_processes_with_one_numba_thread_that_leave_ctrl_c_to_us():
    handler = signal.getsignal(signal.SIGINT)
    with scheduler("local:2") as map_tasks:
        assert signal.getsignal(signal.SIGINT) == handler
        facts = dict(map_tasks(_worker_facts, range(8)))
    pids = {pid for pid, _, _ in facts.values()}
    assert sorted(facts) == list(range(8)) and os.getpid() not in pids and len(pids) <= 2
    assert {(threads, ignores) for _, threads, ignores in facts.values()} == {(1, True)}


def test_sweep_interrupted_locally_resumes_on_the_cluster(cluster, experiment, local, tmp_path, monkeypatch):
    real = E.run_chunk

    def interrupt(spec):
        if spec.index == (1, 1):  # the 4th of 6 grid points
            raise KeyboardInterrupt
        return real(spec)

    out = tmp_path / "r.nc"
    monkeypatch.setattr(E, "run_chunk", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(experiment, out)
    assert len(list(partial_dir(out).glob(E.CHUNK_GLOB))) == 3
    monkeypatch.undo()
    run_sweep(experiment, out, resume=True, dask=cluster.scheduler_address)
    assert out.read_bytes() == local[1].read_bytes()


def test_sweep_interrupted_on_the_cluster_resumes_locally(cluster, experiment, local, tmp_path):
    out = tmp_path / "r.nc"
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done == 7:  # as by Ctrl-C, after 7 of 18 chunks
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(experiment, out, dask=cluster.scheduler_address, replicates_per_chunk=BLOCK, progress=progress)
    assert seen == list(range(8)) and len(list(partial_dir(out).glob(E.CHUNK_GLOB))) == 7
    calls = []
    run_sweep(experiment, out, resume=True, replicates_per_chunk=BLOCK, progress=lambda d, t: calls.append(d))
    assert calls == list(range(7, 19))  # the 7 finished chunks were not redone
    assert out.read_bytes() == local[1].read_bytes()


@pytest.mark.parametrize(("address", "expected"), [
    ("local:0", "expected local:N with N a whole number >= 1"),
    ("local:two", "expected local:N"),
    ("foo://127.0.0.1:1", "cannot connect (unknown address scheme 'foo'"),
    ("tcp://127.0.0.1:1", "cannot connect"),  # nothing listens on port 1
])
def test_a_bad_scheduler_is_one_error_before_any_file(experiment, tmp_path, address, expected):
    out = tmp_path / "r.nc"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), pytest.raises(ConfigError) as exc:
        run_sweep(experiment, out, dask=address)
    assert expected in str(exc.value) and "\n" not in str(exc.value)
    assert not partial_dir(out).exists()


def test_sensitivity_on_the_cluster_is_identical_to_the_local_run(cluster, monkeypatch):
    """Parameter-set chunks of a sensitivity analysis (one set per chunk): same bits on the cluster."""
    from conftest import CONFIGS

    from simulator import load_scenario
    from simulator.sensitivity import models as SM

    label = load_scenario(CONFIGS / "label_dosing.yaml")
    sizes = {"patients": 60, "replicates": 3, "seed": 7}
    monkeypatch.setattr(SM, "MAX_PATIENTS_PER_CHUNK", sizes["patients"] * sizes["replicates"])
    names = ["nrm_rate", "hsct_late_rate"]
    values = np.array([[0.03, 0.2], [0.12, 0.2], [0.07, 0.1], [0.07, 1.0]])
    local = SM.SimulatorModel(label, ["os_24_months", "hsct"], **sizes).evaluate(names, values)
    on_cluster = SM.SimulatorModel(label, ["os_24_months", "hsct"], **sizes,
                                   dask=cluster.scheduler_address).evaluate(names, values)
    assert set(local) == set(on_cluster)
    for key in local:
        np.testing.assert_array_equal(local[key], on_cluster[key], err_msg=key)
    assert not np.array_equal(local["os_24_months"][0], local["os_24_months"][1])  # the sets differ
