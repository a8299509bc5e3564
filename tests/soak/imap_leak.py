"""Issue 10, item 4: does ``for r in pool.imap(f, items)`` leak when ``f`` raises?

    python -m tests.soak.imap_leak [--loops 20] [--method fork]

The report: "each ``for r in pool.imap(...)`` whose task raises leaked +103 file
descriptors and +198 MiB of mapped shared memory (with ulimit -n 1024 the tenth call
fails)". This runs ``loops`` such loops in one ``Pool`` -- the task raises at item 7 and
returns 1-4 MiB NumPy arrays otherwise (the zero-copy path), so the exception leaves
results in flight -- under ``ulimit -n 1024``, and after each loop prints this process's
open descriptors, its mappings of ``/dev/shm`` (lines of ``/proc/self/maps``: count and
MiB) and its ``/dev/shm`` names: right after the loop, and once the pool is idle again
(the abandoned iterator's tasks still run for a moment after the loop is left).
``tests/faults/test_soak_unified.py`` asserts the settled figures stay flat.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
from typing import Any

import numpy as np

import workhorse

BIG = 1 << 18  # float32 elements per MiB


def task(i: int) -> Any:
    if i == 7:
        raise ValueError(f"item {i}")
    return np.full((1 + i % 4) * BIG, i, dtype=np.float32)


def figures() -> dict[str, float]:
    """Open descriptors, /dev/shm mappings (count, MiB) and /dev/shm names of this process."""
    gc.collect()
    maps = mib = 0.0
    with open("/proc/self/maps") as lines:
        for line in lines:
            if "/dev/shm/" in line:
                low, high = (int(x, 16) for x in line.split()[0].split("-"))
                maps += 1
                mib += (high - low) / 2**20
    mine = f"wh-{os.getpid()}-"
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "shm_maps": maps,
        "shm_mib": round(mib, 1),
        "shm_names": sum(1 for name in os.listdir("/dev/shm") if mine in name),
    }


def _one_loop(pool: workhorse.Pool, items: int) -> bool:
    """``for r in pool.imap(task, range(items))``; True if the task's error came out."""
    try:
        for _ in pool.imap(task, range(items)):
            pass
    except ValueError:
        return True
    return False


def _settle(
    pool: workhorse.Pool, baseline: dict[str, float], bound: float = 10.0, patient: bool = False
) -> None:
    """Wait until the pool ran everything queued before (bounded), and the figures are back
    to the baseline or stop moving (``patient``: back to the baseline, or the bound)."""
    pool.map(abs, range(4))
    deadline = time.monotonic() + bound
    last = figures()
    while time.monotonic() < deadline and last != baseline:
        time.sleep(0.05)  # slack: the abandoned tasks' results arriving and being dropped
        now = figures()
        if now == last and not patient:
            break
        last = now


def measure(loops: int = 20, method: str = "fork", out: Any = None) -> list[dict[str, float]]:
    """Run the loops; return the figures before (first), settled after each loop, and once
    everything has settled at the end (last)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        with workhorse.Pool(2, context=workhorse.processes.get_context(method)) as pool:
            pool.map(abs, range(10))  # workers started
            before = figures()
            settled = [before]
            _print(out, f"before: {before}")
            for loop in range(1, loops + 1):
                raised = _one_loop(pool, 40)
                right_after = figures()
                _settle(pool, before)
                settled.append(figures())
                _print(out, f"loop {loop:2}: raised={raised} right after {right_after}; "
                       f"settled {settled[-1]}")  # fmt: skip
            # A loop's figures may still move on a loaded machine (a result in flight, a
            # worker being replaced); a leak is what is left once everything has settled.
            _settle(pool, before, bound=30.0, patient=True)
            settled.append(figures())
            _print(out, f"at the end: {settled[-1]}")
            return settled
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _print(out: Any, line: str) -> None:
    if out is not None:
        print(line, file=out, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak.imap_leak", description=__doc__)
    parser.add_argument("--loops", type=int, default=20)
    parser.add_argument("--method", default="fork", choices=("fork", "forkserver", "spawn"))
    args = parser.parse_args(argv)
    settled = measure(args.loops, args.method, sys.stdout)
    first, last = settled[0], settled[-1]
    grew = {k: (first[k], last[k]) for k in first if last[k] > first[k]}
    print(f"growth over {args.loops} loops: {grew or 'none'}")
    return 1 if grew else 0


if __name__ == "__main__":
    sys.exit(main())
