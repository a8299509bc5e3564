"""``pool.stats()``: the same counts on every backend (the Dask one is in tests/dask), worker
exits by cause, busy time and pickling time, views reporting their pool's."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import CancelledError
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workhorse

BOUND = 30
BACKENDS = ["processes", "threads", "serial"]


def fails_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(x)
    return x


def exits_on_five(x: int) -> int:
    if x == 5:
        os._exit(3)
    return x


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def spin(seconds: float) -> float:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return seconds


def flaky(path: str) -> str:
    if not os.path.exists(path):
        open(path, "w").close()
        raise ConnectionError("first try")
    return "ok"


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_outcome_is_counted_once(backend: str, tmp_path: os.PathLike[str]) -> None:
    with workhorse.Pool(2, backend=backend) as pool:
        assert pool.map(abs, range(100)) == list(range(100))
        with pytest.raises(ValueError):
            pool.map(fails_on_three, range(10))
        assert list(pool.imap(abs, range(50))) == list(range(50))
        view = pool.with_options(retries=1)
        assert view.apply(flaky, (str(tmp_path) + "/flag",)) == "ok"
        stats = pool.stats()
        seen = view.stats()  # a view reports its pool's
        assert (seen.submitted, seen.done, seen.workers_started) == (
            stats.submitted, stats.done, stats.workers_started,
        )  # fmt: skip
    assert (stats.submitted, stats.done, stats.failed, stats.cancelled) == (161, 160, 1, 0)
    assert stats.retried == 1
    assert stats.timed_out == 0
    assert stats.pending == 0
    assert sum(w.tasks for w in stats.workers) >= stats.done  # a retried try ran too


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancelled_futures_and_dropped_tasks_are_counted(backend: str) -> None:
    gate = workhorse.Event()
    with workhorse.ThreadPoolExecutor(1, backend=backend) as pool:
        if backend == "serial":  # runs inline: nothing is ever queued to cancel
            pool.submit(abs, -1).result()
            assert pool.stats().cancelled == 0
            return
        busy = pool.submit(gate.wait, BOUND)
        queued = [pool.submit(abs, i) for i in range(5)]
        assert all(f.cancel() for f in queued)
        gate.set()
        assert busy.result(timeout=BOUND)
    stats = pool.stats()
    assert (stats.submitted, stats.done, stats.cancelled, stats.pending) == (6, 1, 5, 0)


def test_queued_tasks_cancelled_at_shutdown_are_counted() -> None:
    pool = workhorse.ProcessPoolExecutor(1)
    first = pool.submit(nap, 0.2)
    rest = [pool.submit(nap, 0) for _ in range(10)]
    pool.shutdown(wait=True, cancel_futures=True)
    stats = pool.stats()
    ran = sum(1 for f in [first, *rest] if not f.cancelled())
    assert stats.cancelled == 11 - ran
    assert stats.done == ran
    assert stats.pending == 0
    for future in rest:
        if future.cancelled():
            with pytest.raises(CancelledError):
                future.result()


def test_worker_exits_are_counted_by_cause(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="workhorse")
    with workhorse.Pool(2, max_tasks_per_worker=5, timeout=0.5) as pool:
        assert pool.map(abs, range(20), chunksize=1) == list(range(20))
        # a worker at its task limit retires; it must not be taken for a crash
        assert not caplog.records, [r.getMessage() for r in caplog.records]
        with pytest.raises(workhorse.WorkerCrashed):
            pool.map(exits_on_five, range(8), chunksize=1)
        with pytest.raises(workhorse.TaskTimeout):
            pool.apply(nap, (BOUND,))
        during = pool.stats()
    after = pool.stats()
    assert during.worker_exits["crashed"] == 1
    assert during.worker_exits["timeout"] == 1
    assert during.worker_exits["task limit"] >= 4  # 20 tasks, 5 per worker
    assert during.timed_out == 1
    assert during.failed == 2
    alive = sum(1 for w in during.workers if w.exit is None)
    assert during.workers_started == sum(during.worker_exits.values()) + alive
    assert after.worker_exits["shutdown"] == 2
    assert all(w.exit is not None for w in after.workers)


def test_an_idle_worker_that_stops_is_counted() -> None:
    with workhorse.ProcessPoolExecutor(1, idle_timeout=0.05) as pool:
        pool.submit(abs, 1).result(timeout=BOUND)
        deadline = time.monotonic() + BOUND
        while pool.stats().worker_exits.get("idle", 0) == 0:
            assert time.monotonic() < deadline, pool.stats()
            time.sleep(0.01)  # slack: the pool's own timer decides
        assert pool.submit(abs, -2).result(timeout=BOUND) == 2  # a new worker on demand
        assert pool.stats().workers_started == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_busy_time_is_what_the_tasks_took(backend: str) -> None:
    with workhorse.Pool(2, backend=backend) as pool:
        start = time.perf_counter()
        pool.map(spin, [0.05] * 4, chunksize=1)
        wall = time.perf_counter() - start
        stats = pool.stats()
    assert 0.2 <= stats.busy <= wall * 2 + 0.05
    assert sum(w.busy for w in stats.workers) == pytest.approx(stats.busy)
    for worker in stats.workers:
        assert 0.0 <= worker.idle <= worker.alive
        assert 0.0 <= worker.utilization <= 1.0
    if backend == "processes":
        assert stats.serialization > 0  # pickled arguments and results
    else:
        assert stats.serialization == 0


@settings(max_examples=25, deadline=None)
@given(outcomes=st.lists(st.booleans(), max_size=40), retries=st.integers(0, 2))
def test_done_and_failed_add_up_to_what_was_submitted(outcomes: list[bool], retries: int) -> None:
    items = [i if ok else 3 for i, ok in enumerate(outcomes) if i != 3]
    with workhorse.ThreadPool(2, retries=retries, retry_on=ValueError) as pool:
        results = pool.map_async(fails_on_three, items)
        results.wait(BOUND)
        stats = pool.stats()
    failures = items.count(3)
    assert stats.submitted == len(items)
    assert stats.failed == failures
    assert stats.done == len(items) - failures
    assert stats.retried == failures * retries
    assert stats.pending == 0


_hoard: list[bytearray] = []


def leak(megabytes: int) -> int:
    _hoard.append(bytearray(megabytes << 20))  # touched: resident, not just reserved
    return len(_hoard)


def test_a_worker_that_grows_past_the_limit_is_replaced_and_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="workhorse")
    monkeypatch.setenv("WORKHORSE_WORKER_MEMORY_GROWTH", str(20 << 20))
    with workhorse.Pool(1) as pool:
        deadline = time.monotonic() + BOUND
        while pool.stats().worker_exits.get("memory", 0) < 2:
            assert time.monotonic() < deadline, pool.stats()
            pool.apply(leak, (30,))
            time.sleep(0.05)  # slack: the worker looks at its memory once a second
    warnings = [r.getMessage() for r in caplog.records if r.name == "workhorse.processes"]
    assert len(warnings) == 1, warnings
    assert "a likely memory leak" in warnings[0]


@pytest.mark.parametrize("backend", ["processes", "threads"])
def test_the_rest_of_a_map_stopped_early_is_counted_as_cancelled(backend: str) -> None:
    with workhorse.ProcessPoolExecutor(2, backend=backend) as pool:
        results: Any = pool.map(nap, [0.01] * 400)
        assert next(results) == 0.01
        results.close()  # the stdlib's way to stop reading: the rest is cancelled
        del results
        deadline = time.monotonic() + BOUND
        while pool.stats().pending:
            assert time.monotonic() < deadline, pool.stats()
            time.sleep(0.01)  # slack: the running batches finish on their own
        stats = pool.stats()
    assert stats.submitted == stats.done + stats.cancelled
    assert stats.cancelled > 0


@pytest.mark.parametrize("value", ["0", "off"])
def test_per_task_counting_can_be_turned_off_for_measuring_its_cost(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKHORSE_STATS", value)
    with workhorse.ProcessPoolExecutor(2) as pool:
        assert list(pool.map(abs, range(-50, 0))) == list(range(50, 0, -1))
        assert pool.submit(abs, -1).result(timeout=30) == 1
        stats = pool.stats()
    assert (stats.submitted, stats.done, stats.busy) == (0, 0, 0.0)
    assert stats.workers_started == 2  # worker starts and exits are still counted
    monkeypatch.delenv("WORKHORSE_STATS")
    with workhorse.ThreadPool(2) as thread_pool:  # read when a pool is created
        thread_pool.map(abs, range(10))
        assert thread_pool.stats().done == 10
