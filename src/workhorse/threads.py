"""The thread flavour: the same names as :mod:`workhorse.processes`, for threads.

A drop-in for :mod:`threading` too: every name of ``threading.__all__`` is here with the same
signature (the stdlib's own object where workhorse adds nothing: ``local``, ``Timer``,
``excepthook``, ``settrace`` ...). Like :mod:`multiprocessing.dummy`, but with the extras of
workhorse: thread results, queue shutdown, and task groups whose members are cancelled
cooperatively (a member blocked in any workhorse call wakes with :class:`workhorse.Cancelled`).

Example::

    import workhorse.threads as th

    q = th.Queue()
    with th.group() as g:
        g.start(lambda: [print(item) for item in q])
        q.put_many(range(3))
        q.shutdown()
"""

from __future__ import annotations

import sys
import threading
from threading import (
    TIMEOUT_MAX,
    BrokenBarrierError,
    ExceptHookArgs,
    ThreadError,
    Timer,
    active_count,
    current_thread,
    enumerate,
    excepthook,
    get_ident,
    get_native_id,
    getprofile,
    gettrace,
    local,
    main_thread,
    setprofile,
    settrace,
    stack_size,
)

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
    "TIMEOUT_MAX",
    "Barrier",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "Condition",
    "Connection",
    "Event",
    "ExceptHookArgs",
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
    "ThreadError",
    "ThreadPool",
    "ThreadPoolExecutor",
    "Timer",
    "active_count",
    "current_thread",
    "enumerate",
    "excepthook",
    "get_ident",
    "get_native_id",
    "getprofile",
    "gettrace",
    "group",
    "local",
    "main_thread",
    "setprofile",
    "settrace",
    "stack_size",
]

if sys.version_info >= (3, 12):
    setprofile_all_threads = threading.setprofile_all_threads
    settrace_all_threads = threading.settrace_all_threads
    __all__ += ["setprofile_all_threads", "settrace_all_threads"]


def group() -> TaskGroup[Thread]:
    """A task group whose members are threads.

    Example::

        with workhorse.threads.group() as g:
            g.start(sum, [1, 2, 3])
        print(g.results)   # [6]
    """
    return TaskGroup(Thread)
