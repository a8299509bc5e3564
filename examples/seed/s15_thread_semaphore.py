"""Semaphore between threads.

Ten threads share a semaphore of 4; a counter guarded by a lock shows that never more than 4
are inside at once.
"""

from __future__ import annotations

import time

import workhorse


def main() -> None:
    sem = workhorse.threads.Semaphore(4)
    lock = workhorse.threads.Lock()
    inside = 0

    def worker(n: int) -> None:
        nonlocal inside
        with sem:
            with lock:  # printing under the lock also keeps the threads' lines whole
                inside += 1
                print(f"thread {n}: inside semaphore: {inside}")
            time.sleep(0.05)  # stands in for work done while holding the semaphore
            with lock:
                inside -= 1

    with workhorse.threads.group() as g:
        for n in range(10):
            g.start(worker, n)
    print(f"all 10 threads done, counter back to {inside}")


if __name__ == "__main__":
    main()
