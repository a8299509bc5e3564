"""Ctrl-C: SIGINT to the parent while it waits in ``map``, ``imap``, ``result()`` or the
``with`` block's exit reaches the caller as ``KeyboardInterrupt`` within about a second; no
worker and no /dev/shm entry outlives the script."""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

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
            while len(pool._engine.worker_pids()) < 2:
                time.sleep(0.01)
            print("pids", os.getpid(), *pool._engine.worker_pids(), flush=True)
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
