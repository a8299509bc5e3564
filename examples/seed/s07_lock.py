"""Lock.

Two processes each append 5 lines to the same file while holding one lock, so each process's
lines come out contiguous even though each pauses between writes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import workhorse


def append_lines(label: str, path: Path, lock: workhorse.Lock) -> None:
    """Append 5 lines to ``path``; the lock keeps them together."""
    with lock, path.open("a") as f:
        for i in range(5):
            f.write(f"{label} line {i}\n")
            f.flush()
            time.sleep(0.02)  # gives the other process every chance to cut in: the lock stops it


def main() -> None:
    lock = workhorse.Lock()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shared.log"
        procs = [workhorse.Process(target=append_lines, args=(label, path, lock)) for label in "AB"]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        print("file contents:")
        print(path.read_text(), end="")


if __name__ == "__main__":
    main()
