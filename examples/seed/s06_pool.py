"""Process pool.

A pool of 5 processes runs 10 tasks submitted with ``apply_async``, then ``close()`` and
``join()``: at most 5 worker pids appear, reused across tasks. The task that raises is not lost:
its error reaches the caller through ``error_callback`` and ``get()``. ``workhorse.Pool`` is a
drop-in for ``multiprocessing.Pool`` (the same API) that also never hangs when a worker dies:
only that task fails, with ``workhorse.WorkerCrashed``.
"""

from __future__ import annotations

import os
import random
import time

from workhorse import Pool  # a drop-in for multiprocessing.Pool


def task(i: int) -> int:
    """Work for a moment and return the worker's pid; task 7 fails."""
    time.sleep(random.uniform(0.05, 0.1))
    if i == 7:
        raise ValueError(f"task {i} failed on purpose")
    return os.getpid()


def report(exc: BaseException) -> None:
    """Called in the parent as soon as a task fails."""
    print(f"error_callback: {type(exc).__name__}: {exc}")


def main() -> None:
    pool = Pool(5)
    results = [pool.apply_async(task, (i,), error_callback=report) for i in range(10)]
    pool.close()
    pool.join()
    pids = set()
    for i, result in enumerate(results):
        try:
            pid = result.get()  # re-raises the task's exception here, in the caller
        except ValueError as exc:
            print(f"task {i} raised ValueError: {exc}")
        else:
            pids.add(pid)
            print(f"task {i} ran in pid {pid}")
    print(f"worker pids used: {len(pids)} (pool of 5)")


if __name__ == "__main__":
    main()
