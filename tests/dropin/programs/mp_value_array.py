"""Shared memory: the docs' Value/Array example and a counter under get_lock()."""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing import Array, Process, Value
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized, SynchronizedArray


def fill(n: Synchronized[float], a: SynchronizedArray[int]) -> None:
    n.value = 3.1415927
    for i in range(len(a)):
        a[i] = -a[i]


def count(counter: Synchronized[int]) -> None:
    for _ in range(100):
        with counter.get_lock():
            counter.value += 1


if __name__ == "__main__":
    num = Value("d", 0.0)
    arr = Array("i", range(10))
    p = Process(target=fill, args=(num, arr))
    p.start()
    p.join()
    print(num.value)
    print(arr[:])

    counter = mp.Value("i", 0)
    procs = [Process(target=count, args=(counter,)) for _ in range(4)]
    for q in procs:
        q.start()
    for q in procs:
        q.join()
    print("counter:", counter.value)
