"""Semaphore.

Ten spawned processes share a semaphore of 4, and a counter guarded by a lock shows that never
more than 4 are inside at once. The tutorial's module-global semaphore only worked under fork
(each spawned child made its own); workhorse primitives passed to a child are the same there.
"""

from __future__ import annotations

import time

from workhorse._tour import say

import workhorse


def worker(n: int, sem: workhorse.Semaphore, lock: workhorse.Lock, inside: workhorse.Queue) -> None:
    """Enter the semaphore, count itself in, work, count itself out."""
    with sem:
        with lock:
            count = inside.get() + 1
            inside.put(count)
        say(f"worker {n}: inside semaphore: {count}")
        time.sleep(0.1)  # stands in for work done while holding the semaphore
        with lock:
            inside.put(inside.get() - 1)


def main() -> None:
    spawn = workhorse.processes.with_start_method("spawn")
    say(f"start method: {spawn.get_start_method()}")
    sem = spawn.Semaphore(4)
    lock = spawn.Lock()
    inside: workhorse.Queue = spawn.Queue()  # the shared counter: one int in a queue
    inside.put(0)
    procs = [spawn.Process(target=worker, args=(n, sem, lock, inside)) for n in range(10)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    say(f"all 10 workers done, counter back to {inside.get()}")


if __name__ == "__main__":
    main()
