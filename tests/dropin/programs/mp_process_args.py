"""Process with args, kwargs and a name; current_process() and parent_process(); exit codes
of a normal end, sys.exit and terminate(); a daemon child that would run forever is
terminated when the parent exits.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event


def add(out: Queue[str], x: int, *, y: int) -> None:
    has_parent = mp.parent_process() is not None
    out.put(f"{mp.current_process().name} (has a parent: {has_parent}): {x} + {y} = {x + y}")


def leave(code: int) -> None:
    sys.exit(code)


def block(event: Event) -> None:
    event.wait()


def forever() -> None:
    while True:
        time.sleep(0.05)


if __name__ == "__main__":
    print("main:", mp.current_process().name, mp.parent_process())
    print("cpu_count >= 1:", mp.cpu_count() >= 1)
    out: Queue[str] = mp.Queue()
    p = mp.Process(target=add, args=(out, 2), kwargs={"y": 3}, name="adder")
    print("before start:", p.pid is None, p.is_alive(), p.exitcode)
    p.start()
    print(out.get(timeout=10))
    p.join()
    print("after join:", p.is_alive(), p.exitcode, p.name)

    q = mp.Process(target=leave, args=(3,))
    q.start()
    q.join()
    print("sys.exit(3) ->", q.exitcode)

    event = mp.Event()
    r = mp.Process(target=block, args=(event,))
    r.start()
    r.join(timeout=0.1)
    print("still blocked:", r.is_alive())
    r.terminate()
    r.join()
    print("terminated ->", r.exitcode == -signal.SIGTERM)

    d = mp.Process(target=forever, daemon=True)
    d.start()
    print("daemon:", d.daemon, "alive:", d.is_alive())
    print("the parent exits without joining the daemon")
