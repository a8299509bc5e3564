"""Class as a process.

Subclass ``workhorse.Process`` and override ``run()``, exactly as with ``multiprocessing``;
five instances get the default numbered names ``Worker-1`` ... ``Worker-5``.
"""

from __future__ import annotations

import os
import random
import time

from workhorse._tour import say

import workhorse


class Worker(workhorse.Process):
    """A process whose work is its ``run()`` method."""

    def run(self) -> None:
        say(f"{self.name} running in pid {os.getpid()}")
        time.sleep(random.uniform(0.05, 0.2))  # stands in for real work


def main() -> None:
    workers = [Worker() for _ in range(5)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    say("joined " + ", ".join(f"{w.name} (exit code {w.exitcode})" for w in workers))


if __name__ == "__main__":
    main()
