"""``ProcessPoolExecutor`` and ``ThreadPoolExecutor``: the stdlib's faces on workhorse's engines.

Both are real :class:`concurrent.futures.Executor` subclasses returning real
:class:`concurrent.futures.Future` objects, so ``wait``, ``as_completed`` and
``asyncio.wrap_future`` work unchanged. They are thin views over a :class:`~._front.Front`
(config, backend, task options); ``map``'s lazy, bounded result stream is
:mod:`._lazy_map`'s.

Differences from the stdlib (deliberate):

* A worker that dies (segfault, ``os._exit``, OOM kill) fails only the task it was running,
  with :class:`~workhorse.WorkerCrashed` (a ``BrokenProcessPool``); the pool replaces the
  worker and goes on. The stdlib breaks the whole pool.
* With ``cancel_running=True``, ``future.cancel()`` stops a *running* task (its worker is
  killed and replaced) and returns True; by default it returns False, as the stdlib's.
* ``map`` pulls its input lazily: the first calls are submitted by ``map()`` itself, the
  rest as results are read, so an infinite iterator works and memory stays flat (the stdlib
  reads the whole input inside ``map()``, and hangs on an infinite one). Every call still
  runs, read or not, when the input has a length or nobody started reading: ``shutdown()``,
  the interpreter's exit and dropping the unread iterator submit the rest, as the stdlib
  would have. An input without a length that is being read runs as far as it is read.
  Consequence: an error raised by the input iterable is raised by ``next()`` at its
  position, not by ``map()``. ``shutdown(cancel_futures=True)`` drops the unread rest.
* Batching is adaptive (or fixed by the constructor's ``chunksize=``); ``map(chunksize=n)``
  with ``n`` other than its default 1 fixes that call's batch size, as with the stdlib.
* ``max_tasks_per_child`` works with every start method (the stdlib refuses ``fork``).
* Leaving a ``with`` block on ``KeyboardInterrupt`` (or another ``BaseException``) stops
  the work at once (``terminate()``) instead of waiting for it.
* Extras as keyword arguments of the constructor: ``timeout`` (per task), ``retries`` and
  ``retry_on``, ``max_tasks_per_worker``, ``progress``, ``chunksize`` (``"auto"`` by
  default), ``backend`` (``"serial"`` runs every task inline, for pdb; see
  :mod:`._registry`); per-call overrides only through :meth:`with_options`, never as
  keyword arguments of ``submit``/``map``, which belong to the task.
"""

from __future__ import annotations

import concurrent.futures.process
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, TypeVar, Unpack

from ._aio import AsyncContext, AsyncTasks
from ._config import (
    ExecutorViewOptions,
    Face,
    PoolConfig,
    ProcessPoolExecutorExtras,
    ThreadPoolExecutorExtras,
    check_keywords,
    spelled_out,
    takes_extras,
)
from ._front import UNSET, Front, View
from ._scheduler._job import ARGS, ITEM

__all__ = ["OptionsView", "ProcessPoolExecutor", "ThreadPoolExecutor"]

T = TypeVar("T")
# The __cause__ type of a task's exception, as the stdlib's executor makes it (typeshed does
# not declare it; code checks it by type).
_STDLIB_REMOTE_TRACEBACK: Any = concurrent.futures.process._RemoteTraceback
_PROCESS_POOL_EXECUTOR = Face(
    "ProcessPoolExecutor", "processes", max_tasks="max_tasks_per_child", context="mp_context",
    remote_traceback=_STDLIB_REMOTE_TRACEBACK, spawn_when_recycling=True,
    extras=ProcessPoolExecutorExtras,
)  # fmt: skip
_THREAD_POOL_EXECUTOR = Face(
    "ThreadPoolExecutor", "threads", extra_workers=4, workers_cap=32,
    remote_traceback=_STDLIB_REMOTE_TRACEBACK, extras=ThreadPoolExecutorExtras,
)  # fmt: skip


class _Submitter(AsyncTasks):
    """``submit``/``map``/``with_options`` over a pool's front end (config, backend, options)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)``; returns a :class:`concurrent.futures.Future`.

        Raises ``RuntimeError`` after ``shutdown()`` (the stdlib's message).

        Example::

            future = executor.submit(pow, 2, 10)
            assert future.result() == 1024
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        return self._front.run_one(fn, args, kwargs)

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[T]:
        """Like the builtin ``map``, run on the pool; results in input order, streamed.

        The input is pulled lazily, a bounded number of calls in flight, so it may be
        infinite. ``timeout`` is the stdlib's: seconds from this call after which ``next()``
        raises ``TimeoutError`` and the calls not yet finished are cancelled. ``chunksize``
        other than 1 fixes how many calls travel together; 1 (the default) leaves batching
        to the pool, which sizes batches from measured durations.

        Example::

            assert list(executor.map(pow, [2, 3], [2, 2])) == [4, 9]
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        deadline = None if timeout is None else time.monotonic() + timeout
        if len(iterables) == 1:
            calls, kind = iter(iterables[0]), ITEM
        else:
            calls, kind = zip(*iterables, strict=False), ARGS
        return self._front.lazy_map(
            fn, calls, kind, iterables, ordered=True, deadline=deadline, stop_on_error=True,
            chunksize=None if chunksize == 1 else chunksize,
        )  # fmt: skip

    @spelled_out(ExecutorViewOptions, lambda _name: UNSET)
    def with_options(self, **options: Unpack[ExecutorViewOptions]) -> OptionsView:
        """A light view of this pool whose calls get other options; it shares the pool's
        workers and has ``submit``, ``map`` and ``with_options`` (no ``shutdown``). An
        argument not given keeps the pool's value.

        Example::

            quick = executor.with_options(timeout=1.0, retries=2)
            quick.submit(fetch, url)
        """
        check_keywords(ExecutorViewOptions, options, "with_options")
        return OptionsView(self, self._front.view(options))


class OptionsView(View, _Submitter):
    """An executor seen with other task options (see ``with_options``); shares its workers.

    Example::

        executor.with_options(timeout=5).map(work, items)
    """


class _PoolExecutor(_Submitter, AsyncContext, Executor):
    @property
    def _broken(self) -> str | bool:
        # The stdlib executors' flag (False, or why the pool broke): private, but code and
        # tests poll it to wait for a broken pool (CPython's FailingInitializerTest does).
        broken: BaseException | None = getattr(self._front.backend, "_broken", None)
        return False if broken is None else str(broken)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; ``wait`` for those submitted (or cancel the queued ones).

        Example::

            executor.shutdown(wait=False, cancel_futures=True)
        """
        self._front.close(wait, cancel_futures=cancel_futures)

    def terminate(self) -> None:
        """Stop now: running tasks are stopped, queued ones cancelled, workers gone.

        Example::

            executor.terminate()
        """
        self._front.terminate()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.terminate()  # Ctrl-C or SystemExit: do not wait for the work
        else:
            self.shutdown(wait=True)


class ProcessPoolExecutor(_PoolExecutor):
    """A process pool that never hangs and never loses a task; a drop-in for
    :class:`concurrent.futures.ProcessPoolExecutor`.

    Args:
        max_workers: number of worker processes (default: the CPU count).
        mp_context: a ``multiprocessing`` or workhorse context choosing the start method
            (default: multiprocessing's, or ``spawn`` when ``max_tasks_per_child`` is given,
            as the stdlib does).
        initializer: called with ``initargs`` in each worker when it starts; if it raises,
            the pool is broken (:class:`~workhorse.PoolBroken`) instead of forking forever.
        initargs: the initializer's arguments.
        max_tasks_per_child: the stdlib's name for ``max_tasks_per_worker``.

    Keyword Args:
        timeout: per-task limit in seconds; a task past it is stopped (its worker killed and
            replaced) and its future raises :class:`~workhorse.TaskTimeout`.
        retries: how many times a failed task is run again.
        retry_on: the exception types that are retried (a crashed worker,
            ``WorkerCrashed``, included by default: ``Exception``).
        max_tasks_per_worker: a worker is replaced after this many tasks.
        progress: a progress bar on ``map`` (see :mod:`workhorse._progress_bar`): ``True``
            on a terminal, ``"always"``, or a stream.
        chunksize: ``"auto"`` (adaptive batching) or a fixed number of tasks per batch.
        init_timeout: seconds a worker's ``initializer`` may take; past it the worker is
            killed and the pool is broken (futures fail with :class:`~workhorse.PoolBroken`
            caused by :class:`~workhorse.TaskTimeout`), never left hanging.
        idle_timeout: seconds a worker may stay idle before it exits; workers are started
            again when work arrives (``None``: they stay until shutdown).
        cancel_running: ``future.cancel()`` of a running task stops it (its worker is killed
            and replaced) and returns True; by default it returns False, as the stdlib does.
        backend: what runs the tasks: ``"processes"`` (the default), ``"threads"``,
            ``"serial"`` (inline in the caller, in order: for pdb and tests) or ``"dask"``
            (the current Dask client); ``$WORKHORSE_BACKEND`` sets it for every pool
            created without it.
        trace: a file path: a Chrome trace-event timeline of the pool's workers is written
            there at shutdown (open it in https://ui.perfetto.dev).
        insights: time each task, not only each batch: ``insights()`` then reports how long
            tasks ran and waited in the queue and the slowest tasks, and the trace shows
            each task inside its batch (it costs a clock read per task).
        worker_exit: called in each worker that leaves in the ordinary course (shutdown,
            task limit, idle), at most 2 s; one that raises is logged.
        shared: read-only data the tasks read as ``workhorse.worker().shared``, delivered to
            each worker once, not with every task: inherited under ``fork``; pickled once
            under ``spawn``/``forkserver``, its large buffers (NumPy arrays) in one read-only
            shared-memory mapping every worker reads; the object itself on threads; Dask's
            broadcast ``scatter`` on Dask.

    With the environment variable ``WORKHORSE_WORKER_MEMORY_GROWTH`` set (bytes), a worker
    whose memory grows by more than that is replaced after its
    batch, with one warning logged per pool.

    Example::

        with workhorse.ProcessPoolExecutor(timeout=10) as pool:
            futures = [pool.submit(pow, 2, n) for n in range(10)]
            print([f.result() for f in futures])
    """

    @takes_extras(_PROCESS_POOL_EXECUTOR)
    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        *,
        max_tasks_per_child: int | None = None,
        **extras: Unpack[ProcessPoolExecutorExtras],
    ) -> None:
        config = PoolConfig.for_face(_PROCESS_POOL_EXECUTOR, locals())
        self._front = Front.open(config, self)

    def __repr__(self) -> str:
        return f"<workhorse.ProcessPoolExecutor max_workers={self._front.workers}>"


class ThreadPoolExecutor(_PoolExecutor):
    """A thread pool with per-task timeouts, cancellation of running tasks and retries; a
    drop-in for :class:`concurrent.futures.ThreadPoolExecutor`.

    A thread cannot be killed: a task past its ``timeout`` (or, with ``cancel_running=True``,
    a running task whose future is cancelled) fails on time and its thread is asked to stop
    at its next workhorse call (``workhorse.Cancelled``) and replaced; the result it may
    produce later is discarded.
    ``chunksize`` fixes how many calls a thread takes at once (``"auto"``: adaptive, many
    tiny calls per lock round trip, slow ones one by one). ``backend`` as for
    :class:`ProcessPoolExecutor` (default ``"threads"``).

    Example::

        with workhorse.ThreadPoolExecutor(max_workers=8, timeout=5) as pool:
            statuses = list(pool.map(fetch_status, urls))
    """

    @takes_extras(_THREAD_POOL_EXECUTOR)
    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        **extras: Unpack[ThreadPoolExecutorExtras],
    ) -> None:
        config = PoolConfig.for_face(_THREAD_POOL_EXECUTOR, locals())
        self._front = Front.open(config, self)

    def __repr__(self) -> str:
        return f"<workhorse.ThreadPoolExecutor max_workers={self._front.workers}>"
