"""Tutorial 8: ten processes, a Semaphore of 4 passed to each: at most 4 inside at once.

Each process records entering and leaving in a journal file under a Lock; the parent
replays the journal to find the largest number inside at once.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.synchronize import Lock, Semaphore

JOURNAL = "journal.txt"


def record(lock: Lock, line: str) -> None:
    with lock, open(JOURNAL, "a") as f:
        f.write(line + "\n")


def worker(n: int, sem: Semaphore, lock: Lock) -> None:
    with sem:
        record(lock, f"+ {n}")
        time.sleep(0.05)  # stays inside a moment, so that others pile up at the semaphore
        record(lock, f"- {n}")


if __name__ == "__main__":
    sem, lock = mp.Semaphore(4), mp.Lock()
    procs = [mp.Process(target=worker, args=(n, sem, lock)) for n in range(10)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    with open(JOURNAL) as f:
        journal = f.read().splitlines()
    inside = most = 0
    for line in journal:
        inside += 1 if line.startswith("+") else -1
        most = max(most, inside)
    print("at most 4 inside:", most <= 4)
    print("entries:", len(journal))
