"""A Manager's dict and list modified by a Process (the docs' example), then a managed dict,
Queue and Lock shared with Pool tasks (a plain Queue cannot be passed to a pool task).
"""

from __future__ import annotations

from multiprocessing import Manager, Pool, Process
from typing import Any


def fill(d: dict[Any, Any], items: list[int]) -> None:
    d[1] = "1"
    d["2"] = 2
    d[0.25] = None
    items.reverse()


def work(n: int, shared: dict[int, int], q: Any, lock: Any) -> int:
    with lock:
        shared[n] = n * n
    q.put(f"task {n} done")
    return n


if __name__ == "__main__":
    with Manager() as manager:
        d = manager.dict()
        items = manager.list(range(10))
        p = Process(target=fill, args=(d, items))
        p.start()
        p.join()
        print(sorted(d.items(), key=repr))
        print(list(items))

        shared = manager.dict()
        q = manager.Queue()
        lock = manager.Lock()
        with Pool(2) as pool:
            done = pool.starmap(work, [(n, shared, q, lock) for n in range(6)])
        print("returned:", done)
        print("dict:", sorted(shared.items()))
        print("queue:", sorted(q.get(timeout=5) for _ in range(6)))
