"""Process pool executor, map.

Five worker processes sum ``range(total)`` for 4 totals (CPU-bound work belongs in processes),
and ``map`` hands the results back in input order, whichever finishes first, streaming each as
soon as it and those before it are done. ``workhorse.ProcessPoolExecutor`` is a drop-in for the
stdlib's; ``timeout=`` bounds each task (one past it is stopped and raises
``workhorse.TaskTimeout``), and a worker that crashes fails only its own task.
"""

from __future__ import annotations

from workhorse import ProcessPoolExecutor  # a drop-in for concurrent.futures

TOTALS = [100, 1_000, 10_000, 100_000]


def task(total: int) -> int:
    """CPU-bound work: the sum of 0 .. total-1."""
    return sum(range(total))


def main() -> None:
    with ProcessPoolExecutor(max_workers=5, timeout=30) as pool:
        for total, result in zip(TOTALS, pool.map(task, TOTALS), strict=True):
            print(f"task({total}) = {result}")


if __name__ == "__main__":
    main()
