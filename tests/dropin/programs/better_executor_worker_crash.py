"""A ProcessPoolExecutor task whose worker dies (os._exit) while four more are queued.

The stdlib breaks the whole pool: every pending future fails with BrokenProcessPool.
"""

# expect-workhorse: a worker that segfaults, is OOM-killed or calls `os._exit` fails only its own
# expect-workhorse: task with `WorkerCrashed` (a `BrokenProcessPool`), and the pool replaces it
# expect-workhorse: and goes on.
# expect-workhorse-stdout:
# | task 0: BrokenProcessPool
# | task 1: 1
# | task 2: 4
# | task 3: 9
# | task 4: 16
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool


def square_or_die(n: int) -> int:
    if n == 0:
        os._exit(1)
    return n * n


if __name__ == "__main__":
    with ProcessPoolExecutor(max_workers=1) as executor:
        futures = [executor.submit(square_or_die, n) for n in range(5)]
        for n, future in enumerate(futures):
            try:
                print(f"task {n}: {future.result(timeout=20)}")
            except BrokenProcessPool:
                print(f"task {n}: BrokenProcessPool")
