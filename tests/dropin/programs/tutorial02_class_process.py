"""Tutorial 2: a Process subclass overriding run(); five instances with numbered names."""

from __future__ import annotations

import multiprocessing as mp
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.queues import Queue


class Worker(mp.Process):
    def __init__(self, number: int, results: Queue[Any]) -> None:
        super().__init__()
        self.number = number
        self.results = results

    def run(self) -> None:
        self.results.put((self.number, mp.current_process().name, self.number**2))


if __name__ == "__main__":
    results: Queue[Any] = mp.Queue()
    workers = [Worker(i, results) for i in range(5)]
    print("names:", [w.name for w in workers])
    for w in workers:
        w.start()
    for number, name, square in sorted(results.get(timeout=10) for _ in workers):
        print(f"worker {number} named {name} computed {square}")
    for w in workers:
        w.join()
    print("exit codes:", [w.exitcode for w in workers])
