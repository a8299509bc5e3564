"""One embedded Dask cluster for the whole Dask suite, and a leak guard that knows about it.

Imported by each test module (not a conftest.py: mypy would see two modules named conftest).

The root ``no_leaks`` guard counts every child process and thread a test leaves behind. A
Dask cluster owns both for the whole session -- its worker processes (which the nanny
*replaces* when a test kills one: a new pid), the client's IO loop and callback threads --
so this directory overrides the guard: a test must leave no child process other than the
cluster's current workers, no thread outside Dask's own, and the cluster back at full
strength (waited for, so that a test killing a worker does not slow the next one down).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

pytest.importorskip("distributed")

import workhorse
from workhorse._dask._context import DaskContext

__all__ = ["cluster", "no_leaks"]

WORKERS = 2
RECOVERY = 15.0  # seconds a killed worker may take to come back (about 1 s here)
# Threads Dask starts on demand and keeps (the client's loop, its callback and offload pools,
# the nanny's watchers of each worker process).
DASK_THREADS = ("IO loop", "Dask-", "AsyncProcess", "QueueFeederThread", "TCP-Executor", "Profile")


def _worker_pids(cluster: DaskContext) -> set[int]:
    # A test may end while a worker it had killed is still dying (a stopped task's worker
    # is killed asynchronously): asking that one fails, so wait for the cluster and ask again.
    deadline = time.monotonic() + RECOVERY
    while True:
        try:
            return set(cluster.client.run(_getpid).values())
        except OSError:  # distributed's CommClosedError is one
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            _wait_for_workers(cluster)


def _getpid() -> int:
    import os

    return os.getpid()


def _wait_for_workers(cluster: DaskContext) -> None:
    deadline = time.monotonic() + RECOVERY
    while len(cluster.client.scheduler_info()["workers"]) < WORKERS:
        assert time.monotonic() < deadline, "the Dask cluster did not recover its workers"
        time.sleep(0.05)


_shared: list[DaskContext] = []  # one cluster per session, whichever module asks first


@pytest.fixture(scope="session")
def cluster() -> Iterator[DaskContext]:
    """The session's embedded cluster: two worker processes, one thread each.

    Each test module imports this fixture, so pytest sees one definition per module: they
    share the one cluster, and the last to finish closes it."""
    if not _shared:
        context = workhorse.dask(n_workers=WORKERS)
        _wait_for_workers(context)
        _shared.append(context)
    _shared.append(_shared[0])
    yield _shared[0]
    _shared.pop()
    if len(_shared) == 1:
        _shared.pop().close()


def _children(cluster: DaskContext) -> set[int]:
    allowed = _worker_pids(cluster)
    found = set()
    for child in psutil.Process().children(recursive=True):
        if child.pid in allowed:
            continue
        try:
            cmdline = " ".join(child.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if "resource_tracker" in cmdline or "forkserver" in cmdline:
            continue
        found.add(child.pid)
    return found


def _describe(pids: set[int]) -> list[str]:
    out = []
    for pid in sorted(pids):
        try:
            process = psutil.Process(pid)
            out.append(f"{pid} {process.status()} {' '.join(process.cmdline())[:200]}")
        except psutil.Error as exc:
            out.append(f"{pid} ({exc})")
    return out


def _threads() -> set[str]:
    return {
        t.name
        for t in threading.enumerate()
        if t is not threading.main_thread() and t.is_alive() and not t.name.startswith(DASK_THREADS)
    }


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """The Dask suite's leak guard (see the module docstring)."""
    cluster: Any = request.getfixturevalue("cluster")
    threads = _threads()
    yield
    _wait_for_workers(cluster)
    # a worker the test killed is replaced by a new process, which is a child of ours but
    # not a worker until it has registered (about 1 s, longer on a busy machine)
    deadline = time.monotonic() + RECOVERY
    while time.monotonic() < deadline and (_children(cluster) or _threads() - threads):
        time.sleep(0.02)
    left = _children(cluster)
    assert not left, f"test left child processes running: {_describe(left)}"
    assert not _threads() - threads, f"test left threads running: {_threads() - threads}"
