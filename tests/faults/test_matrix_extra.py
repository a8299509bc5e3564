"""Lines of the fault matrix (``fault-matrix.md`` §1) that had no test of their own: a worker
killed with a half-cancelled backlog (B2), the manager thread crashing (B8), worker starts
failing (B9), the stdlib's forkserver and resource tracker killed (B10), forced stop (D9),
shutdown races (D10), stopping with 100 MB in flight (D11), signals during blocking calls
(H2), BLAS threads, stdin and faulthandler in workers (I5) and cyclic garbage in workers (E5).

Everything goes through the public API, except two injections that no public call can cause
(the manager thread crashing, a worker start failing): those patch one private method of
the engine each, named in ``_MANAGER_STEP`` and ``_WORKER_START`` below.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import faulthandler
import functools
import gc
import itertools
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import types
import warnings
import weakref
from collections.abc import Callable, Iterator
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any
from unittest import mock

import psutil
import pytest

import workhorse
from workhorse._backends.process._core import ProcessEngine
from workhorse._backends.process._template import TEMPLATE_NAME

from ._helpers import (
    BOUND,
    FORK,
    CrashError,
    crash_on,
    double,
    gone,
    no_fd_leak,  # noqa: F401  (autouse)
    run_fault,
    shm_of,
    wait_then,
    wait_until,
)

STOP_BOUND = 5.0  # seconds a forced stop may take (the matrix's limit)
BIG = 100 * 2**20  # bytes in a "100 MB argument"

# The engine's private hooks used for the two injected faults. If the engine is rewritten,
# point these at the new names (the tests fail loudly, not silently, when they are gone).
_MANAGER_STEP = "_dispatch"  # called by the manager thread on every turn of its loop
_WORKER_START = "_start_worker"  # (self, slot): starts one worker process


def _private_hook(name: str) -> Callable[..., Any]:
    hook: Callable[..., Any] | None = getattr(ProcessEngine, name, None)
    assert callable(hook), f"ProcessEngine.{name} is gone: update the hook names in this file"
    return hook


def _context(method: str) -> Any:
    return multiprocessing.get_context(method)


def _report_pid_and_wait(pid_box: Any, started: Any, gate: Any) -> str:
    pid_box.put(os.getpid())
    started.set()
    gate.wait(BOUND)
    return "finished"


def _blocked_task(submit: Callable[..., Any], gate: Any) -> tuple[Any, int]:
    """Start a task that blocks on ``gate``; return its future (or AsyncResult) and the pid of
    the worker running it."""
    started, pid_box = workhorse.Event(), workhorse.Queue()
    handle = submit(_report_pid_and_wait, pid_box, started, gate)
    assert started.wait(BOUND)
    pid: int = pid_box.get(timeout=BOUND)
    return handle, pid


def _descendants() -> set[int]:
    """Our child processes, recursively, without the stdlib's session-long helpers and the
    fork pools' templates: the pool workers, that is."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
            name = child.name()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        helper = "resource_tracker" in cmdline or "forkserver" in cmdline
        if not helper and name != TEMPLATE_NAME:
            found.add(child.pid)
    return found


def _all_gone(pids: set[int]) -> bool:
    return all(gone(pid) for pid in pids)


# -- B2: SIGKILL mid-task with 2 x workers + 50 queued tasks, some of them cancelled ---------


def test_worker_sigkilled_with_a_partly_cancelled_backlog_fails_only_its_task(
    start_method: str,
) -> None:
    """loky breaks the pool and fails every remaining future (gh-107219); workhorse fails the
    killed task only: cancelled futures stay cancelled, every other one completes."""
    workers = 2
    gate = workhorse.Event()
    with workhorse.ProcessPoolExecutor(workers, mp_context=_context(start_method)) as pool:
        victim, pid = _blocked_task(pool.submit, gate)
        survivor, _ = _blocked_task(pool.submit, gate)
        queued = [pool.submit(double, i) for i in range(2 * workers + 50)]
        cancelled = {i for i in range(len(queued)) if i % 3 == 0}
        assert all(queued[i].cancel() for i in cancelled)  # still queued: both workers busy
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(workhorse.WorkerCrashed, match="SIGKILL"):
            victim.result(timeout=BOUND)
        gate.set()
        assert survivor.result(timeout=BOUND) == "finished"
        for i, future in enumerate(queued):
            if i in cancelled:
                assert future.cancelled()
            else:
                assert future.result(timeout=BOUND) == 2 * i
        assert pool.submit(double, 21).result(timeout=BOUND) == 42  # still usable
    # leaving the block (shutdown) returned; the leak guard checks that nothing is left


# -- B8: the manager thread crashes ---------------------------------------------------------


def test_manager_thread_crash_breaks_the_pool_and_fails_every_pending_future() -> None:
    """Injected: the manager's scheduling step raises once (no public call can make the
    manager thread crash). Every unfinished future fails with ``PoolBroken`` naming the crash,
    with the crash as cause; ``submit`` then raises ``PoolBroken``; no worker is left."""
    real_step = _private_hook(_MANAGER_STEP)
    armed = threading.Event()
    injected = RuntimeError("injected crash of the manager thread")

    def crashing_step(self: ProcessEngine, *args: Any, **kwargs: Any) -> Any:
        if armed.is_set():
            armed.clear()
            raise injected
        return real_step(self, *args, **kwargs)

    gate = workhorse.Event()
    with mock.patch.object(ProcessEngine, _MANAGER_STEP, crashing_step):
        pool = workhorse.ProcessPoolExecutor(1, mp_context=FORK)
        running, _ = _blocked_task(pool.submit, gate)
        queued = [pool.submit(double, i) for i in range(5)]
        armed.set()
        try:  # wakes the manager, whose next turn crashes (it may have crashed already)
            queued.append(pool.submit(double, 99))
        except workhorse.PoolBroken:
            pass
        for future in [running, *queued]:
            with pytest.raises(workhorse.PoolBroken, match="manager thread crashed") as info:
                future.result(timeout=BOUND)
            assert info.value.__cause__ is injected
        with pytest.raises(workhorse.PoolBroken):
            pool.submit(double, 1)
        gate.set()
        pool.shutdown(wait=True)


# -- B9: a worker start fails ---------------------------------------------------------------


def _failing_starts(after: int) -> Any:
    """Patch the engine so that every worker start after the first ``after`` raises OSError
    (as ``fork()`` does when the process table or memory is exhausted)."""
    real_start = _private_hook(_WORKER_START)
    count = itertools.count()

    def start(self: ProcessEngine, *args: Any, **kwargs: Any) -> Any:
        if next(count) >= after:
            raise OSError(11, "injected: cannot start a worker")
        return real_start(self, *args, **kwargs)

    return mock.patch.object(ProcessEngine, _WORKER_START, start)


def _broken_or_done(future: concurrent.futures.Future[Any], value: Any) -> None:
    """The future completed with ``value`` or failed with ``PoolBroken``; never hangs.

    ``exception()``, not ``result()``: a raised exception's traceback would pin this frame
    (see ``test_manager_crash_does_not_pin_the_executor_forever`` for why that matters)."""
    error = future.exception(timeout=BOUND)
    if error is None:
        assert future.result(timeout=0) == value
    else:
        assert isinstance(error, workhorse.PoolBroken), repr(error)
        assert isinstance(error.__cause__, OSError), repr(error.__cause__)


def test_replacement_worker_failing_to_start_fails_the_queue_without_hanging() -> None:
    gate = workhorse.Event()
    with _failing_starts(after=1):
        pool = workhorse.ProcessPoolExecutor(1, mp_context=FORK)
        victim, pid = _blocked_task(pool.submit, gate)
        queued = [pool.submit(double, i) for i in range(5)]
        os.kill(pid, signal.SIGKILL)  # its replacement cannot start
        assert isinstance(victim.exception(timeout=BOUND), workhorse.WorkerCrashed)
        for i, future in enumerate(queued):
            _broken_or_done(future, 2 * i)
        try:
            later = pool.submit(double, 5)
        except workhorse.PoolBroken:
            pass  # refused at once: the pool is broken
        else:
            _broken_or_done(later, 10)
        pool.shutdown(wait=True)


def _use_a_pool_that_breaks() -> tuple[weakref.ref[Any], Any]:
    """Ordinary use of an executor whose manager thread crashes while it replaces a killed
    worker: ``result()`` raises here, then the pool is shut down and this frame returns.
    Returns a weak reference to the executor and the future of the killed task."""
    pool = workhorse.ProcessPoolExecutor(1, mp_context=FORK)
    victim = pool.submit(time.sleep, BOUND)
    wait_until(lambda: len(_descendants()) == 1, "the worker to start")
    (pid,) = _descendants()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises((workhorse.WorkerCrashed, workhorse.PoolBroken)):
        victim.result(timeout=BOUND)
    pool.shutdown(wait=True)
    return weakref.ref(pool), victim


def _executor_collected_after_a_failed_replacement(tmp_path: Path) -> bool:
    """Returns a bool only: a failing assertion's traceback, kept by pytest, must not pin the
    objects this test is about."""
    executor, victim = _use_a_pool_that_breaks()
    # The caller's own pin: result() raised the victim's exception through the frame that
    # held the pool (plain Python, with any executor). Dropped here, so that what is left is
    # what the pool itself keeps.
    error = victim.exception()
    assert error is not None
    error.__traceback__ = None
    del victim, error
    # Collecting the executor runs its finalizer, whose stray write
    # (test_a_finished_pool_writes_nothing_anywhere) must land in a dummy file.
    with _stray_write_catcher(tmp_path):
        gc.collect()
    return executor() is None


def test_manager_crash_does_not_pin_the_executor_forever(tmp_path: Path) -> None:
    with _failing_starts(after=1):
        collected = _executor_collected_after_a_failed_replacement(tmp_path)
    assert collected, "the shut-down executor is still alive after gc.collect()"


@pytest.mark.parametrize("kind", ["executor", "pool"])
def test_pool_creation_failing_at_the_second_worker_leaves_no_child(kind: str) -> None:
    """MP ``TestPoolNotLeakOnFailure``: the workers already started are stopped (the leak
    guard checks that no child is left); every call fails with ``PoolBroken``."""
    with _failing_starts(after=1):
        if kind == "executor":
            executor = workhorse.ProcessPoolExecutor(3, mp_context=FORK)
            with pytest.raises(workhorse.PoolBroken):
                executor.submit(double, 1).result(timeout=BOUND)
            with pytest.raises(workhorse.PoolBroken):
                executor.submit(double, 2)
            executor.shutdown(wait=True)
        else:
            pool = workhorse.Pool(3, context=FORK)
            with pytest.raises(workhorse.PoolBroken):
                pool.apply(double, (1,))
            pool.terminate()
            pool.join()


# -- B10: the forkserver and the resource tracker killed ------------------------------------


def _stdlib_helper(module: str) -> psutil.Process:
    """The child of this process running ``multiprocessing.<module>``'s main loop."""
    for child in psutil.Process().children():
        try:
            if f"from multiprocessing.{module} import main" in " ".join(child.cmdline()):
                return child
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    raise AssertionError(f"no multiprocessing.{module} process among our children")


def _kill_helper(module: str) -> int:
    helper = _stdlib_helper(module)
    helper.send_signal(signal.SIGKILL)
    # Not psutil's wait(): it would reap the helper, and multiprocessing's own waitpid on it
    # would then fail. A zombie counts as gone.
    wait_until(functools.partial(gone, helper.pid), f"the {module} to die")
    return helper.pid


def test_forkserver_killed_a_new_pool_and_process_still_start() -> None:
    forkserver = workhorse.with_start_method("forkserver")
    with forkserver.ProcessPoolExecutor(1) as pool:  # makes sure the forkserver runs
        assert pool.submit(double, 1).result(timeout=BOUND) == 2
    killed = _kill_helper("forkserver")
    with forkserver.ProcessPoolExecutor(2) as pool:
        assert list(pool.map(double, range(10))) == [2 * i for i in range(10)]
    process = forkserver.Process(target=double, args=(3,))
    process.start()
    assert process.result() == 6
    process.join(BOUND)
    assert _stdlib_helper("forkserver").pid != killed


def test_resource_tracker_killed_a_pool_still_works_and_leaks_no_shm() -> None:
    """The stdlib relaunches its tracker (with a warning) on the next registration; the pool
    works, and every /dev/shm entry is still removed (the leak guard checks)."""
    queue = workhorse.Queue()  # makes sure the tracker runs
    queue.put(1)
    assert queue.get(timeout=BOUND) == 1
    del queue
    gc.collect()
    killed = _kill_helper("resource_tracker")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with workhorse.ProcessPoolExecutor(2) as pool:
            assert list(pool.map(double, range(10))) == [2 * i for i in range(10)]
            queue = workhorse.Queue()
            assert pool.submit(_put_and_return, queue, 5).result(timeout=BOUND) == 5
            assert queue.get(timeout=BOUND) == 5
            del queue
    # 3.12+ also warns when it forks with threads running (the stdlib's fork does too).
    expected = ("resource_tracker", "is multi-threaded, use of fork()")
    unexpected = [w for w in caught if not any(e in str(w.message) for e in expected)]
    assert not unexpected, [str(w.message) for w in unexpected]
    with workhorse.Pool(2, context=FORK) as mp_pool:
        assert mp_pool.map(double, range(5)) == [0, 2, 4, 6, 8]
    assert _stdlib_helper("resource_tracker").pid != killed


def _put_and_return(queue: Any, value: int) -> int:
    queue.put(value)
    return value


# -- D9: forced stop ------------------------------------------------------------------------

POOLS = ["executor", "pool"]


def _make(kind: str, workers: int = 2, method: str = "fork") -> Any:
    if kind == "executor":
        return workhorse.ProcessPoolExecutor(workers, mp_context=_context(method))
    return workhorse.Pool(workers, context=_context(method))


def _submitter(pool: Any) -> Callable[..., Any]:
    if isinstance(pool, workhorse.Pool):
        return lambda fn, *args: pool.apply_async(fn, args)
    submit: Callable[..., Any] = pool.submit
    return submit


def _settled(handle: Any) -> bool:
    return bool(handle.ready() if hasattr(handle, "ready") else handle.done())


def _terminate_timed(pool: Any) -> float:
    started = time.monotonic()
    pool.terminate()
    if isinstance(pool, workhorse.Pool):
        pool.join()
    return time.monotonic() - started


def _assert_failed(handle: Any) -> None:
    """Cancelled or failed, never a result and never still pending."""
    get = handle.get if hasattr(handle, "get") else handle.result
    with pytest.raises((concurrent.futures.CancelledError, workhorse.WorkhorseError)):
        get(timeout=0)


@pytest.mark.parametrize("kind", POOLS)
def test_terminate_with_running_and_queued_tasks_returns_at_once(kind: str) -> None:
    gate = workhorse.Event()
    pool = _make(kind)
    submit = _submitter(pool)
    running = [_blocked_task(submit, gate) for _ in range(2)]
    queued = [submit(double, i) for i in range(20)]
    assert _terminate_timed(pool) < STOP_BOUND
    for handle in [*(h for h, _ in running), *queued]:
        assert _settled(handle)
        _assert_failed(handle)
    for _, pid in running:
        wait_until(functools.partial(gone, pid), f"worker {pid} to be gone", timeout=STOP_BOUND)
    gate.set()


@pytest.mark.parametrize("kind", POOLS)
def test_terminate_when_every_worker_is_dead_returns_at_once(kind: str) -> None:
    gate = workhorse.Event()
    pool = _make(kind)
    submit = _submitter(pool)
    running = [_blocked_task(submit, gate) for _ in range(2)]
    for _, pid in running:
        os.kill(pid, signal.SIGKILL)
    for _, pid in running:
        wait_until(functools.partial(gone, pid), f"worker {pid} to die")
    assert _terminate_timed(pool) < STOP_BOUND
    for handle, _ in running:
        assert _settled(handle)
    # gate stays unset: the workers were killed mid-wait, maybe holding its internal lock


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("kind", POOLS)
def test_terminate_before_the_workers_started_returns_at_once(kind: str, method: str) -> None:
    pool = _make(kind, method=method)
    queued = _submitter(pool)(double, 1)
    assert _terminate_timed(pool) < STOP_BOUND
    assert _settled(queued)
    assert _terminate_timed(pool) < STOP_BOUND  # and again: a no-op


def _nested_pool_task(gate: Any, started: Any) -> str:
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK) as inner:
        result: str = inner.submit(wait_then, gate, started, "inner").result(timeout=BOUND)
        return result


def _terminate_with_a_nested_pool(kind: str) -> set[int]:
    """Terminate a pool whose task runs a pool of its own; return the processes involved."""
    gate, started = workhorse.Event(), workhorse.Event()
    pool = _make(kind, workers=1)
    outer = _submitter(pool)(_nested_pool_task, gate, started)
    assert started.wait(BOUND)  # the inner pool's worker runs
    family = _descendants()
    assert len(family) >= 2  # the outer worker and the inner pool's worker
    assert _terminate_timed(pool) < STOP_BOUND
    _assert_failed(outer)
    gate.set()
    return family


def _remove_shm_left_by(pids: set[int]) -> list[str]:
    """Unlink (and unregister from the resource tracker) the /dev/shm entries created by
    ``pids``; return their names. Left in place, they would outlive this test and -- once
    another process reuses one of those pids -- fail a later test's leak guard."""
    left = sorted(name for pid in pids for name in shm_of(pid))
    for name in left:
        kind = "semaphore" if name.startswith("sem.") else "shared_memory"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"/dev/shm/{name}")
        resource_tracker.unregister("/" + name.removeprefix("sem."), kind)
    return left


# leaks_ok: the processes are checked here by hand (the guard cannot see grandchildren
# whose parent was killed); the pool sweeps the /dev/shm names of the workers it killed.
@pytest.mark.leaks_ok
@pytest.mark.parametrize("kind", POOLS)
def test_terminate_with_a_nested_pool_returns_and_leaves_no_process(kind: str) -> None:
    family = _terminate_with_a_nested_pool(kind)
    try:
        wait_until(lambda: _all_gone(family), "the outer and inner workers to be gone")
    finally:
        _remove_shm_left_by(family)


@pytest.mark.leaks_ok
def test_terminate_with_a_nested_pool_leaves_no_shm_entry() -> None:
    family = _terminate_with_a_nested_pool("executor")
    try:
        wait_until(lambda: _all_gone(family), "the outer and inner workers to be gone")
        with contextlib.suppress(AssertionError):
            wait_until(
                lambda: not any(shm_of(pid) for pid in family), "no /dev/shm entry", timeout=2
            )
    finally:
        left = _remove_shm_left_by(family)
    assert not left, f"/dev/shm entries of killed workers: {left}"


@contextlib.contextmanager
def _stray_write_catcher(directory: Path, count: int = 64) -> Iterator[dict[str, bytes]]:
    """Hold ``count`` writable files open meanwhile: they take the lowest free descriptor
    numbers, which include any a pool closed before. Yields a dict that, on exit, is filled
    with what was written into them."""
    opened = [
        os.open(directory / f"file-{i}", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        for i in range(count)
    ]
    written: dict[str, bytes] = {}
    try:
        yield written
    finally:
        for fd in opened:
            os.close(fd)
        for i in range(count):
            data = (directory / f"file-{i}").read_bytes()
            if data:
                written[f"file-{i}"] = data


@pytest.mark.parametrize("how", ["terminate", "again", "collected"])
@pytest.mark.parametrize("kind", POOLS)
def test_a_finished_pool_writes_nothing_anywhere(kind: str, how: str, tmp_path: Path) -> None:
    """Stopping a pool that has already stopped, or dropping it, is a no-op."""
    written = _written_by_a_finished_pool(kind, how, tmp_path)
    assert not written, f"a finished pool wrote into unrelated files: {written}"


def _written_by_a_finished_pool(kind: str, how: str, tmp_path: Path) -> dict[str, bytes]:
    """The pool is closed while its manager thread idles (a task blocks), then the task ends
    and the manager stops by itself: no call of ours wakes it after that, so what the call
    under test does is seen alone."""
    threads_before = set(threading.enumerate())
    gate = workhorse.Event()
    pool = _make(kind, workers=1)
    running, _ = _blocked_task(_submitter(pool), gate)
    pool.shutdown(wait=False) if kind == "executor" else pool.close()
    gate.set()
    get = running.get if kind == "pool" else running.result
    assert get(timeout=BOUND) == "finished"
    wait_until(
        lambda: not [t for t in threading.enumerate() if t not in threads_before],
        "the pool's threads to end by themselves",
    )
    with _stray_write_catcher(tmp_path) as written:
        if how == "terminate":
            assert _terminate_timed(pool) < STOP_BOUND
        elif how == "again":
            pool.shutdown(wait=True) if kind == "executor" else pool.join()
        else:
            del pool
            gc.collect()
    return written


# -- D10: shutdown races --------------------------------------------------------------------


def test_map_of_workers_plus_one_then_immediate_shutdown_keeps_every_result(
    start_method: str,
) -> None:
    workers = 2
    pool = workhorse.ProcessPoolExecutor(workers, mp_context=_context(start_method))
    results = pool.map(double, range(workers + 1))
    pool.shutdown(wait=True)
    assert list(results) == [2 * i for i in range(workers + 1)]


def test_submit_from_another_thread_during_shutdown_leaves_no_future_pending() -> None:
    """A thread submits as fast as it can (every 25th task crashes its worker, so workers are
    being replaced) while the main thread shuts down: each submit either returns a future that
    completes, or raises RuntimeError; none is left pending."""
    pool = workhorse.ProcessPoolExecutor(2, mp_context=FORK)
    futures: list[concurrent.futures.Future[int]] = []
    refused: list[BaseException] = []

    def submit_until_refused() -> None:
        for i in range(1_000_000):
            try:
                futures.append(pool.submit(crash_on, i, i if i % 25 == 24 else -1))
            except RuntimeError as exc:
                refused.append(exc)
                return

    thread = threading.Thread(target=submit_until_refused)
    thread.start()
    wait_until(lambda: len(futures) >= 100, "the thread to have submitted some tasks")
    pool.shutdown(wait=True)
    thread.join(BOUND)
    assert not thread.is_alive()
    assert len(refused) == 1
    assert "cannot schedule new futures after shutdown" in str(refused[0])
    assert not isinstance(refused[0], workhorse.PoolBroken)
    assert all(f.done() for f in futures)
    for i, future in enumerate(futures):
        if i % 25 == 24:
            with pytest.raises(workhorse.WorkerCrashed):
                future.result(timeout=0)
        else:
            assert future.result(timeout=0) == 2 * i


@pytest.mark.parametrize("good", [0, 5])
def test_shutdown_without_wait_with_one_task_per_worker_and_a_failing_task(good: int) -> None:
    """CPython gh-132969: ``shutdown(wait=False)`` with ``max_tasks_per_child=1`` and a task
    that raises. Every future settles; the manager thread and the workers wind down by
    themselves (the leak guard checks)."""
    pool = workhorse.ProcessPoolExecutor(1, mp_context=FORK, max_tasks_per_worker=1)
    failing = pool.submit(run_fault, "raise")
    others = [pool.submit(double, i) for i in range(good)]
    pool.shutdown(wait=False)
    with pytest.raises(CrashError):
        failing.result(timeout=BOUND)
    assert [f.result(timeout=BOUND) for f in others] == [2 * i for i in range(good)]


# -- D11: stopping with large data in flight; stopping from a done-callback -----------------


def _length(data: bytes) -> int:
    return len(data)


def test_terminate_with_100_mb_arguments_in_flight_returns() -> None:
    data = bytes(BIG)
    pool = workhorse.ProcessPoolExecutor(2, mp_context=FORK)
    futures = [pool.submit(_length, data) for _ in range(4)]
    assert _terminate_timed(pool) < STOP_BOUND
    for future in futures:
        assert future.done()
        assert future.cancelled() or future.result(timeout=0) == BIG


def test_cancel_ten_tasks_with_100_mb_arguments_then_shutdown_does_not_deadlock() -> None:
    data = bytes(BIG)
    pool = workhorse.ProcessPoolExecutor(2, mp_context=FORK)
    futures = [pool.submit(_length, data) for _ in range(10)]
    for future in futures:
        future.cancel()  # queued, or running (its worker is killed), or already done
    started = time.monotonic()
    pool.shutdown(wait=True)
    assert time.monotonic() - started < BOUND
    for future in futures:
        assert future.done()
        assert future.cancelled() or future.result(timeout=0) == BIG


@pytest.mark.parametrize("kind", POOLS)
def test_terminate_from_a_done_callback_then_submit_is_refused(kind: str) -> None:
    """pebble's ``stop()`` from a done-callback: later calls are refused (``RuntimeError`` for
    the executor, ``ValueError("Pool not running")`` for ``Pool``, as the stdlib's)."""
    pool = _make(kind)
    called = threading.Event()

    def stop(_: Any) -> None:
        pool.terminate()  # runs in the pool's manager thread: must not deadlock
        called.set()

    if kind == "executor":
        pool.submit(double, 1).add_done_callback(stop)
    else:
        pool.apply_async(double, (1,), callback=stop)
    assert called.wait(BOUND)
    if kind == "executor":
        with pytest.raises(RuntimeError, match="cannot schedule new futures"):
            pool.submit(double, 2)
        pool.shutdown(wait=True)
    else:
        with pytest.raises(ValueError, match="Pool not running"):
            pool.apply_async(double, (2,))
        pool.join()


# -- H2: a signal handler runs while the parent blocks; the call completes intact ------------


class _SignalStorm:
    """Sends SIGUSR1 to the main thread, one at a time, until the handler has run ``needed``
    times while the main thread was inside library code (the blocking call), then runs
    ``release`` (which lets the blocking call complete)."""

    def __init__(self, release: Callable[[], None], needed: int = 5) -> None:
        self.release, self.needed = release, needed
        self.handled = 0
        self.inside = 0
        self.error: BaseException | None = None
        self._previous: Any = None
        self._thread = threading.Thread(target=self._run, name="sigusr1-storm")

    def _handler(self, signum: int, frame: types.FrameType | None) -> None:
        self.handled += 1
        if frame is not None and frame.f_code.co_filename != __file__:
            self.inside += 1

    def __enter__(self) -> _SignalStorm:
        self._previous = signal.signal(signal.SIGUSR1, self._handler)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            deadline = time.monotonic() + BOUND
            main = threading.main_thread().ident
            assert main is not None
            while self.inside < self.needed:
                seen = self.handled
                # At the main thread: os.kill() may pick any thread of this process (the
                # pool's manager, say), and then nothing interrupts the main thread's wait.
                signal.pthread_kill(main, signal.SIGUSR1)
                while self.handled == seen:  # one signal at a time: none is merged
                    if time.monotonic() > deadline:
                        raise AssertionError("the SIGUSR1 handler stopped running")
                    time.sleep(0.001)
            self.release()
        except BaseException as exc:
            self.error = exc
            self.release()

    def __exit__(self, *exc: object) -> None:
        self._thread.join(BOUND)
        signal.signal(signal.SIGUSR1, self._previous)
        assert self.error is None, self.error
        assert self.inside >= self.needed


def test_signal_handler_during_future_result() -> None:
    gate = workhorse.Event()
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK) as pool:
        future = pool.submit(wait_then, gate, None, list(range(1000)))
        with _SignalStorm(gate.set):
            assert future.result(timeout=BOUND) == list(range(1000))


def test_signal_handler_during_pool_map() -> None:
    gate = workhorse.Event()
    with workhorse.Pool(2, context=FORK) as pool:
        with _SignalStorm(gate.set):
            results = pool.starmap(wait_then, [(gate, None, i) for i in range(6)])
        assert results == list(range(6))


def test_signal_handler_during_pipe_recv_and_send() -> None:
    payload = os.urandom(8 * 2**20)  # larger than the pipe's buffer: send blocks
    reader, writer = workhorse.Pipe(duplex=False)
    try:
        with _SignalStorm(lambda: writer.send_bytes(payload)):
            assert reader.recv_bytes() == payload
        got: list[bytes] = []
        with _SignalStorm(lambda: got.append(reader.recv_bytes())):
            writer.send_bytes(payload)
        assert got == [payload]
    finally:
        reader.close()
        writer.close()


def test_signal_handler_during_queue_get() -> None:
    queue = workhorse.Queue()
    item = {"numbers": list(range(10_000)), "text": "intact"}
    with _SignalStorm(lambda: queue.put(item)):
        assert queue.get(timeout=BOUND) == item


# -- I5: BLAS threads, stdin, faulthandler in workers ---------------------------------------


def _dot(a: Any, b: Any) -> Any:
    import numpy as np

    return np.dot(a, b)


def test_blas_threads_in_the_parent_then_numpy_in_a_worker(start_method: str) -> None:
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    a, b = rng.random((500, 500)), rng.random((500, 500))
    expected = np.dot(a, b)  # starts the BLAS thread pool in this process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with workhorse.ProcessPoolExecutor(2, mp_context=_context(start_method)) as pool:
            results = [pool.submit(_dot, a, b) for _ in range(2)]
            for future in results:
                assert np.allclose(future.result(timeout=BOUND), expected)
    about_fork = [w for w in caught if "fork" in str(w.message)]
    if start_method != "fork":
        # With "fork" the stdlib rightly warns (3.12+) that this multi-threaded process forks:
        # the README says so, and pyproject.toml filters that warning for the whole suite.
        assert not about_fork, [str(w.message) for w in about_fork]


def _read_stdin_in_a_subprocess(given: str | None) -> str:
    code = "import sys; print(repr(sys.stdin.read()))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=given,
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize("given", [None, "typed text"])
def test_task_reading_stdin_through_a_subprocess(start_method: str, given: str | None) -> None:
    with workhorse.ProcessPoolExecutor(1, mp_context=_context(start_method)) as pool:
        out = pool.submit(_read_stdin_in_a_subprocess, given).result(timeout=BOUND)
    assert out == repr(given or "")


def _faulthandler_enabled() -> bool:
    return faulthandler.is_enabled()


def test_faulthandler_is_enabled_in_workers(start_method: str) -> None:
    with workhorse.ProcessPoolExecutor(1, mp_context=_context(start_method)) as pool:
        assert pool.submit(_faulthandler_enabled).result(timeout=BOUND)


# -- E5: cyclic garbage made by tasks is collected in the workers ---------------------------


class _Node:
    """Weak-referenceable; each task makes one that refers to itself (a reference cycle)."""

    def __init__(self) -> None:
        self.me: _Node | None = self


_alive_nodes: weakref.WeakSet[_Node] = weakref.WeakSet()


def _make_cycle(_: int) -> int:
    """Leave one unreachable cycle behind; return how many of them are still alive here."""
    _alive_nodes.add(_Node())
    return len(_alive_nodes)


@pytest.mark.parametrize("chunksize", ["auto", 1])
def test_cyclic_garbage_made_by_tasks_is_collected_in_the_worker(chunksize: Any) -> None:
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK, chunksize=chunksize) as pool:
        alive = list(pool.map(_make_cycle, range(300)))
    assert max(alive) < 150, f"up to {max(alive)} of 300 cycles alive at once"
