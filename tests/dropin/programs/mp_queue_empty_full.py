"""Queue timeouts raise queue.Empty / queue.Full; items from a child arrive in order."""

from __future__ import annotations

import multiprocessing as mp
import queue
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.queues import Queue


def send(q: Queue[int]) -> None:
    for i in range(3):
        q.put(i)


if __name__ == "__main__":
    q: Queue[int] = mp.Queue()
    try:
        q.get(timeout=0.1)
    except queue.Empty:
        print("get(timeout=0.1): queue.Empty")
    try:
        q.get_nowait()
    except queue.Empty:
        print("get_nowait(): queue.Empty")
    small: Queue[str] = mp.Queue(maxsize=1)
    small.put_nowait("first")
    try:
        small.put("second", timeout=0.1)
    except queue.Full:
        print("put(timeout=0.1) on a full queue: queue.Full")
    print("got", small.get(timeout=5))
    p = mp.Process(target=send, args=(q,))
    p.start()
    print("from child:", [q.get(timeout=10) for _ in range(3)])
    p.join()
    q.close()
    q.join_thread()
    small.close()
    small.join_thread()
