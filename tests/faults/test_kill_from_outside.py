"""Workers that die mid-task -- by their own hand, a signal from outside, a memory limit --
and a parent that is killed: only the running task fails, nothing is lost, nothing hangs."""

from __future__ import annotations

import concurrent.futures
import functools
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import workhorse

from ._helpers import (
    BOUND,
    FORK,
    crash_on,
    crash_once,
    double,
    gone,
    no_fd_leak,  # noqa: F401  (autouse)
    pid_of_worker,
    shm_of,
    wait_until,
)


def _blocked_task(pool: Any, gate: Any) -> tuple[concurrent.futures.Future[Any], int]:
    """Submit a task that blocks on ``gate``; return it and the pid of the worker running it."""
    started = workhorse.Event()
    pid_box = workhorse.Queue()
    future = pool.submit(_report_pid_and_wait, pid_box, started, gate)
    assert started.wait(BOUND)
    return future, pid_box.get(timeout=BOUND)


def _report_pid_and_wait(pid_box: Any, started: Any, gate: Any) -> str:
    pid_box.put(os.getpid())
    started.set()
    gate.wait(BOUND)
    return "finished"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
def test_worker_killed_from_outside_fails_only_its_task(sig: signal.Signals) -> None:
    gate = workhorse.Event()
    with workhorse.ProcessPoolExecutor(2) as pool:
        victim, pid = _blocked_task(pool, gate)
        survivor, survivor_pid = _blocked_task(pool, gate)
        queued = [pool.submit(double, i) for i in range(50)]
        os.kill(pid, sig)
        with pytest.raises(workhorse.WorkerCrashed, match=rf"_report_pid_and_wait.*{sig.name}"):
            victim.result(timeout=BOUND)
        gate.set()
        assert survivor.result(timeout=BOUND) == "finished"
        assert [f.result(timeout=BOUND) for f in queued] == [2 * i for i in range(50)]
        pids = {pool.submit(pid_of_worker).result(timeout=BOUND) for _ in range(20)}
        assert pid not in pids  # replaced
        assert victim.exception().pid == pid  # type: ignore[union-attr]
    assert survivor_pid != pid


@pytest.mark.parametrize("kind", ["os_exit", "segfault", "sigkill"])
def test_worker_death_mid_task_keeps_running_siblings_and_queue(kind: str) -> None:
    gate = workhorse.Event()
    with workhorse.ProcessPoolExecutor(2, mp_context=FORK) as pool:
        running, _ = _blocked_task(pool, gate)
        dying = pool.submit(crash_on, 7, 7, kind)
        queued = [pool.submit(double, i) for i in range(30)]
        with pytest.raises(workhorse.WorkerCrashed, match=r"task crash_on\(7, 7"):
            dying.result(timeout=BOUND)
        assert not running.done()  # the sibling's task was not touched
        gate.set()
        assert running.result(timeout=BOUND) == "finished"
        assert [f.result(timeout=BOUND) for f in queued] == [2 * i for i in range(30)]


def test_worker_crash_is_retried_when_retries_allow(tmp_path: Path) -> None:
    marker = str(tmp_path / "crashed-once")
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK) as pool:
        with pytest.raises(workhorse.WorkerCrashed):
            pool.submit(crash_once, marker).result(timeout=BOUND)
        os.unlink(marker)
        retried = pool.with_options(retries=1).submit(crash_once, marker)
        assert retried.result(timeout=BOUND) > 0  # crashed once, then ran again and returned


@pytest.mark.parametrize("chunksize", ["auto", 8])
def test_worker_death_inside_a_batch_fails_only_that_item(chunksize: Any) -> None:
    """Many tiny tasks; item 777's worker dies. Only it fails; no item is lost (items that ran
    earlier in the same batch may run twice, as documented in the engine)."""
    n = 2000
    with workhorse.ProcessPoolExecutor(2, mp_context=FORK, chunksize=chunksize) as pool:
        futures = [pool.submit(crash_on, i, 777) for i in range(n)]
        _, not_done = concurrent.futures.wait(futures, timeout=BOUND)
        assert not not_done
        failed = [i for i, f in enumerate(futures) if f.exception() is not None]
        assert failed == [777]
        assert isinstance(futures[777].exception(), workhorse.WorkerCrashed)
        assert [f.result() for i, f in enumerate(futures) if i != 777] == [
            2 * i for i in range(n) if i != 777
        ]


def test_worker_death_inside_a_batch_with_pool_starmap_and_imap() -> None:
    with workhorse.Pool(2, context=FORK, chunksize=8) as pool:
        with pytest.raises(workhorse.WorkerCrashed, match=r"task crash_on\(50, 50"):
            pool.starmap(crash_on, [(i, 50) for i in range(100)])
        assert list(pool.imap(double, range(100))) == [2 * i for i in range(100)]


def _allocate_under_limit(megabytes: int) -> str:
    """Lower this worker's address-space limit, then allocate more than it allows."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + 64 * 2**20, hard))
    block = bytearray(megabytes * 2**20)
    return f"allocated {len(block)}"


def test_worker_memory_limit_fails_the_task_with_memory_error() -> None:
    """An rlimit on memory makes the allocation fail: CPython raises MemoryError, which the
    task's future gets (type kept); the pool goes on (``max_tasks_per_worker=1`` retires the
    still-limited worker, so the next task runs in a fresh, unlimited one)."""
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK, max_tasks_per_worker=1) as pool:
        with pytest.raises(MemoryError):
            pool.submit(_allocate_under_limit, 1024).result(timeout=BOUND)
        assert pool.submit(double, 4).result(timeout=BOUND) == 8


def test_parent_killed_a_worker_exits_even_while_its_sibling_is_stopped(tmp_path: Path) -> None:
    """A fork pool forks its first workers directly: the second inherits the parent's end of
    the first's sentinel pipe, so the first must not wait for that pipe to close (its
    watchdog watches the parent's pidfd). The second is stopped (SIGSTOP) while the parent
    is killed: the first still exits on its own."""
    script = textwrap.dedent(
        """
        import os, sys, time, workhorse
        if __name__ == "__main__":
            pool = workhorse.ProcessPoolExecutor(2, mp_context=workhorse.get_context("fork"))
            print(os.getpid(), *pool._front.backend.worker_pids(), flush=True)
            time.sleep(60)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    ) as proc:
        assert proc.stdout is not None
        parent, first, second = map(int, proc.stdout.readline().split())
        os.kill(second, signal.SIGSTOP)
        try:
            proc.kill()
            proc.wait(BOUND)
            wait_until(functools.partial(gone, first), f"worker {first} to exit after its parent")
        finally:
            os.kill(second, signal.SIGKILL)
        wait_until(functools.partial(gone, second), f"worker {second} to be killed")
        wait_until(lambda: not shm_of(parent), "the resource tracker to unlink the board")


def test_parent_killed_its_workers_exit_by_themselves(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys, time, workhorse
        if __name__ == "__main__":
            pool = workhorse.ProcessPoolExecutor(2)
            gate = workhorse.Event()
            futures = [pool.submit(gate.wait, 60) for _ in range(4)]
            while len(pool._front.backend.worker_pids()) < 2:
                time.sleep(0.01)
            print(os.getpid(), *pool._front.backend.worker_pids(), flush=True)
            gate.wait(60)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    ) as proc:
        assert proc.stdout is not None
        parent, *workers = map(int, proc.stdout.readline().split())
        assert len(workers) == 2
        proc.kill()
        proc.wait(BOUND)
        for pid in workers:
            wait_until(functools.partial(gone, pid), f"worker {pid} to exit after its parent")
        wait_until(lambda: not shm_of(parent), "the resource tracker to unlink the board")
