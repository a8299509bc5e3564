"""Tutorial 6: a Pool of 5 runs 10 apply_async tasks; close() then join().

The tutorial loses the error of a task that raises; here the caller asks for every result,
so the error reaches it (the same in both libraries).
"""

from __future__ import annotations

import os
from multiprocessing import Pool
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.pool import AsyncResult


def task(n: int) -> tuple[int, int]:
    if n == 7:
        raise ValueError(f"task {n} refuses")
    return n * n, os.getpid()


if __name__ == "__main__":
    pool = Pool(5)
    pending: list[AsyncResult[tuple[int, int]]] = [pool.apply_async(task, (n,)) for n in range(10)]
    pool.close()
    pool.join()
    pids = set()
    for n, result in enumerate(pending):
        try:
            square, pid = result.get(timeout=10)
        except ValueError as exc:
            print(f"task {n} failed: {exc}")
        else:
            pids.add(pid)
            print(f"task {n} -> {square}")
    print("at most 5 worker pids:", len(pids) <= 5)
