"""Waiting on process futures: as_completed mapped back to inputs, wait(FIRST_COMPLETED)
returning with the quick task, and executor.map(timeout=...) raising TimeoutError.
"""

import time
from concurrent.futures import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    ProcessPoolExecutor,
    as_completed,
    wait,
)


def collatz_steps(n: int) -> int:
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def nap(seconds: float) -> float:
    time.sleep(seconds)  # the task's nature: a slow call
    return seconds


if __name__ == "__main__":
    with ProcessPoolExecutor(max_workers=3) as executor:
        futures = {executor.submit(collatz_steps, n): n for n in (6, 7, 27, 97, 871)}
        steps = {futures[f]: f.result() for f in as_completed(futures, timeout=20)}
        print("as_completed:", sorted(steps.items()))

        naps = [executor.submit(nap, s) for s in (0.8, 0.0, 0.8)]
        done, not_done = wait(naps, timeout=20, return_when=FIRST_COMPLETED)
        print("first done:", [f.result() for f in done], "still running:", len(not_done))
        done, not_done = wait(naps, timeout=20, return_when=ALL_COMPLETED)
        print("all done:", sorted(f.result() for f in done), len(not_done))

        got: list[float] = []
        try:
            for value in executor.map(nap, [0.0, 0.0, 1.0, 0.0], timeout=0.5):
                got.append(value)
        except TimeoutError:
            print("map timed out after", got)
