"""The usual script boilerplate: freeze_support() and set_start_method('spawn') in the guard."""

from __future__ import annotations

import multiprocessing
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.queues import Queue


def report(q: Queue[str]) -> None:
    q.put(f"child uses {multiprocessing.get_start_method()}")


if __name__ == "__main__":
    multiprocessing.freeze_support()
    multiprocessing.set_start_method("spawn")
    print("parent uses", multiprocessing.get_start_method())
    q: Queue[str] = multiprocessing.Queue()
    p = multiprocessing.Process(target=report, args=(q,))
    p.start()
    print(q.get(timeout=20))
    p.join()
    print("exit code:", p.exitcode)
