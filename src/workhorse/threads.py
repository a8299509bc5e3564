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
import types
from typing import TYPE_CHECKING, Any

from . import _publish

# What type checkers see. At run time the table binds these names (and __all__) instead;
# tests/test_names.py checks that the two agree.
if TYPE_CHECKING:
    from threading import (
        TIMEOUT_MAX,
        BrokenBarrierError,
        ExceptHookArgs,
        ThreadError,
        Timer,
        active_count,
        current_thread,
        enumerate,
        excepthook,  # forwarded to threading's at run time (see _ThreadsModule)
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
        from threading import setprofile_all_threads, settrace_all_threads

        __all__ += ["setprofile_all_threads", "settrace_all_threads"]
else:
    __all__ = _publish.fill(globals(), "threads")  # noqa: PLE0605 (from the table)


class _ThreadsModule(types.ModuleType):
    """``workhorse.threads.excepthook`` *is* ``threading.excepthook``: reading it gives the
    current hook and assigning it installs one, as ``threading.excepthook = hook`` does (a
    plain re-export would be a stale copy, and an assignment would install nothing)."""

    def __getattr__(self, name: str) -> Any:
        if name in _FORWARDED:
            return getattr(threading, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FORWARDED:
            setattr(threading, name, value)
            return
        super().__setattr__(name, value)


_FORWARDED = frozenset({"excepthook"})
sys.modules[__name__].__class__ = _ThreadsModule


if TYPE_CHECKING:  # the type of group()'s argument, not a name of this module
    from ._options import Progress


def group(*, progress: Progress = False) -> TaskGroup[Thread]:
    """A task group whose members are threads (``progress``: a bar counting finished
    members, as for the pools).

    Example::

        with workhorse.threads.group() as g:
            g.start(sum, [1, 2, 3])
        print(g.results)   # [6]
    """
    return TaskGroup(Thread, progress=progress)


# Pickles and reprs name the public modules (`workhorse.threads.Lock`, `workhorse.ThreadPool`).
_publish.publish()
