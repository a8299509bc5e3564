"""Pool.map where one item kills its worker (os._exit): the stdlib's map() never returns.

The stdlib replaces the dead worker but the lost task is never answered, so map() hangs.
"""

# stdlib: hangs
# timeout: 4
# expect-workhorse: a worker that segfaults, is OOM-killed or calls `os._exit` fails only its own
# expect-workhorse: task with `WorkerCrashed` (a `BrokenProcessPool`), and the pool replaces it
# expect-workhorse: and goes on.
# expect-workhorse-stdout:
# | map failed: BrokenProcessPool
# | the pool still works: [0, 1, 4]
import os
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import Pool


def square_or_die(n: int) -> int:
    if n == 3:
        os._exit(1)
    return n * n


if __name__ == "__main__":
    with Pool(2) as pool:
        try:
            print(pool.map(square_or_die, range(6)))
        except BrokenProcessPool:
            print("map failed: BrokenProcessPool")
        print("the pool still works:", pool.map(square_or_die, range(3)))
