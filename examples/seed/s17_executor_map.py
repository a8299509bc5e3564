"""Process pool executor, map.

Five worker processes sum ``range(total)`` for 4 totals (CPU-bound work belongs in processes),
and ``map`` hands the results back in input order, whichever finishes first. It uses the
stdlib's ``concurrent.futures.ProcessPoolExecutor`` until workhorse's executors land (a one-line
import change).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor  # later: from workhorse import ...

TOTALS = [100, 1_000, 10_000, 100_000]


def task(total: int) -> int:
    """CPU-bound work: the sum of 0 .. total-1."""
    return sum(range(total))


def main() -> None:
    with ProcessPoolExecutor(max_workers=5) as pool:
        for total, result in zip(TOTALS, pool.map(task, TOTALS), strict=True):
            print(f"task({total}) = {result}")


if __name__ == "__main__":
    main()
