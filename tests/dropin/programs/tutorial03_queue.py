"""Tutorial 3: a producer process and a consumer process sharing a Queue.

The consumer stops at a sentinel (the stdlib idiom); the parent prints before it starts the
children and after they end, so the order of the lines is fixed.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.queues import Queue


def producer(q: Queue[int | None]) -> None:
    for item in range(5):
        q.put(item)
    q.put(None)


def consumer(q: Queue[int | None]) -> None:
    while (item := q.get()) is not None:
        print("consumer got", item)
    print("consumer saw the sentinel")


if __name__ == "__main__":
    q: Queue[int | None] = mp.Queue()
    print("starting producer and consumer")
    procs = [mp.Process(target=producer, args=(q,)), mp.Process(target=consumer, args=(q,))]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print("both done:", [p.exitcode for p in procs])
