"""Tutorial 20: ThreadPoolExecutor.submit of I/O-bound calls, collected with as_completed.

The I/O is a read of files the program writes first (offline and deterministic).
"""

from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path


def read_words(path: Path) -> int:
    return len(path.read_text().split())


if __name__ == "__main__":
    paths = []
    for n in range(1, 6):
        path = Path(f"doc{n}.txt")
        path.write_text("word " * n * 3)
        paths.append(path)
    with ThreadPoolExecutor(max_workers=5) as executor:
        futures = {executor.submit(read_words, path): path for path in paths}
        counts = {futures[f].name: f.result() for f in as_completed(futures)}
    for name in sorted(counts):
        print(name, counts[name])
