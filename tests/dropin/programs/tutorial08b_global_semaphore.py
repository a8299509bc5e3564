"""Tutorial 8 as the tutorial wrote it: the semaphore is a module global, not an argument.

Under the stdlib's default start method on Linux (fork) the child inherits the parent's
semaphore. The parent holds every slot, so the child cannot get one: the observation is
deterministic and shows whether the child sees the parent's semaphore.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.queues import SimpleQueue

SEM = mp.Semaphore(4)


def worker(results: SimpleQueue[bool]) -> None:
    got = SEM.acquire(timeout=0.3)
    results.put(got)


if __name__ == "__main__":
    for _ in range(4):
        SEM.acquire()
    results: SimpleQueue[bool] = mp.SimpleQueue()
    p = mp.Process(target=worker, args=(results,))
    p.start()
    p.join()
    print("child got a slot while the parent held all four:", results.get())
