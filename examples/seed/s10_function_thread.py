"""Function as a thread.

Two threads each run a function that prints 3 lines; the main thread joins both and, unlike
with ``threading``, reads each function's return value with ``result()``.
"""

from __future__ import annotations

import time

from workhorse._tour import say

import workhorse


def count(label: str) -> int:
    """Print 3 numbered lines and return how many were printed."""
    for i in range(3):
        say(f"thread {label}: line {i}")
        time.sleep(0.05)
    return 3


def main() -> None:
    threads = [workhorse.threads.Thread(target=count, args=(label,)) for label in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for label, t in zip("AB", threads, strict=True):
        say(f"thread {label} returned {t.result()}")


if __name__ == "__main__":
    main()
