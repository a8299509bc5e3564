"""Per-task timeouts and cancelling running tasks: the task really stops (process pools kill
and replace the worker), its future fails on time, the other tasks go on."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import psutil
import pytest

import workhorse

from ._helpers import (
    BOUND,
    FORK,
    double,
    no_fd_leak,  # noqa: F401  (autouse)
    pid_of_worker,
    wait_then,
    wait_until,
)


def _ignore_sigterm_and_wait(started: Any, gate: Any) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    started.set()
    gate.wait(BOUND)
    return os.getpid()


def _report_pid_and_wait(pid_box: Any, started: Any, gate: Any) -> str:
    pid_box.put(os.getpid())
    started.set()
    gate.wait(BOUND)
    return "finished"


@pytest.mark.parametrize("ignore_sigterm", [False, True])
def test_timeout_stops_the_task_and_replaces_its_worker(ignore_sigterm: bool) -> None:
    gate, started, pid_box = workhorse.Event(), workhorse.Event(), workhorse.Queue()
    with workhorse.ProcessPoolExecutor(2) as pool:
        quick = pool.with_options(timeout=0.5)
        slow: concurrent.futures.Future[Any]
        if ignore_sigterm:
            slow = quick.submit(_ignore_sigterm_and_wait, started, gate)
        else:
            slow = quick.submit(_report_pid_and_wait, pid_box, started, gate)
        assert started.wait(BOUND)
        others = [pool.submit(double, i) for i in range(20)]
        began = time.monotonic()
        with pytest.raises(workhorse.TaskTimeout, match=r"timeout of 0.5 s.*killed and replaced"):
            slow.result(timeout=BOUND)
        assert time.monotonic() - began < 5
        assert [f.result(timeout=BOUND) for f in others] == [2 * i for i in range(20)]
        if not ignore_sigterm:
            old_pid = pid_box.get(timeout=BOUND)
            pids = {pool.submit(pid_of_worker).result(timeout=BOUND) for _ in range(10)}
            assert old_pid not in pids
        assert isinstance(slow.exception(), TimeoutError)  # the stdlib's type still catches it


def test_timeout_applies_per_item_inside_a_batch() -> None:
    gate = workhorse.Event()
    with workhorse.ProcessPoolExecutor(2, mp_context=FORK, chunksize=8, timeout=0.5) as pool:
        futures = [pool.submit(double, i) for i in range(30)]
        stuck = pool.submit(wait_then, gate)
        futures += [pool.submit(double, i) for i in range(30, 60)]
        with pytest.raises(workhorse.TaskTimeout):
            stuck.result(timeout=BOUND)
        assert [f.result(timeout=BOUND) for f in futures] == [2 * i for i in range(60)]


def test_timeout_half_of_apply_async_tasks_time_out_others_return() -> None:
    gate = workhorse.Event()
    with workhorse.Pool(2, context=FORK, timeout=0.3) as pool:
        stuck = [pool.apply_async(wait_then, (gate,)) for _ in range(3)]
        fine = [pool.apply_async(double, (i,)) for i in range(3)]
        for result in stuck:
            with pytest.raises(workhorse.TaskTimeout):
                result.get(timeout=BOUND)
        assert [r.get(timeout=BOUND) for r in fine] == [0, 2, 4]


def test_timeout_with_retries_runs_the_task_again() -> None:
    gate = workhorse.Event()
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK) as pool:
        view = pool.with_options(timeout=0.2, retries=2)
        began = time.monotonic()
        with pytest.raises(workhorse.TaskTimeout):
            view.submit(wait_then, gate).result(timeout=BOUND)
        assert time.monotonic() - began >= 0.6  # three attempts of 0.2 s each


def test_timeout_thread_pool_fails_the_future_on_time() -> None:
    """A thread cannot be killed: the future fails on time, the thread is abandoned (and
    replaced) and exits when its task returns -- here, when the gate opens."""
    gate = threading.Event()
    with workhorse.ThreadPoolExecutor(2, timeout=0.2) as pool:
        stuck = pool.submit(gate.wait, BOUND)
        others = [pool.submit(double, i) for i in range(10)]
        began = time.monotonic()
        with pytest.raises(workhorse.TaskTimeout, match="a thread cannot be killed"):
            stuck.result(timeout=BOUND)
        assert time.monotonic() - began < 2
        assert [f.result(timeout=BOUND) for f in others] == [2 * i for i in range(10)]
        gate.set()


def test_timeout_thread_pool_stops_a_task_blocked_in_a_workhorse_call() -> None:
    gate = workhorse.threads.Event()
    with workhorse.ThreadPool(1, timeout=0.2) as pool:
        with pytest.raises(workhorse.TaskTimeout):
            pool.apply(gate.wait, (BOUND,))
        assert pool.apply(double, (3,)) == 6  # the abandoned thread was cancelled and replaced


def test_cancel_running_task_keeps_the_stdlib_meaning_by_default() -> None:
    """``cancel()`` of a running task returns False and the task completes, as with the
    stdlib; stopping it is what ``cancel_running=True`` asks for."""
    gate, started, pid_box = workhorse.Event(), workhorse.Event(), workhorse.Queue()
    with workhorse.ProcessPoolExecutor(1) as pool:
        running = pool.submit(_report_pid_and_wait, pid_box, started, gate)
        assert started.wait(BOUND)
        assert running.cancel() is False
        assert running.running()
        gate.set()
        assert running.result(timeout=BOUND) == "finished"
    thread_gate, thread_started = threading.Event(), threading.Event()
    with workhorse.ThreadPoolExecutor(1) as threads:
        task = threads.submit(wait_then, thread_gate, thread_started, "done")
        assert thread_started.wait(BOUND)
        assert task.cancel() is False
        thread_gate.set()
        assert task.result(timeout=BOUND) == "done"


def test_cancel_running_process_task_kills_and_replaces_its_worker() -> None:
    gate, started, pid_box = workhorse.Event(), workhorse.Event(), workhorse.Queue()
    with workhorse.ProcessPoolExecutor(1, cancel_running=True) as pool:
        running = pool.submit(_report_pid_and_wait, pid_box, started, gate)
        queued = pool.submit(double, 5)
        assert started.wait(BOUND)
        old_pid = pid_box.get(timeout=BOUND)
        assert running.running()
        assert running.cancel() is True
        assert running.cancelled()
        with pytest.raises(concurrent.futures.CancelledError):
            running.result(timeout=BOUND)
        assert queued.result(timeout=BOUND) == 10  # the replacement worker ran it
        assert pool.submit(pid_of_worker).result(timeout=BOUND) != old_pid


def test_cancel_running_thread_task_returns_true_and_abandons_it() -> None:
    gate, started = threading.Event(), threading.Event()
    with workhorse.ThreadPoolExecutor(1, cancel_running=True) as pool:
        running = pool.submit(wait_then, gate, started)
        assert started.wait(BOUND)
        assert running.cancel() is True
        assert pool.submit(double, 2).result(timeout=BOUND) == 4
        gate.set()


def test_cancel_finished_task_returns_false() -> None:
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK) as pool:
        future = pool.submit(double, 1)
        assert future.result(timeout=BOUND) == 2
        assert future.cancel() is False


def test_cancel_queued_tasks_skips_them_without_a_hang() -> None:
    gate = workhorse.Event()
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK) as pool:
        blocker = pool.submit(wait_then, gate, None, "done")
        queued = [pool.submit(double, i) for i in range(20)]
        for future in queued[:10]:
            assert future.cancel()
        gate.set()
        assert blocker.result(timeout=BOUND) == "done"
        assert [f.result(timeout=BOUND) for f in queued[10:]] == [2 * i for i in range(10, 20)]


def test_executor_map_timeout_raises_and_cancels_the_rest() -> None:
    gate = workhorse.Event()
    with workhorse.ProcessPoolExecutor(2, mp_context=FORK) as pool:
        results = pool.map(wait_then, [gate], timeout=0.5)
        with pytest.raises(TimeoutError):
            list(results)
        gate.set()


# -- issue 10 item 7: what a stopped task started is stopped with it ----------------------


def _start_a_child_and_wait(pid_box: Any, gate: Any) -> str:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    pid_box.put(child.pid)
    gate.wait(BOUND)
    return "finished"


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("how", ["timeout", "cancel", "terminate"])
def test_a_stopped_task_takes_the_processes_it_started_along(how: str) -> None:
    """A task past its timeout, cancelled while running (``cancel_running=True``), or on a
    terminated pool is stopped with its subprocesses (the worker leads a process group),
    where killing the worker alone left them running for good."""
    gate, pid_box = workhorse.Event(), workhorse.Queue()
    options: dict[str, Any] = {"timeout": 1.0} if how == "timeout" else {"cancel_running": True}
    pool = workhorse.ProcessPoolExecutor(1, mp_context=FORK, **options)
    try:
        future = pool.submit(_start_a_child_and_wait, pid_box, gate)
        child = pid_box.get(timeout=BOUND)
        assert not _gone(child)
        if how == "cancel":
            assert future.cancel()
        elif how == "terminate":
            pool.terminate()
        else:
            with pytest.raises(workhorse.TaskTimeout):
                future.result(timeout=BOUND)
        wait_until(lambda: _gone(child), f"the task's child {child} to be stopped too")
    finally:
        gate.set()
        pool.shutdown(wait=True)
