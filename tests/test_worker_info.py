"""``workhorse.worker()``: ids a replacement keeps, state for the worker's life (set up by the
initializer), the same on every backend (the Dask one is in tests/dask)."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import workhorse

BOUND = 30
BACKENDS = ["processes", "threads", "serial"]


def whoami(_: object = None) -> tuple[Any, str, str | None, int]:
    info = workhorse.worker()
    assert info is not None
    info.state["calls"] = info.state.get("calls", 0) + 1
    return info.id, info.backend, info.start_method, info.state["calls"]


def init_state() -> None:
    info = workhorse.worker()
    assert info is not None
    info.state["calls"] = 1000


def meet(barrier: Any) -> tuple[Any, int]:
    """Both workers at once: each reports its id and pid."""
    barrier.wait(BOUND)
    info = workhorse.worker()
    assert info is not None
    return info.id, info.pid


def from_a_child(queue: Any) -> None:
    queue.put(workhorse.worker() is None)


def forks_a_child(queue: Any) -> bool:
    child = multiprocessing.get_context("fork").Process(target=from_a_child, args=(queue,))
    child.start()
    child.join(BOUND)
    return bool(queue.get(timeout=BOUND))


def test_outside_a_pool_there_is_no_worker() -> None:
    assert workhorse.worker() is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_tasks_see_their_worker_and_its_state(backend: str) -> None:
    with workhorse.Pool(2, backend=backend, initializer=init_state) as pool:
        seen = pool.map(whoami, range(40), chunksize=1)
    ids = {s[0] for s in seen}
    assert ids <= {0, 1}
    assert {s[1] for s in seen} == {backend}
    calls = sorted(s[3] for s in seen)
    assert calls[0] > 1000  # the initializer's state, kept across the worker's tasks
    assert len(calls) == len(set(calls)) or len(ids) > 1
    start_methods = {s[2] for s in seen}
    assert start_methods == (
        {multiprocessing.get_start_method()} if backend == "processes" else {None}
    )
    assert workhorse.worker() is None  # the serial backend runs here, but only tasks see it


def test_every_start_method_reports_its_own(start_method: str) -> None:
    with workhorse.ProcessPoolExecutor(1, mp_context=workhorse.get_context(start_method)) as pool:
        assert pool.submit(whoami).result(timeout=BOUND)[2] == start_method


def test_a_replacement_takes_the_id_of_the_worker_it_replaces() -> None:
    with workhorse.Pool(2) as pool:
        before = dict(pool.map(meet, [workhorse.Barrier(2)] * 2, chunksize=1))
        assert set(before) == {0, 1}
        os.kill(before[1], signal.SIGKILL)
        deadline = time.monotonic() + BOUND
        while pool.stats().workers_started < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)  # slack: the pool notices the death in its own thread
        after = dict(pool.map(meet, [workhorse.Barrier(2)] * 2, chunksize=1))
    assert set(after) == {0, 1}
    assert after[0] == before[0]
    assert after[1] != before[1]


def test_a_thread_replaced_at_its_task_limit_keeps_its_id() -> None:
    with workhorse.ThreadPool(1, max_tasks_per_worker=2) as pool:
        seen = pool.map(whoami, range(6), chunksize=1)
    assert {s[0] for s in seen} == {0}
    assert [s[3] for s in seen] == [1, 2, 1, 2, 1, 2]  # each new thread, a new state


def test_a_process_a_task_forks_is_not_a_worker() -> None:
    with workhorse.Pool(1, context=workhorse.get_context("fork")) as pool:
        assert pool.apply(forks_a_child, (workhorse.Queue(),))


def record_exit(path: str) -> None:
    info = workhorse.worker()
    assert info is not None
    with open(path, "a") as f:
        f.write(f"{info.backend} {info.id} {info.state.get('calls', 0)}\n")


_release = threading.Event()


def hang() -> None:
    _release.wait(BOUND)  # released by the test once the pool has gone on without it


def raise_on_exit() -> None:
    raise RuntimeError("the exit hook failed")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_exit_hook_runs_once_per_worker_that_leaves_in_order(
    backend: str, tmp_path: Any
) -> None:
    path = str(tmp_path / "exits")
    hook = functools.partial(record_exit, path)
    with workhorse.Pool(2, backend=backend, worker_exit=hook, max_tasks_per_worker=5) as pool:
        assert pool.map(whoami, range(12), chunksize=1)
        pool.close()
        pool.join()
    lines = [line.split() for line in Path(path).read_text().splitlines()]
    assert {line[0] for line in lines} == {backend}
    assert sum(int(line[2]) for line in lines) == 12  # each worker's state, seen at its exit
    assert all(int(line[2]) <= 5 for line in lines)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_exit_hook_that_hangs_does_not_hang_the_pool(backend: str) -> None:
    _release.clear()
    start = time.monotonic()
    with workhorse.ProcessPoolExecutor(2, backend=backend, worker_exit=hang) as pool:
        assert pool.submit(abs, -1).result(timeout=BOUND) == 1
    assert time.monotonic() - start < BOUND / 2  # the hook's 2 s, not its 30
    _release.set()
    for thread in threading.enumerate():
        if thread.name == "workhorse-worker-exit":
            thread.join(BOUND)


@pytest.mark.parametrize("backend", ["threads", "serial"])
def test_an_exit_hook_that_raises_is_logged(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    with workhorse.ThreadPoolExecutor(1, backend=backend, worker_exit=raise_on_exit) as pool:
        assert pool.submit(abs, -1).result(timeout=BOUND) == 1
    [record] = [r for r in caplog.records if "worker_exit hook" in r.getMessage()]
    assert record.exc_info is not None
    assert "the exit hook failed" in str(record.exc_info[1])


def test_bad_exit_hooks_are_refused() -> None:
    with pytest.raises(TypeError, match="worker_exit must be callable, not int"):
        workhorse.ThreadPool(1, worker_exit=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the dask backend does not take worker_exit"):
        workhorse.Pool(1, backend="dask", worker_exit=hang)
