"""Tutorial 5: two processes wait on an Event; once set, a producer/consumer pair runs."""

# stdout: sorted
from __future__ import annotations

import multiprocessing as mp
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event


def waiter(name: str, event: Event) -> None:
    print(name, "waiting")
    event.wait()
    print(name, "released")


def producer(q: Queue[int | None]) -> None:
    for i in range(3):
        q.put(i)
    q.put(None)


def consumer(q: Queue[int | None]) -> None:
    while (item := q.get()) is not None:
        print("consumed", item)


if __name__ == "__main__":
    event = mp.Event()
    waiters = [mp.Process(target=waiter, args=(f"waiter-{i}", event)) for i in range(2)]
    for w in waiters:
        w.start()
    time.sleep(0.2)  # the tutorial's pause before the event is set
    event.set()
    for w in waiters:
        w.join()
    q: Queue[int | None] = mp.Queue()
    pair = [mp.Process(target=producer, args=(q,)), mp.Process(target=consumer, args=(q,))]
    for p in pair:
        p.start()
    for p in pair:
        p.join()
    print("event is set:", event.is_set())
