"""Shutdown in every form -- cancel_futures, from a done-callback, after garbage collection,
at interpreter exit -- and done-callbacks that misbehave: no hang, no leak, no lost task."""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import workhorse

from ._helpers import (
    BOUND,
    FORK,
    double,
    no_fd_leak,  # noqa: F401  (autouse)
    read_lines,
    wait_then,
)

EXECUTORS = [
    pytest.param(lambda: workhorse.ProcessPoolExecutor(2, mp_context=FORK), id="process"),
    pytest.param(lambda: workhorse.ThreadPoolExecutor(2), id="thread"),
]


@pytest.mark.parametrize("make", EXECUTORS)
def test_shutdown_cancel_futures_without_wait(make: Any) -> None:
    gate, started = workhorse.Event(), [workhorse.Event(), workhorse.Event()]
    pool = make()
    running = [pool.submit(wait_then, gate, event, "ran") for event in started]
    assert all(event.wait(BOUND) for event in started)
    queued = [pool.submit(double, i) for i in range(50)]
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert [f.result(timeout=BOUND) for f in running] == ["ran", "ran"]
    concurrent.futures.wait(queued, timeout=BOUND)
    assert all(f.done() for f in queued)
    assert sum(f.cancelled() for f in queued) > 20
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        pool.submit(double, 1)
    pool.shutdown(wait=True)


@pytest.mark.parametrize("make", EXECUTORS)
def test_shutdown_from_inside_a_done_callback(make: Any) -> None:
    pool = make()
    called = threading.Event()

    def stop(_: concurrent.futures.Future[Any]) -> None:
        pool.shutdown(wait=True)  # from the manager (or worker) thread: must not deadlock
        called.set()

    first = pool.submit(double, 1)
    first.add_done_callback(stop)
    assert called.wait(BOUND)
    with pytest.raises(RuntimeError):
        pool.submit(double, 2)
    pool.shutdown(wait=True)


def test_shutdown_wait_runs_every_queued_task() -> None:
    pool = workhorse.ProcessPoolExecutor(2, mp_context=FORK)
    futures = [pool.submit(double, i) for i in range(500)]
    pool.shutdown(wait=True)
    assert [f.result(timeout=0) for f in futures] == [2 * i for i in range(500)]


def test_shutdown_garbage_collected_executor_still_completes_its_work() -> None:
    pool = workhorse.ProcessPoolExecutor(2, mp_context=FORK)
    futures = [pool.submit(double, i) for i in range(100)]
    del pool
    gc.collect()
    assert [f.result(timeout=BOUND) for f in futures] == [2 * i for i in range(100)]
    # the leak guard checks that the workers and the manager thread are gone


def test_shutdown_garbage_collected_pool_reports_a_later_crash() -> None:
    gate = workhorse.Event()
    pool = workhorse.ProcessPoolExecutor(1, mp_context=FORK)
    blocked = pool.submit(wait_then, gate, None, "ran")
    crash = pool.submit(_crash)
    after = pool.submit(double, 4)
    del pool
    gc.collect()
    gate.set()
    assert blocked.result(timeout=BOUND) == "ran"
    with pytest.raises(workhorse.WorkerCrashed):
        crash.result(timeout=BOUND)
    assert after.result(timeout=BOUND) == 8


def _crash() -> None:
    import os

    os._exit(3)


def test_shutdown_interpreter_exit_with_pending_work(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, workhorse
        def write(path):
            open(path, "w").write("apple")
        if __name__ == "__main__":
            pool = workhorse.ProcessPoolExecutor(2)
            for i in range(8):
                pool.submit(write, f"{sys.argv[1]}/out-{i}")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert sorted(p.read_text() for p in tmp_path.glob("out-*")) == ["apple"] * 8


@pytest.mark.parametrize("make", EXECUTORS)
@pytest.mark.parametrize("error", [ValueError, SystemExit])
def test_done_callback_raising_is_logged_and_the_pool_goes_on(
    make: Any, error: type[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    def bad(_: concurrent.futures.Future[Any]) -> None:
        raise error(3)  # a fresh instance: its traceback must not outlive the test

    gate = workhorse.Event()
    with make() as pool:
        future = pool.submit(wait_then, gate, None, 2)
        future.add_done_callback(bad)
        future.add_done_callback(lambda f: seen.append(f.result()))
        gate.set()  # the callbacks run in the pool's thread, not here
        assert future.result(timeout=BOUND) == 2
        assert [f.result(timeout=BOUND) for f in [pool.submit(double, i) for i in range(10)]] == [
            2 * i for i in range(10)
        ]
    assert seen == [2]  # the callback after the bad one still ran
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert any("done-callback" in r.getMessage() for r in logged)
    for record in caplog.records:  # pytest keeps records (and their tracebacks' frames)
        record.exc_text = (
            logging.Formatter().formatException(record.exc_info) if record.exc_info else None
        )
        record.exc_info = None


@pytest.mark.parametrize("make", EXECUTORS)
def test_done_callbacks_submitting_more_work_complete(make: Any) -> None:
    done = threading.Event()
    results: list[int] = []

    with make() as pool:

        def chain(future: concurrent.futures.Future[int]) -> None:
            results.append(future.result())
            if len(results) < 50:
                pool.submit(double, len(results)).add_done_callback(chain)
            else:
                done.set()

        for _ in range(3):
            pool.submit(double, 0).add_done_callback(chain)
        assert done.wait(BOUND)
    assert len(results) >= 50


def test_shutdown_is_idempotent_and_terminate_after_shutdown_is_harmless() -> None:
    pool = workhorse.ProcessPoolExecutor(1, mp_context=FORK)
    assert pool.submit(double, 2).result(timeout=BOUND) == 4
    pool.shutdown()
    pool.shutdown()
    pool.terminate()


def test_initializer_raising_breaks_the_pool_without_a_crash_loop(tmp_path: Path) -> None:
    log = tmp_path / "starts"
    # The initializers wait for this, so every task is queued before the pool breaks.
    go = workhorse.Event()
    pool = workhorse.ProcessPoolExecutor(2, mp_context=FORK, initializer=_failing_init,
                                         initargs=(str(log), go))  # fmt: skip
    futures = [pool.submit(double, i) for i in range(10)]
    go.set()
    for future in futures:
        with pytest.raises(workhorse.PoolBroken, match=r"initializer raised.*ValueError") as info:
            future.result(timeout=BOUND)
        assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(workhorse.PoolBroken):
        pool.submit(double, 1)
    pool.shutdown()
    assert len(read_lines(log)) <= 2  # one start per worker slot, no fork loop


def test_initializer_crashing_breaks_the_pool_after_a_few_starts(tmp_path: Path) -> None:
    log = tmp_path / "starts"
    pool = workhorse.Pool(2, _crashing_init, (str(log),), context=FORK)
    with pytest.raises(workhorse.PoolBroken, match="keep dying while they start"):
        pool.apply(double, (1,))
    pool.terminate()
    assert len(read_lines(log)) <= 5


def _failing_init(log: str, go: workhorse.Event) -> None:
    with open(log, "a") as f:
        f.write("start\n")
    go.wait(BOUND)
    raise ValueError("error in initializer")


def _crashing_init(log: str) -> None:
    with open(log, "a") as f:
        f.write("start\n")
    import os

    os._exit(7)
