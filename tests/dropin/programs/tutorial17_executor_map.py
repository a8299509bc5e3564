"""Tutorial 17: ProcessPoolExecutor.map of a CPU-bound sum on 5 workers, in input order."""

from concurrent.futures import ProcessPoolExecutor


def task(total: int) -> int:
    return sum(range(total))


if __name__ == "__main__":
    totals = [100, 1_000, 10_000, 100_000]
    with ProcessPoolExecutor(max_workers=5) as executor:
        for total, result in zip(totals, executor.map(task, totals), strict=True):
            print(f"sum(range({total})) = {result}")
