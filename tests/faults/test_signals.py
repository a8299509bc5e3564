"""Ctrl-C: SIGINT to the parent while it waits in ``map``, ``imap``, ``result()`` or the
``with`` block's exit reaches the caller as ``KeyboardInterrupt`` within about a second; no
worker and no /dev/shm entry outlives the script."""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import workhorse

from ._helpers import BOUND, gone, no_fd_leak, shm_of, wait_until  # noqa: F401

SCRIPT = textwrap.dedent(
    """
    import os, sys, time, workhorse

    def stuck(x):
        print("running", flush=True)   # tells the test the parent is now waiting
        time.sleep(60)
        return x

    if __name__ == "__main__":
        op = sys.argv[1]
        with workhorse.{pool}(2) as pool:
            while len(pool._front.backend.worker_pids()) < 2:
                time.sleep(0.01)
            print("pids", os.getpid(), *pool._front.backend.worker_pids(), flush=True)
            if op == "map":
                pool.map(stuck, range(4))
            elif op == "imap":
                list(pool.imap(stuck, range(4)))
            elif op == "result":
                pool.apply_async(stuck, (1,)).get()
            elif op == "with_exit":
                pool.apply_async(stuck, (1,))
                pool.close()
        print("not interrupted", flush=True)
    """
)


@pytest.mark.parametrize("pool", ["Pool", "ProcessPoolExecutor"])
@pytest.mark.parametrize("op", ["map", "imap", "result", "with_exit"])
def test_sigint_reaches_the_caller_and_leaves_nothing_behind(
    op: str, pool: str, tmp_path: Path
) -> None:
    script = SCRIPT.format(pool=pool)
    if pool == "ProcessPoolExecutor":
        script = (
            script.replace("pool.apply_async(stuck, (1,)).get()", "pool.submit(stuck, 1).result()")
            .replace("pool.apply_async(stuck, (1,))", "pool.submit(stuck, 1)")
            .replace("pool.close()", "pass")
            .replace("pool.map(stuck, range(4))", "list(pool.map(stuck, range(4)))")
            .replace("list(pool.imap(stuck, range(4)))", "list(pool.map(stuck, range(4)))")
        )
    with subprocess.Popen(
        [sys.executable, "-c", script, op],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    ) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[0] == "pids", line
        parent, workers = int(line[1]), [int(p) for p in line[2:]]
        assert "running" in proc.stdout.readline()  # two workers may print on one line
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=BOUND)
        finally:
            proc.kill()
        elapsed = time.monotonic() - sent
    assert "KeyboardInterrupt" in err, err
    assert "not interrupted" not in out
    assert proc.returncode != 0
    assert elapsed < 3.0, f"KeyboardInterrupt took {elapsed:.2f} s"
    for pid in workers:
        wait_until(functools.partial(gone, pid), f"worker {pid} to be gone", timeout=5)
    wait_until(lambda: not shm_of(parent), "no /dev/shm entry of the script", timeout=5)


def _blocked_signals(status_path: str) -> set[int]:
    """The signals blocked by one thread or process, from its ``/proc/.../status``."""
    with open(status_path) as status:
        for line in status:
            if line.startswith("SigBlk:"):
                mask = int(line.split()[1], 16)
                return {s for s in range(1, 65) if mask & (1 << (s - 1))}
    raise AssertionError(f"no SigBlk in {status_path}")


def native_thread_id() -> int:
    return threading.get_native_id()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_ctrl_c_always_lands_on_the_main_thread() -> None:
    """A SIGINT taken by a background thread leaves a main thread blocked in a lock acquire
    asleep (the Ctrl-C test above hung 1 run in ~200 before): workhorse's own background
    threads block it; its worker processes and the thread pool's workers (which run tasks,
    which may start subprocesses) do not."""
    ctrl_c, term = int(signal.SIGINT), int(signal.SIGTERM)

    def of_thread(native_id: int) -> set[int]:
        return _blocked_signals(f"/proc/self/task/{native_id}/status")

    with workhorse.Pool(2) as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]
        # A worker still starting may be inside pthread_create, which blocks every signal
        # for an instant: look once both are ready.
        engine = pool._front.backend
        wait_until(lambda: all(w is not None and w.ready for w in engine._slots), "workers")
        manager = next(t for t in threading.enumerate() if t.name.endswith("-manager"))
        assert manager.native_id is not None
        assert {ctrl_c, term} <= of_thread(manager.native_id)
        for pid in pool._front.backend.worker_pids():
            assert not {ctrl_c, term} & _blocked_signals(f"/proc/{pid}/status")
    q = workhorse.Queue()
    payload = bytes(1 << 20)
    feeders: list[threading.Thread] = []
    for _ in range(256):  # the feeder thread starts once the queue's ring is full
        q.put(payload)
        feeders = [t for t in threading.enumerate() if t.name == "QueueFeederThread"]
        if feeders:
            break
    assert feeders, "the queue never needed its feeder thread"
    assert feeders[0].native_id is not None
    assert ctrl_c in of_thread(feeders[0].native_id)
    q.shutdown(immediate=True)
    q.close()
    q.join_thread()
    with workhorse.ThreadPool(1) as threads:
        task_thread = threads.apply(native_thread_id)
        assert ctrl_c not in of_thread(task_thread)
    assert ctrl_c not in of_thread(threading.get_native_id())
