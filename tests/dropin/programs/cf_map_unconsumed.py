"""executor.map() whose iterator is never consumed: the stdlib still runs every call.

Each call leaves a marker file; the program lists the markers after the executor's block.
"""

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path


def mark(n: int) -> int:
    Path(f"marker-{n}").touch()
    return n


if __name__ == "__main__":
    with ThreadPoolExecutor(max_workers=2) as threads:
        threads.map(mark, range(3))
    print("thread markers:", sorted(p.name for p in Path().glob("marker-*")))
    with ProcessPoolExecutor(max_workers=2) as processes:
        processes.map(mark, range(3, 6))
    print("all markers:", sorted(p.name for p in Path().glob("marker-*")))
