"""The process flavour: a drop-in for :mod:`multiprocessing`.

Replace ``import multiprocessing as mp`` with ``import workhorse.processes as mp``: every name
of ``multiprocessing.__all__`` is here with the same signature, and every primitive can be
handed to any process at any time, under every start method. The start method is
multiprocessing's own (``fork`` on Linux up to Python 3.13, ``forkserver`` from 3.14):
``set_start_method``/``get_start_method`` are the stdlib's functions, so both libraries
always agree. Names where workhorse adds nothing (``current_process``, ``Value``'s shared
memory, ``RawValue``, ``Manager``'s server ...) are the stdlib's. The top-level ``workhorse``
package re-exports the most used names.

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

import multiprocessing
from typing import TYPE_CHECKING, Any

from . import _publish
from ._context import process_context

# What type checkers see. At run time the table binds these names (and __all__) instead;
# tests/test_names.py checks that the two agree.
if TYPE_CHECKING:
    from multiprocessing import (
        AuthenticationError,
        BufferTooShort,
        ProcessError,
        RawArray,
        RawValue,
        TimeoutError,
        active_children,
        allow_connection_pickling,
        cpu_count,
        current_process,
        freeze_support,
        get_all_start_methods,
        get_logger,
        get_start_method,
        log_to_stderr,
        parent_process,
        reducer,  # the pickling machinery; workhorse's own pickling is in _serialize
        set_executable,
        set_forkserver_preload,
        set_start_method,
    )

    from ._barrier import Barrier
    from ._condition import Condition, Event
    from ._context import ProcessContext
    from ._executor import ProcessPoolExecutor, ThreadPoolExecutor
    from ._pipe import Connection, Pipe
    from ._pool import Pool, ThreadPool
    from ._process import Process
    from ._queue import JoinableQueue, Queue, SimpleQueue
    from ._sync import BoundedSemaphore, Lock, RLock, Semaphore
    from ._taskgroup import TaskGroup

    Executor = ProcessPoolExecutor
    __all__ = [
        "Array",
        "AuthenticationError",
        "Barrier",
        "BoundedSemaphore",
        "BufferTooShort",
        "Condition",
        "Connection",
        "Event",
        "Executor",
        "JoinableQueue",
        "Lock",
        "Manager",
        "Pipe",
        "Pool",
        "Process",
        "ProcessContext",
        "ProcessError",
        "ProcessPoolExecutor",
        "Queue",
        "RLock",
        "RawArray",
        "RawValue",
        "Semaphore",
        "SimpleQueue",
        "TaskGroup",
        "ThreadPool",
        "ThreadPoolExecutor",
        "TimeoutError",
        "Value",
        "active_children",
        "allow_connection_pickling",
        "cpu_count",
        "current_process",
        "freeze_support",
        "get_all_start_methods",
        "get_context",
        "get_logger",
        "get_start_method",
        "group",
        "log_to_stderr",
        "parent_process",
        "reducer",
        "set_executable",
        "set_forkserver_preload",
        "set_start_method",
        "with_start_method",
    ]
else:
    __all__ = _publish.fill(globals(), "processes")  # noqa: PLE0605 (from the table)


def get_context(method: str | None = None) -> ProcessContext:
    """The workhorse context of start method ``method`` (``None``: the default one, which
    this call fixes, as :func:`multiprocessing.get_context` does).

    Example::

        ctx = workhorse.processes.get_context("spawn")
        with ctx.Pool(2) as pool:
            print(pool.map(abs, [-1, 2]))
    """
    if method is None:
        method = multiprocessing.get_start_method()
    return process_context(method)


def with_start_method(method: str) -> ProcessContext:
    """The process context for start method ``"fork"``, ``"spawn"`` or ``"forkserver"``
    (the same as ``get_context(method)``).

    Example::

        spawn = workhorse.processes.with_start_method("spawn")
        p = spawn.Process(target=print, args=("hi",))
    """
    return process_context(method)


if TYPE_CHECKING:  # the type of group()'s argument, not a name of this module
    from ._options import Progress


def group(*, progress: Progress = False) -> TaskGroup[Process]:
    """A task group whose members are processes (default start method; ``progress``: a bar
    counting finished members, as for the pools).

    Example::

        with workhorse.processes.group() as g:
            g.start(pow, 2, 10)
            g.start(pow, 3, 3)
        print(g.results)   # [1024, 27]
    """
    return TaskGroup(Process, progress=progress)


def Value(typecode_or_type: Any, *args: Any, lock: Any = True) -> Any:
    """:func:`multiprocessing.Value`: a ctypes object in shared memory; ``lock=True`` guards
    it with a workhorse :class:`RLock`.

    Like the stdlib's, it reaches a child only at start-up (as a ``Process`` argument).

    Example::

        counter = Value("i", 0)
        with counter.get_lock():
            counter.value += 1
    """
    return process_context(None).Value(typecode_or_type, *args, lock=lock)


def Array(typecode_or_type: Any, size_or_initializer: Any, *, lock: Any = True) -> Any:
    """:func:`multiprocessing.Array`: a ctypes array in shared memory; ``lock=True`` guards
    it with a workhorse :class:`RLock`.

    Example::

        squares = Array("d", 10)
    """
    return process_context(None).Array(typecode_or_type, size_or_initializer, lock=lock)


def Manager() -> Any:
    """:func:`multiprocessing.Manager`: a started ``SyncManager`` whose proxies can be passed
    to workhorse processes and pool tasks.

    Example::

        with Manager() as manager:
            shared = manager.dict()
    """
    return process_context(None).Manager()


# Pickles and reprs name the public modules (`workhorse.Lock`, `workhorse.threads.Lock`).
_publish.publish()
