"""Function as a process.

Five child processes each run ``task(name)`` and print their pid; the parent starts them, checks
that 6 processes exist at once (itself and its 5 children) and joins them. A barrier, not a
sleep, keeps the children alive until the parent has counted them.
"""

from __future__ import annotations

import os
import random
import time

from workhorse._tour import say

import workhorse


def task(name: str, counted: workhorse.Barrier) -> None:
    """Print this process's pid, wait until the parent has counted, then work for a moment."""
    say(f"task {name}: pid {os.getpid()}")
    counted.wait()  # the parent is the 6th party: nobody passes until it has counted
    time.sleep(random.uniform(0.05, 0.3))  # stands in for real work
    say(f"task {name} done")


def main() -> None:
    say(f"parent: pid {os.getpid()}")
    counted = workhorse.Barrier(6)  # the parent and its 5 children
    workers = [workhorse.Process(target=task, args=(str(i), counted)) for i in range(5)]
    for p in workers:
        p.start()
        say(f"started {p.name} with pid {p.pid}")
    # The children are blocked on the barrier, so none of them can have finished yet.
    say(f"processes running: {1 + sum(p.is_alive() for p in workers)}")
    counted.wait()
    for p in workers:
        p.join()
    say(f"all joined, exit codes {[p.exitcode for p in workers]}")


if __name__ == "__main__":
    main()
