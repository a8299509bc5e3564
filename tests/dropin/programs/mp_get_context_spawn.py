"""get_context('spawn'): a Queue, a Process and a Pool from the same context."""

from __future__ import annotations

import multiprocessing as mp
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.queues import Queue


def hello(q: Queue[str]) -> None:
    q.put("hello from " + mp.current_process().name)


def cube(x: int) -> int:
    return x**3


if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    q: Queue[str] = ctx.Queue()
    p = ctx.Process(target=hello, args=(q,), name="spawned")
    p.start()
    print(q.get(timeout=20))
    p.join()
    with ctx.Pool(2) as pool:
        print(pool.map(cube, range(5)))
    print("exit code:", p.exitcode)
