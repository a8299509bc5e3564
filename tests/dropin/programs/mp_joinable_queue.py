"""JoinableQueue: two consumer processes call task_done(); the producer join()s the queue."""

from __future__ import annotations

import multiprocessing as mp
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.queues import JoinableQueue, Queue


def consume(tasks: JoinableQueue[int | None], results: Queue[int]) -> None:
    while True:
        item = tasks.get()
        if item is None:
            tasks.task_done()
            break
        results.put(item * 2)
        tasks.task_done()


if __name__ == "__main__":
    tasks: JoinableQueue[int | None] = mp.JoinableQueue()
    results: Queue[int] = mp.Queue()
    consumers = [mp.Process(target=consume, args=(tasks, results)) for _ in range(2)]
    for c in consumers:
        c.start()
    for item in range(20):
        tasks.put(item)
    for _ in consumers:
        tasks.put(None)
    tasks.join()
    print("all tasks done")
    doubled = sorted(results.get(timeout=10) for _ in range(20))
    print(doubled)
    for c in consumers:
        c.join()
    print("exit codes:", [c.exitcode for c in consumers])
