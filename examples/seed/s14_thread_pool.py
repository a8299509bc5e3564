"""Thread pool.

A pool of 5 threads runs 10 tasks submitted with ``apply_async``, then ``close()`` and
``join()``; each result, here the name of the thread that ran the task, comes back through
``get()``. ``workhorse.threads.Pool`` is a drop-in for ``multiprocessing.pool.ThreadPool``: the
same API, plus per-task ``timeout=``, ``retries=`` and a ``progress=`` bar as options.
"""

from __future__ import annotations

import random
import threading
import time

from workhorse.threads import Pool  # a drop-in for multiprocessing.pool.ThreadPool


def task(i: int) -> str:
    """Wait for a moment (I/O-bound work) and return the name of the thread that ran it."""
    time.sleep(random.uniform(0.02, 0.08))
    return threading.current_thread().name


def main() -> None:
    pool = Pool(5)
    results = [pool.apply_async(task, (i,)) for i in range(10)]
    pool.close()
    pool.join()
    names = [result.get() for result in results]
    for i, name in enumerate(names):
        print(f"task {i} ran on {name}")
    print(f"threads used: {len(set(names))} (pool of 5)")


if __name__ == "__main__":
    main()
