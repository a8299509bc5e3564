"""Tutorial 7: two processes append five lines each to one file under one Lock.

The lock makes each process's lines contiguous; which process goes first is open, so the
parent prints the blocks sorted.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.synchronize import Lock

LOG = "shared.log"


def writer(name: str, lock: Lock) -> None:
    with lock:
        for i in range(5):
            with open(LOG, "a") as f:
                f.write(f"{name} line {i}\n")
            time.sleep(0.01)  # leaves room for the other writer if the lock did nothing


if __name__ == "__main__":
    lock = mp.Lock()
    procs = [mp.Process(target=writer, args=(name, lock)) for name in ("alpha", "beta")]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    with open(LOG) as f:
        lines = f.read().splitlines()
    blocks = [lines[:5], lines[5:]]
    print("contiguous:", all(len({line.split()[0] for line in b}) == 1 for b in blocks))
    for block in sorted(blocks):
        print(" | ".join(block))
