"""The process flavour: a drop-in for :mod:`multiprocessing`.

Replace ``import multiprocessing as mp`` with ``import workhorse.processes as mp``: the names
and signatures are the same, and every primitive here can be handed to any process at any
time, under every start method. The top-level ``workhorse`` package re-exports these names.

Example::

    import workhorse.processes as mp

    def work(q):
        for item in q:          # ends once the queue is shut down and drained
            print(item)

    if __name__ == "__main__":
        q = mp.Queue()
        p = mp.Process(target=work, args=(q,))
        p.start()
        q.put_many(range(5))
        q.shutdown()
        p.join()
"""

from __future__ import annotations

from multiprocessing import active_children, cpu_count, current_process, parent_process

from ._condition import Barrier, Condition, Event
from ._context import ProcessContext
from ._executor import ProcessPoolExecutor, ThreadPoolExecutor
from ._pipe import Connection, Pipe
from ._pool import Pool, ThreadPool
from ._process import DEFAULT_START_METHOD, Process
from ._queue import JoinableQueue, Queue, SimpleQueue
from ._sync import BoundedSemaphore, Lock, RLock, Semaphore
from ._taskgroup import TaskGroup

Executor = ProcessPoolExecutor

__all__ = [
    "Barrier",
    "BoundedSemaphore",
    "Condition",
    "Connection",
    "Event",
    "Executor",
    "JoinableQueue",
    "Lock",
    "Pipe",
    "Pool",
    "Process",
    "ProcessContext",
    "ProcessPoolExecutor",
    "Queue",
    "RLock",
    "Semaphore",
    "SimpleQueue",
    "TaskGroup",
    "ThreadPool",
    "ThreadPoolExecutor",
    "active_children",
    "cpu_count",
    "current_process",
    "get_start_method",
    "group",
    "parent_process",
    "with_start_method",
]


def group() -> TaskGroup[Process]:
    """A task group whose members are processes (default start method).

    Example::

        with workhorse.processes.group() as g:
            g.start(pow, 2, 10)
            g.start(pow, 3, 3)
        print(g.results)   # [1024, 27]
    """
    return TaskGroup(Process)


def with_start_method(method: str) -> ProcessContext:
    """The process context for start method ``"fork"``, ``"spawn"`` or ``"forkserver"``.

    Example::

        spawn = workhorse.processes.with_start_method("spawn")
        p = spawn.Process(target=print, args=("hi",))
    """
    return ProcessContext(method)


def get_start_method() -> str:
    """The default start method of ``workhorse.Process`` (see ``docs/design.md``)."""
    return DEFAULT_START_METHOD
