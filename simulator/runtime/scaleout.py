"""Where independent tasks run: in this process, or on a ``dask.distributed`` cluster.

A batch of pure tasks (a sweep's chunks: grid point x replicate block) goes through
the map function of :func:`scheduler`, which yields each task's result as it
finishes::

    with scheduler("local:2") as map_tasks:              # or None: in this process
        for position, result in map_tasks(run_chunk, specs):   # position: index into specs
            ...

``dask`` is ``None`` (in this process, in order; numba's threads parallelise each
task), ``"local:N"`` (a ``LocalCluster`` of N single-threaded worker processes on the
loopback interface, each with one numba thread: the processes give the parallelism;
``"local"``: one per core) or a scheduler address such as ``tcp://host:8786`` (any
running cluster: dask-jobqueue, dask-kubernetes, ``dask scheduler``). A worker process
runs one task at a time whatever its thread count (numba's ``workqueue`` threading
layer aborts when two threads launch parallel kernels at once); each task uses the
worker's numba threads (``NUMBA_NUM_THREADS``, default: every core).

Tasks are shipped to the workers by pickle (functions by reference, so workers need the
same package installed) and the results come back to this process, which alone writes
files. Because every random number is a function of (seed, patient, event), a task's
result does not depend on where or when it ran: results are bit-identical whatever the
scheduler, provided the workers run the same versions of inosim, numpy and numba.
``dask`` is imported only here, and only when a cluster is asked for.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from simulator.model.config import ConfigError

if TYPE_CHECKING:
    from distributed import Client

T = TypeVar("T")
R = TypeVar("R")
TaskMap = Callable[[Callable[[Any], Any], Sequence[Any]], Iterator[tuple[int, Any]]]

LOCAL = "local"  # "local" or "local:N": a LocalCluster started (and stopped) here
LOOPBACK = "127.0.0.1"  # a LocalCluster listens on this interface only (HTTP routes: a random port)
LOCAL_NUMBA_THREADS = 1  # per LocalCluster worker process: the processes give the parallelism
WORKER_LOG_LEVEL = logging.ERROR  # LocalCluster: no warnings about tasks cancelled by Ctrl-C
_ONE_TASK_AT_A_TIME = threading.Lock()  # per worker process


def local_workers(dask: str) -> int | None:
    """The worker count of ``local`` / ``local:N``, or None for a scheduler address.

    Raises
    ------
    ConfigError
        ``local:`` followed by anything but a whole number >= 1.
    """
    name, sep, count = dask.partition(":")
    if name != LOCAL:
        return None
    if not sep:
        return os.cpu_count() or 1
    if not count.isdigit() or int(count) < 1:
        raise ConfigError(f"dask scheduler {dask!r}: expected local:N with N a whole number >= 1 "
                          "(worker processes), or a scheduler address such as tcp://host:8786")
    return int(count)


@contextmanager
def dask_client(dask: str) -> Iterator[Client]:
    """A client of the cluster ``dask`` names; a LocalCluster it starts is shut down on exit.

    Parameters
    ----------
    dask : str
        ``local:N`` (N worker processes of one thread each; scheduler, workers and
        the scheduler's HTTP routes listen on the loopback interface only, at random
        ports), ``local`` (one worker per core) or a scheduler address
        (``tcp://host:8786``).

    Raises
    ------
    ConfigError
        A malformed ``local:N``, or no scheduler answering at the address (after dask's
        connect timeout, ``distributed.comm.timeouts.connect``).
    """
    from distributed import Client, LocalCluster
    from distributed.comm import parse_address
    from distributed.comm.registry import get_backend

    workers = local_workers(dask)
    if workers is None:
        try:
            get_backend(parse_address(dask)[0])  # an unknown scheme, before a Client is half-made
            client = Client(dask, set_as_default=False)
        except (OSError, ValueError) as exc:  # refused or timed out; ValueError: unknown scheme
            raise ConfigError(f"dask scheduler {dask}: cannot connect ({exc})") from None
        with client:
            yield client
        return
    with _workers_ignore_ctrl_c():
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host=LOOPBACK,
                               dashboard_address=f"{LOOPBACK}:0", silence_logs=WORKER_LOG_LEVEL)
    with cluster, Client(cluster, set_as_default=False) as client:
        yield client


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Ignore SIGINT while worker processes start: they inherit that, so Ctrl-C reaches this
    process alone, which stops them in order (instead of each dying with a traceback)."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers: main thread only
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _on_worker(func: Callable[[T], R], numba_threads: int | None, item: T) -> R:
    """Run one task on a worker: alone in its process, with ``numba_threads`` if given."""
    with _ONE_TASK_AT_A_TIME:
        if numba_threads is not None:
            import numba

            numba.set_num_threads(numba_threads)  # this (the task's) thread only
        return func(item)


def _in_process(func: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
    for position, item in enumerate(items):
        yield position, func(item)


def _on_cluster(client: Client, numba_threads: int | None, func: Callable[[T], R], items: Sequence[T]
                ) -> Iterator[tuple[int, R]]:
    from distributed import as_completed

    # pure=False: unique keys, so clients sharing a scheduler never mix their tasks
    futures = client.map(partial(_on_worker, func, numba_threads), items, pure=False)
    position = {f.key: i for i, f in enumerate(futures)}
    pending = as_completed(futures, loop=client.loop)
    del futures  # a result leaves the cluster's memory once it has been yielded
    for future in pending:
        yield position[future.key], future.result()  # a task's exception is raised here


@contextmanager
def scheduler(dask: str | None = None) -> Iterator[TaskMap]:
    """Where tasks run: in this process or on a dask cluster; yields the map function.

    Parameters
    ----------
    dask : str, optional
        None: in this process, in order. Otherwise ``local:N``, ``local`` or a
        scheduler address (see :func:`dask_client`); the cluster is connected to
        (or started) on entering and released (or stopped) on leaving.

    Yields
    ------
    map_tasks : callable
        ``map_tasks(func, items)`` runs ``func`` (a pure function of one item) on every
        item and iterates over ``(position in items, func(item))`` as each is done
        (in order in this process, in completion order on a cluster). For a cluster,
        ``func``, the items and the results must pickle (a module-level function or a
        bound method of a picklable object). Leaving the ``with`` block early (an
        exception, Ctrl-C) cancels the tasks not yet done.

    Raises
    ------
    ConfigError
        A malformed ``dask`` or an unreachable scheduler, on entering.
    """
    if dask is None:
        yield _in_process
        return
    numba_threads = None if local_workers(dask) is None else LOCAL_NUMBA_THREADS
    with dask_client(dask) as client:
        yield partial(_on_cluster, client, numba_threads)
