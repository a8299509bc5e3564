"""Contexts: one set of names per backend.

A context bundles a backend's worker class and primitives under the same names, as
:func:`multiprocessing.get_context` does. ``workhorse.processes`` and ``workhorse.threads``
are the public modules of the two built-in contexts; :func:`get_context` returns a context
by name (``"processes"``, ``"threads"``, a start method, ``"dask"``), and
``processes.get_context(m)`` (or ``with_start_method(m)``) returns a :class:`ProcessContext`
whose ``Process``, pools and task groups use start method ``m``. A context's names are those
of its column in :mod:`workhorse._names`; a new backend adds that column and registers its
context here with :func:`register_context`.

:class:`ProcessContext` subclasses :class:`multiprocessing.context.BaseContext`, so it has
every name of a multiprocessing context with the same signature (``Value``, ``Array``,
``Manager``, ``get_logger`` ...); the ones workhorse improves (processes, queues, locks,
pools ...) are workhorse's, the rest are the stdlib's, built on workhorse's locks where they
take one (``Value(lock=True)`` holds a workhorse ``RLock``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context as mpc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from . import (
    _barrier,
    _condition,
    _executor,
    _pipe,
    _pool,
    _process,
    _publish,
    _queue,
    _sync,
    _thread,
    _thread_queue,
    _thread_sync,
)
from ._executor import ProcessPoolExecutor
from ._options import Progress
from ._pool import Pool
from ._process import process_class
from ._taskgroup import TaskGroup
from ._thread import Thread

if TYPE_CHECKING:
    from ._dask._context import DaskContext

__all__ = [
    "Context",
    "ProcessContext",
    "ThreadContext",
    "get_context",
    "process_context",
    "register_context",
]


class Context:
    """The names every backend provides (see ``docs/design.md``).

    Example::

        ctx = workhorse.get_context("threads")
        q = ctx.Queue()
        with ctx.group() as g:
            g.start(print, "hello")
    """

    name: ClassVar[str]
    Pipe = staticmethod(_pipe.Pipe)

    def group(self, *, progress: Progress = False) -> TaskGroup[Any]:
        """A new task group whose members run as this context's workers (``progress``: a
        bar counting finished members, as for the pools)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<workhorse context {self.name!r}>"


if TYPE_CHECKING:  # typeshed types its names as the stdlib's classes, which ours replace
    _StdlibContext = object
else:
    _StdlibContext = mpc.BaseContext
_BASE: Any = mpc.BaseContext  # its methods, called on our context (they take ctx=self)


class ProcessContext(Context, _StdlibContext):
    """The process backend, for one start method (``fork``, ``spawn`` or ``forkserver``),
    or for multiprocessing's default one (``start_method=None``, decided when used).

    Example::

        spawn = workhorse.processes.get_context("spawn")
        p = spawn.Process(target=lambda: 42)
        p.start()
        assert p.result() == 42
    """

    name = "processes"
    Process: type[_process.Process]  # the class of this start method (set by __init__)
    if TYPE_CHECKING:  # bound from workhorse._names.TABLE below; checked by a test
        Queue = _queue.Queue
        SimpleQueue = _queue.SimpleQueue
        JoinableQueue = _queue.JoinableQueue
        Lock = _sync.Lock
        RLock = _sync.RLock
        Semaphore = _sync.Semaphore
        BoundedSemaphore = _sync.BoundedSemaphore
        Condition = _condition.Condition
        Event = _condition.Event
        Barrier = _barrier.Barrier
        Pipe = staticmethod(_pipe.Pipe)
        ThreadPool = _pool.ThreadPool
        ThreadPoolExecutor = _executor.ThreadPoolExecutor

    def __init__(self, start_method: str | None = None) -> None:
        if start_method is not None:
            methods = multiprocessing.get_all_start_methods()
            if start_method not in methods:
                raise ValueError(f"start_method must be one of {methods}, not {start_method!r}")
        self._start_method = start_method
        self.Process = process_class(start_method)

    def get_start_method(self, allow_none: bool = False) -> str | None:
        """The start method of this context's processes (the default context: the one
        multiprocessing uses now, as :func:`multiprocessing.get_start_method`)."""
        if self._start_method is None:
            return multiprocessing.get_start_method(allow_none)
        return self._start_method

    def get_context(self, method: str | None = None) -> ProcessContext:
        """This context (``method=None``), or the workhorse context of start method ``method``."""
        if method is None:
            return self
        return process_context(method)

    def Pool(self, processes: int | None = None, *args: Any, **kwargs: Any) -> Pool:
        """A :class:`workhorse.Pool` whose workers use this context's start method."""
        kwargs.setdefault("context", self)
        return Pool(processes, *args, **kwargs)

    def ProcessPoolExecutor(
        self, max_workers: int | None = None, *args: Any, **kwargs: Any
    ) -> ProcessPoolExecutor:
        """A :class:`workhorse.ProcessPoolExecutor` using this context's start method."""
        kwargs.setdefault("mp_context", self)
        return ProcessPoolExecutor(max_workers, *args, **kwargs)

    if TYPE_CHECKING:
        Executor = ProcessPoolExecutor

    def Value(self, typecode_or_type: Any, *args: Any, lock: Any = True) -> Any:
        """:func:`multiprocessing.Value`, guarded by a workhorse ``RLock`` (``lock=True``)."""
        return _BASE.Value(self, typecode_or_type, *args, lock=lock)

    def Array(self, typecode_or_type: Any, size_or_initializer: Any, *, lock: Any = True) -> Any:
        """:func:`multiprocessing.Array`, guarded by a workhorse ``RLock`` (``lock=True``)."""
        return _BASE.Array(self, typecode_or_type, size_or_initializer, lock=lock)

    def Manager(self) -> Any:
        """A started :class:`multiprocessing.managers.SyncManager` (its proxies work with
        workhorse processes and pools; its server runs as a stdlib process)."""
        from multiprocessing.managers import SyncManager

        method = self.get_start_method()
        manager = SyncManager(ctx=multiprocessing.get_context(method))
        manager.start()
        return manager

    def with_start_method(self, method: str) -> ProcessContext:
        """A context with the same names whose processes use start method ``method``."""
        return ProcessContext(method)

    def group(self, *, progress: Progress = False) -> TaskGroup[_process.Process]:
        """A new task group whose members are processes of this start method."""
        return TaskGroup(self.Process, progress=progress)

    def __repr__(self) -> str:
        method = self._start_method or "default"
        return f"<workhorse context 'processes' start_method={method!r}>"


_contexts: dict[str | None, ProcessContext] = {}


def process_context(method: str | None) -> ProcessContext:
    """The (cached) process context of start method ``method`` (``None``: the default)."""
    ctx = _contexts.get(method)
    if ctx is None:
        ctx = _contexts.setdefault(method, ProcessContext(method))
    return ctx


class ThreadContext(Context):
    """The thread backend.

    Example::

        ctx = workhorse.get_context("threads")
        t = ctx.Thread(target=sum, args=([1, 2],))
        t.start()
        assert t.result() == 3
    """

    name = "threads"
    if TYPE_CHECKING:  # bound from workhorse._names.TABLE below; checked by a test
        Thread = _thread.Thread
        Queue = _thread_queue.Queue
        SimpleQueue = _thread_queue.SimpleQueue
        JoinableQueue = _thread_queue.JoinableQueue
        Lock = _thread_sync.Lock
        RLock = _thread_sync.RLock
        Semaphore = _thread_sync.Semaphore
        BoundedSemaphore = _thread_sync.BoundedSemaphore
        Condition = _thread_sync.Condition
        Event = _thread_sync.Event
        Barrier = _thread_sync.Barrier
        Pipe = staticmethod(_pipe.Pipe)
        ThreadPool = _pool.ThreadPool
        Pool = ThreadPool
        ThreadPoolExecutor = _executor.ThreadPoolExecutor
        Executor = ThreadPoolExecutor

    def group(self, *, progress: Progress = False) -> TaskGroup[_thread.Thread]:
        """A new task group whose members are threads."""
        return TaskGroup(Thread, progress=progress)


_publish.bind(ProcessContext, "processes")
_publish.bind(ThreadContext, "threads")

#: The contexts :func:`get_context` knows, by name: each makes its context when asked.
_registry: dict[str, Callable[[], Context | DaskContext]] = {}


def register_context(name: str, factory: Callable[[], Context | DaskContext]) -> None:
    """Make ``get_context(name)`` return ``factory()``: a new backend's one line.

    Example::

        register_context("gpu", GpuContext)
        assert isinstance(workhorse.get_context("gpu"), GpuContext)
    """
    if name in _registry:
        raise ValueError(f"a context named {name!r} is registered already")
    _registry[name] = factory


def _dask() -> DaskContext:
    import workhorse  # its dask() imports Dask, and only then

    return workhorse.dask()


def _start_method(method: str) -> Callable[[], ProcessContext]:
    return lambda: process_context(method)


register_context("processes", lambda: process_context(None))
register_context("threads", ThreadContext)
for _method in multiprocessing.get_all_start_methods():
    register_context(_method, _start_method(_method))
register_context("dask", _dask)


def get_context(name: str = "processes") -> Context | DaskContext:
    """The context called ``name``: ``"processes"``, ``"threads"``, a start method
    (``"spawn"`` ...) or ``"dask"`` (what :func:`workhorse.dask` returns: a cluster on
    ``$DASK_SCHEDULER_ADDRESS``, or an embedded one; close it when done).

    Example::

        ctx = workhorse.get_context("spawn")   # processes started with spawn
    """
    try:
        factory = _registry[name]
    except KeyError:
        known = ", ".join(map(repr, sorted(_registry)))
        raise LookupError(f"unknown context {name!r}: the known ones are {known}") from None
    return factory()
