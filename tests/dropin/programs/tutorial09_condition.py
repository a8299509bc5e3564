"""Tutorial 9: a producer and a consumer process alternate through a one-slot buffer
guarded by a Condition (``while``, not ``if``, around ``wait()``: the tutorial's flaw fixed).
"""

from __future__ import annotations

import multiprocessing as mp
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized
    from multiprocessing.synchronize import Condition

EMPTY = -1


def producer(slot: Synchronized[int], cond: Condition) -> None:
    for item in range(5):
        with cond:
            while slot.value != EMPTY:
                cond.wait()
            slot.value = item
            cond.notify_all()


def consumer(slot: Synchronized[int], cond: Condition) -> None:
    for _ in range(5):
        with cond:
            while slot.value == EMPTY:
                cond.wait()
            print("consumed", slot.value)
            slot.value = EMPTY
            cond.notify_all()


if __name__ == "__main__":
    slot = mp.Value("i", EMPTY)
    cond = mp.Condition()
    procs = [
        mp.Process(target=consumer, args=(slot, cond)),
        mp.Process(target=producer, args=(slot, cond)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print("exit codes:", [p.exitcode for p in procs])
