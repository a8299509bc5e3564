"""The thread flavour: the same names as :mod:`workhorse.processes`, for threads.

Like :mod:`multiprocessing.dummy`, but with the extras of workhorse: thread results,
queue shutdown, and task groups whose members are cancelled cooperatively (a member blocked
in any workhorse call wakes with :class:`workhorse.Cancelled`).

Example::

    import workhorse.threads as th

    q = th.Queue()
    with th.group() as g:
        g.start(lambda: [print(item) for item in q])
        q.put_many(range(3))
        q.shutdown()
"""

from __future__ import annotations

from threading import active_count, current_thread, enumerate, get_ident, main_thread

from ._context import ThreadContext
from ._executor import ThreadPoolExecutor
from ._pipe import Connection, Pipe
from ._pool import ThreadPool
from ._taskgroup import TaskGroup
from ._thread import Thread
from ._thread_queue import JoinableQueue, Queue, SimpleQueue
from ._thread_sync import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore

Pool = ThreadPool
Executor = ThreadPoolExecutor

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
    "Queue",
    "RLock",
    "Semaphore",
    "SimpleQueue",
    "TaskGroup",
    "Thread",
    "ThreadContext",
    "ThreadPool",
    "ThreadPoolExecutor",
    "active_count",
    "current_thread",
    "enumerate",
    "get_ident",
    "group",
    "main_thread",
]


def group() -> TaskGroup[Thread]:
    """A task group whose members are threads.

    Example::

        with workhorse.threads.group() as g:
            g.start(sum, [1, 2, 3])
        print(g.results)   # [6]
    """
    return TaskGroup(Thread)
