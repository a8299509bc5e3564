"""Synchronisation across processes: the docs' lock-around-print example, an RLock
re-entered in a child, a Barrier of 3 and a Condition woken with notify_all().
"""

from __future__ import annotations

import multiprocessing as mp
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier, Condition, Lock, RLock


def greet(lock: Lock, i: int, out: Queue[str]) -> None:
    lock.acquire()
    try:
        out.put(f"hello world {i}")
    finally:
        lock.release()


def nested(rlock: RLock, out: Queue[str]) -> None:
    with rlock, rlock:
        out.put("re-entered the RLock in " + mp.current_process().name)


def meet(barrier: Barrier, out: Queue[int]) -> None:
    out.put(barrier.wait(timeout=10))


def wait_for_signal(n: int, cond: Condition, out: Queue[str]) -> None:
    with cond:
        out.put("waiting")  # while holding the lock: the parent cannot notify before wait()
        woke = cond.wait(timeout=10)
    out.put(f"child {n} woke: {woke}")


def run_all(procs: list[mp.Process]) -> None:
    for p in procs:
        p.start()


if __name__ == "__main__":
    out: Queue[str] = mp.Queue()
    lock, rlock = mp.Lock(), mp.RLock()
    procs = [mp.Process(target=greet, args=(lock, n, out)) for n in range(4)]
    procs.append(mp.Process(target=nested, args=(rlock, out), name="nester"))
    run_all(procs)
    print(sorted(out.get(timeout=10) for _ in procs))

    barrier = mp.Barrier(3)
    indices: Queue[int] = mp.Queue()
    procs += [mp.Process(target=meet, args=(barrier, indices)) for _ in range(3)]
    run_all(procs[-3:])
    print("barrier indices:", sorted(indices.get(timeout=10) for _ in range(3)))

    cond = mp.Condition()
    procs += [mp.Process(target=wait_for_signal, args=(n, cond, out)) for n in range(3)]
    run_all(procs[-3:])
    print([out.get(timeout=10) for _ in range(3)])
    with cond:
        cond.notify_all()
    print(sorted(out.get(timeout=10) for _ in range(3)))

    for p in procs:
        p.join()
    print("exit codes:", {p.exitcode for p in procs})
