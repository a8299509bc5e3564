"""Tutorial 1: a function run in five child processes; the parent waits for all of them.

The children block on an event until the parent has counted them, so "5 children alive"
is certain; each child prints its own line (unflushed, as users write it), in no fixed order.
"""

# stdout: sorted
from __future__ import annotations

import multiprocessing as mp
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event


def task(name: str, go: Event) -> None:
    go.wait()
    print(f"task {name} ran in {mp.current_process().name}")


if __name__ == "__main__":
    go = mp.Event()
    children = [mp.Process(target=task, args=(str(i), go)) for i in range(5)]
    for child in children:
        child.start()
    print("children alive:", len(mp.active_children()))
    go.set()
    for child in children:
        child.join()
    print("exit codes:", [child.exitcode for child in children])
