"""``Pool`` and ``ThreadPool``: :mod:`multiprocessing.pool`'s faces on workhorse's engines.

Differences from the stdlib (deliberate):

* A worker that dies fails only its own task (``WorkerCrashed``); ``multiprocessing.Pool``
  hangs forever in that case. Every ``get()`` of a task that cannot finish raises (after
  ``terminate()``: ``concurrent.futures.CancelledError``) instead of blocking forever.
* Leaving a ``with Pool() as pool:`` block normally waits for the submitted work
  (``close()`` + ``join()``); the stdlib calls ``terminate()``, which silently drops it.
  Leaving it on ``KeyboardInterrupt`` (or any ``BaseException``) terminates, as the stdlib.
* ``imap``/``imap_unordered`` pull their input lazily with a bounded number of tasks in
  flight (an infinite iterator works), where the stdlib reads the whole input in a
  background thread. Every call still runs, as with the stdlib, when the input has a length
  or nobody started reading: ``close()``, the interpreter's exit and dropping the iterator
  submit the rest. An input without a length that is being read runs as far as it is read.
  ``ResultIterator.close()`` (an addition) cancels the calls that have not started.
* Batching is adaptive (or fixed by the constructor's ``chunksize=``); a call's own
  ``chunksize`` other than its default (``None`` for ``map``, 1 for ``imap``) fixes that
  call's batch size, as with the stdlib.
* ``map``/``map_async`` raise the error of the first failed task in *input* order (the
  stdlib: the first to fail in time).
* A callback (``callback``/``error_callback``) that raises is logged and does not break the
  pool (the stdlib's result thread dies and the pool hangs).
* ``join(timeout)`` accepts a timeout (``multiprocessing.TimeoutError`` when the workers are
  still busy after it).
* An unclosed running pool that is garbage-collected emits a ``ResourceWarning``, as the
  stdlib does, but then lets the submitted tasks finish instead of terminating them.
* Extras as keyword arguments of the constructor: ``timeout``, ``retries``/``retry_on``,
  ``max_tasks_per_worker``, ``progress``, ``chunksize``; per-call overrides through
  :meth:`with_options`, a view with the same task methods sharing the pool's workers.
"""

from __future__ import annotations

import multiprocessing.pool
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from multiprocessing import TimeoutError as PoolTimeoutError
from typing import Any, TypeVar, Unpack

from ._aio import AsyncContext, AsyncTasks
from ._async_result import AsyncResult, MapResult
from ._config import (
    Face,
    PoolConfig,
    PoolExtras,
    ThreadPoolExtras,
    ViewOptions,
    check_keywords,
    spelled_out,
    takes_extras,
)
from ._front import UNSET, Front, View
from ._lazy_map import ResultIterator
from ._options import check_chunksize
from ._scheduler._job import ARGS, ITEM, ListSink

__all__ = ["AsyncResult", "MapResult", "Pool", "PoolView", "ThreadPool"]

T = TypeVar("T")
_RUN, _CLOSE, _TERMINATE = "RUN", "CLOSE", "TERMINATE"
JOIN_POLL = 0.01  # seconds between two looks at the workers in join(timeout)
_STDLIB_REMOTE_TRACEBACK: Any = multiprocessing.pool.RemoteTraceback  # type: ignore[attr-defined]
_POOL = Face(
    "Pool", "processes", workers="processes", max_tasks="maxtasksperchild", context="context",
    remote_traceback=_STDLIB_REMOTE_TRACEBACK, extras=PoolExtras,
)  # fmt: skip
_THREAD_POOL = Face(
    "ThreadPool", "threads", workers="processes", remote_traceback=_STDLIB_REMOTE_TRACEBACK
)


class _PoolTasks(AsyncTasks):
    """The task methods of a pool, shared by ``Pool``/``ThreadPool`` and their views."""

    _owner: _BasePool

    def apply(self, func: Callable[..., T], args: Iterable[Any] = (), kwds: Any = None) -> T:
        """Call ``func(*args, **kwds)`` in a worker and return its result.

        Example::

            assert pool.apply(pow, (2, 10)) == 1024
        """
        return self.apply_async(func, args, kwds).get()

    def apply_async(
        self,
        func: Callable[..., T],
        args: Iterable[Any] = (),
        kwds: Any = None,
        callback: Callable[[T], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult[T]:
        """Schedule ``func(*args, **kwds)``; ``callback``/``error_callback`` get the outcome.

        Example::

            pool.apply_async(pow, (2, 10), callback=print, error_callback=log_error)
        """
        self._owner._check_running()
        _check_func(func)
        future = self._front.run_one(func, tuple(args), dict(kwds or {}))
        return AsyncResult(future, callback, error_callback)

    def map(
        self, func: Callable[..., T], iterable: Iterable[Any], chunksize: int | None = None
    ) -> list[T]:
        """``list(map(func, iterable))`` computed by the pool, in input order.

        Example::

            assert pool.map(abs, [-1, 2]) == [1, 2]
        """
        return self._run_map(func, _listed(iterable), ITEM, chunksize)

    def starmap(
        self,
        func: Callable[..., T],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
    ) -> list[T]:
        """Like ``map`` with each item unpacked as arguments: ``func(*item)``.

        Example::

            assert pool.starmap(pow, [(2, 3), (3, 2)]) == [8, 9]
        """
        return self._run_map(func, _arg_tuples(iterable), ARGS, chunksize)

    def _run_map(
        self, func: Callable[..., T], calls: Any, kind: str, chunksize: int | None
    ) -> list[T]:
        sink, bar = self._submit_all(func, calls, kind, chunksize)
        try:
            return sink.as_future().result()
        finally:
            if bar is not None:
                bar.close(done=len(calls) - sink.remaining)

    def map_async(
        self,
        func: Callable[..., T],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        callback: Callable[[list[T]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> MapResult[T]:
        """Asynchronous ``map``: a :class:`MapResult` whose ``get()`` is the list.

        Example::

            result = pool.map_async(abs, [-1, 2])
            assert result.get(timeout=5) == [1, 2]
        """
        # a copy of the input: the caller may change it
        sink, _ = self._submit_all(func, list(iterable), ITEM, chunksize)
        return MapResult(sink.as_future(), callback, error_callback)

    def starmap_async(
        self,
        func: Callable[..., T],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        callback: Callable[[list[T]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> MapResult[T]:
        """Asynchronous ``starmap``.

        Example::

            assert pool.starmap_async(pow, [(2, 3)]).get() == [8]
        """
        sink, _ = self._submit_all(func, _arg_tuples(iterable), ARGS, chunksize)
        return MapResult(sink.as_future(), callback, error_callback)

    def imap(
        self, func: Callable[..., T], iterable: Iterable[Any], chunksize: int = 1
    ) -> ResultIterator[T]:
        """Results of ``func(item)`` in input order, streamed as they complete; the input is
        pulled lazily (it may be infinite). ``next(timeout)`` raises
        ``multiprocessing.TimeoutError`` and leaves the iterator usable.

        Example::

            for square in pool.imap(lambda x: x * x, itertools.count()):
                if square > 100:
                    break
        """
        return self._lazy(func, iterable, chunksize, ordered=True)

    def imap_unordered(
        self, func: Callable[..., T], iterable: Iterable[Any], chunksize: int = 1
    ) -> ResultIterator[T]:
        """Like ``imap``, but each result as soon as it is ready, in completion order.

        Example::

            assert sorted(pool.imap_unordered(abs, [-1, 2])) == [1, 2]
        """
        return self._lazy(func, iterable, chunksize, ordered=False)

    def _lazy(
        self, func: Callable[..., T], iterable: Iterable[Any], chunksize: int, *, ordered: bool
    ) -> ResultIterator[T]:
        self._owner._check_running()
        _check_func(func)
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize!r}")  # the stdlib's words
        return self._front.lazy_map(
            func, iter(iterable), ITEM, (iterable,), ordered=ordered,
            timeout_error=PoolTimeoutError, chunksize=None if chunksize == 1 else chunksize,
        )  # fmt: skip

    def _submit_all(
        self, func: Callable[..., Any], calls: list[Any], kind: str, chunksize: Any
    ) -> tuple[ListSink, Any]:
        """Run every call as one job; its sink fills a list in input order. ``chunksize``
        (``None``, the stdlib's default: adaptive batching) fixes this call's batch size."""
        size = check_chunksize(chunksize, allow_auto=False)
        self._owner._check_running()
        _check_func(func)
        return self._front.run_all(func, calls, kind, size)

    @spelled_out(ViewOptions, lambda _name: UNSET)
    def with_options(self, **options: Unpack[ViewOptions]) -> PoolView:
        """A light view of this pool whose tasks get other options: the same task methods
        (``apply*``, ``map*``, ``starmap*``, ``imap*``), the same workers, no ``close``.

        Example::

            patient = pool.with_options(timeout=60, retries=2)
            patient.map(fetch, urls)
        """
        check_keywords(ViewOptions, options, "with_options")
        return PoolView(self._owner, self._front.view(options))


def _listed(iterable: Iterable[T]) -> list[T]:
    """The input as a list (its errors are raised here, before any task runs)."""
    return iterable if type(iterable) is list else list(iterable)


def _arg_tuples(iterable: Iterable[Iterable[Any]]) -> list[tuple[Any, ...]]:
    return [a if type(a) is tuple else tuple(a) for a in iterable]


def _check_func(func: Any) -> None:
    if not callable(func):
        raise TypeError(f"func must be callable, not {type(func).__name__}")


class PoolView(View, _PoolTasks):
    """A pool seen with other task options (see ``with_options``); shares its workers and
    its state (closing the pool closes the view).

    Example::

        pool.with_options(timeout=5).map(work, items)
    """

    _owner: _BasePool


class _BasePool(_PoolTasks, AsyncContext):
    """Lifecycle: ``close``, ``join``, ``terminate``, the context manager."""

    def _open(self, config: PoolConfig) -> None:
        self._owner = self
        self._lock = threading.Lock()
        self._front = Front.open(config, self)
        self._state = _RUN  # only now: a constructor that raised leaves no "unclosed pool"

    def _check_running(self) -> None:
        if self._state != _RUN:
            raise ValueError("Pool not running")

    def close(self) -> None:
        """Accept no more tasks; the workers exit once the submitted ones are done.

        Example::

            pool.close()
            pool.join()
        """
        with self._lock:
            if self._state != _RUN:
                return
            self._state = _CLOSE
        self._front.close(wait=False)

    def terminate(self) -> None:
        """Stop the workers now; unfinished tasks are cancelled (their ``get`` raises
        ``CancelledError``).

        Example::

            pool.terminate()
        """
        with self._lock:
            self._state = _TERMINATE
        self._front.terminate()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the workers to exit; the pool must be closed or terminated first.

        Example::

            pool.close()
            pool.join(timeout=30)
        """
        if self._state == _RUN:
            raise ValueError("Pool is still running")
        if timeout is not None:
            deadline = time.monotonic() + timeout
            while self._front.backend.alive:
                if time.monotonic() >= deadline:
                    raise PoolTimeoutError(f"the pool's workers still run after {timeout} s")
                time.sleep(JOIN_POLL)
        self._front.backend.shutdown(wait=True)
        self._front.write_trace()  # close() wrote what was done by then; now all of it

    def __enter__(self) -> Any:
        self._check_running()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.terminate()
        else:
            self.close()
            self.join()

    def __del__(self) -> None:
        if getattr(self, "_state", None) == _RUN:
            warnings.warn(
                f"unclosed running pool {self!r}", ResourceWarning, stacklevel=2, source=self
            )


class Pool(_BasePool):
    """A process pool with the :class:`multiprocessing.pool.Pool` API that never hangs.

    Args:
        processes: number of worker processes (default: the CPU count).
        initializer: called in each worker when it starts.
        initargs: the initializer's arguments.
        maxtasksperchild: a worker is replaced after this many tasks.
        context: a ``multiprocessing`` or workhorse context choosing the start method.

    The keyword arguments beyond the stdlib's (``timeout``, ``retries``, ``retry_on``,
    ``max_tasks_per_worker``, ``progress``, ``chunksize``, ``init_timeout``, ``idle_timeout``,
    ``backend``, ``trace``, ``insights``, ``worker_exit``, ``shared``) are those of
    :class:`~workhorse.ProcessPoolExecutor`.

    Example::

        with workhorse.Pool(4) as pool:
            print(pool.map(abs, [-1, -2, 3]))   # [1, 2, 3]
    """

    @takes_extras(_POOL)
    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: int | None = None,
        context: Any = None,
        **extras: Unpack[PoolExtras],
    ) -> None:
        self._open(PoolConfig.for_face(_POOL, locals()))

    def __repr__(self) -> str:
        return f"<workhorse.Pool state={self._state} pool_size={self._front.workers}>"


class ThreadPool(_BasePool):
    """A thread pool with the :class:`multiprocessing.pool.ThreadPool` API, plus per-task
    timeouts (a thread cannot be killed: a task past its timeout fails on time, its thread
    is asked to stop at its next workhorse call and is replaced). The extras are those of
    :class:`~workhorse.ThreadPoolExecutor`.

    Example::

        with workhorse.ThreadPool(8) as pool:
            print(pool.map(len, ["a", "bb"]))   # [1, 2]
    """

    @takes_extras(_THREAD_POOL)
    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        **extras: Unpack[ThreadPoolExtras],
    ) -> None:
        self._open(PoolConfig.for_face(_THREAD_POOL, locals()))

    def __repr__(self) -> str:
        return f"<workhorse.ThreadPool state={self._state} pool_size={self._front.workers}>"
