"""Process pool executor, submit.

Each ``submit`` returns a future at once; ``result()`` blocks until that task is done and
returns its value (or raises its exception). The futures are real
``concurrent.futures.Future`` objects (``wait``, ``as_completed`` and ``asyncio.wrap_future``
work), and ``cancel()`` also stops a task that is already running.
"""

from __future__ import annotations

from workhorse import ProcessPoolExecutor  # a drop-in for concurrent.futures

TOTALS = [100, 1_000, 10_000, 100_000]


def task(total: int) -> int:
    """CPU-bound work: the sum of 0 .. total-1."""
    return sum(range(total))


def main() -> None:
    with ProcessPoolExecutor(max_workers=5) as pool:
        futures = [pool.submit(task, total) for total in TOTALS]
        print(f"submitted {len(futures)} tasks")
        for total, future in zip(TOTALS, futures, strict=True):
            print(f"task({total}) = {future.result()}")  # waits for this task only


if __name__ == "__main__":
    main()
