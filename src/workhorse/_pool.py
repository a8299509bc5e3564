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
* ``chunksize`` is validated and otherwise ignored: batching is adaptive, or fixed by the
  ``chunksize=`` given to the constructor, for every call.
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
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from multiprocessing import TimeoutError as PoolTimeoutError
from typing import Any, Generic, TypeVar

from ._engine._core import ProcessEngine
from ._engine._exit import cut_feeds, drain_feeds
from ._engine._job import ARGS, ITEM, Job, ListSink
from ._engine._threads import ThreadEngine
from ._executor import (
    MAP_WINDOW_PER_WORKER,
    UNSET,
    Engine,
    ResultIterator,
    _Feed,
    describe,
    input_length,
    max_tasks,
    start_method_of,
    updated_options,
)
from ._options import (
    Progress,
    TaskOptions,
    check_chunksize,
    check_initializer,
    check_max_tasks,
    check_progress,
    check_seconds,
    check_workers,
)
from ._progress_bar import ProgressBar, make_bar

__all__ = ["AsyncResult", "MapResult", "Pool", "PoolView", "ThreadPool"]

T = TypeVar("T")
_RUN, _CLOSE, _TERMINATE = "RUN", "CLOSE", "TERMINATE"
JOIN_POLL = 0.01  # seconds between two looks at the workers in join(timeout)


class AsyncResult(Generic[T]):
    """The result of ``apply_async``, as in :mod:`multiprocessing.pool`.

    As with the stdlib, ``callback``/``error_callback`` have run by the time the result is
    ready, so ``get()`` never returns before them.

    Example::

        result = pool.apply_async(pow, (2, 10))
        assert result.get(timeout=5) == 1024
    """

    def __init__(
        self,
        future: Future[T],
        callback: Callable[[T], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> None:
        self._future = future
        self._callback, self._error_callback = callback, error_callback
        self._ready = threading.Event()
        future.add_done_callback(self._on_done)

    def _on_done(self, future: Future[T]) -> None:
        try:
            if future.cancelled():
                return
            error = future.exception()
            if error is None:
                if self._callback is not None:
                    self._callback(future.result())
            elif self._error_callback is not None:
                self._error_callback(error)
        finally:  # a callback that raises is logged by the future; never leave get() hanging
            self._ready.set()

    def ready(self) -> bool:
        """Whether the call has completed."""
        return self._ready.is_set()

    def successful(self) -> bool:
        """Whether it completed without raising; ``ValueError`` if not ready yet."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return not self._future.cancelled() and self._future.exception() is None

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the result is available or ``timeout`` seconds pass."""
        self._ready.wait(timeout)

    def get(self, timeout: float | None = None) -> T:
        """The result; raises the task's exception, or ``multiprocessing.TimeoutError``."""
        if not self._ready.wait(timeout):
            raise PoolTimeoutError(f"no result within {timeout} s")
        return self._future.result()


class MapResult(AsyncResult[list[T]]):
    """The result of ``map_async``/``starmap_async``: a list, in input order."""


class _PoolTasks:
    """The task methods of a pool, shared by ``Pool``/``ThreadPool`` and their views."""

    _engine: Engine
    _workers: int
    _options: TaskOptions
    _progress: Progress
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
        future = self._engine.submit(func, tuple(args), dict(kwds or {}), self._options)
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
        check_chunksize(chunksize, allow_auto=False)
        bar = make_bar(self._progress, len(calls), describe(func))
        sink = self._submit_all(func, calls, kind, bar)
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
        check_chunksize(chunksize, allow_auto=False)
        sink = self._submit_all(func, list(iterable), ITEM)  # a copy: the caller may change it
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
        check_chunksize(chunksize, allow_auto=False)
        sink = self._submit_all(func, _arg_tuples(iterable), ARGS)
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
        length = input_length(iterable)
        bar = make_bar(self._progress, length, describe(func))
        window = max(64, MAP_WINDOW_PER_WORKER * self._workers)
        feed = _Feed(
            self._engine, func, iter(iterable), ITEM, self._options, window,
            ordered=ordered, bar=bar,
        )  # fmt: skip
        feed.sized = length is not None
        return ResultIterator(feed, timeout_error=PoolTimeoutError)

    def _submit_all(
        self, func: Callable[..., Any], calls: list[Any], kind: str, bar: ProgressBar | None = None
    ) -> ListSink:
        """Run every call as one job; its sink fills a list in input order."""
        self._owner._check_running()
        _check_func(func)
        on_ready = None if bar is None else (lambda _s, start, stop: bar.update(stop - start))
        sink = ListSink(len(calls), on_ready)
        if calls:
            self._engine.run(Job(func, calls, self._options, sink, kind))
        return sink

    def with_options(
        self,
        *,
        timeout: float | None = UNSET,
        retries: int = UNSET,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = UNSET,
        progress: Progress = UNSET,
    ) -> PoolView:
        """A light view of this pool whose tasks get other options: the same task methods
        (``apply*``, ``map*``, ``starmap*``, ``imap*``), the same workers, no ``close``.

        Example::

            patient = pool.with_options(timeout=60, retries=2)
            patient.map(fetch, urls)
        """
        given = {"timeout": timeout, "retries": retries, "retry_on": retry_on}
        options, shown = updated_options(self._options, self._progress, given, progress)
        return PoolView(self._owner, options, shown)


def _listed(iterable: Iterable[T]) -> list[T]:
    """The input as a list (its errors are raised here, before any task runs)."""
    return iterable if type(iterable) is list else list(iterable)


def _arg_tuples(iterable: Iterable[Iterable[Any]]) -> list[tuple[Any, ...]]:
    return [a if type(a) is tuple else tuple(a) for a in iterable]


def _check_func(func: Any) -> None:
    if not callable(func):
        raise TypeError(f"func must be callable, not {type(func).__name__}")


class PoolView(_PoolTasks):
    """A pool seen with other task options (see ``with_options``); shares its workers and
    its state (closing the pool closes the view).

    Example::

        pool.with_options(timeout=5).map(work, items)
    """

    def __init__(self, owner: _BasePool, options: TaskOptions, progress: Progress) -> None:
        self._owner = owner
        self._engine, self._workers = owner._engine, owner._workers
        self._options, self._progress = options, progress

    def __repr__(self) -> str:
        return f"<workhorse.PoolView of {self._owner!r} with {self._options}>"


class _BasePool(_PoolTasks):
    """Lifecycle: ``close``, ``join``, ``terminate``, the context manager."""

    def _setup(self, options: TaskOptions, progress: Progress) -> None:
        self._options, self._progress = options, progress
        self._owner = self
        self._state = _RUN
        self._lock = threading.Lock()

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
        drain_feeds(self._engine)
        self._engine.shutdown(wait=False)

    def terminate(self) -> None:
        """Stop the workers now; unfinished tasks are cancelled (their ``get`` raises
        ``CancelledError``).

        Example::

            pool.terminate()
        """
        with self._lock:
            self._state = _TERMINATE
        cut_feeds(self._engine)
        self._engine.terminate()

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
            while self._engine.alive:
                if time.monotonic() >= deadline:
                    raise PoolTimeoutError(f"the pool's workers still run after {timeout} s")
                time.sleep(JOIN_POLL)
        self._engine.shutdown(wait=True)

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
        initializer, initargs: called in each worker when it starts.
        maxtasksperchild: a worker is replaced after this many tasks.
        context: a ``multiprocessing`` or workhorse context choosing the start method.
        timeout, retries, retry_on, max_tasks_per_worker, progress, chunksize, init_timeout,
            idle_timeout: as for :class:`~workhorse.ProcessPoolExecutor`.

    Example::

        with workhorse.Pool(4) as pool:
            print(pool.map(abs, [-1, -2, 3]))   # [1, 2, 3]
    """

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: int | None = None,
        context: Any = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        max_tasks_per_worker: int | None = None,
        progress: Progress = False,
        chunksize: int | str = "auto",
        init_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        self._workers = check_workers(processes, os.cpu_count() or 1, name="processes")
        initargs = check_initializer(initializer, initargs)
        limit = max_tasks(maxtasksperchild, "maxtasksperchild", max_tasks_per_worker)
        method = start_method_of(context, "context")
        options = TaskOptions(timeout, retries, retry_on)  # type: ignore[arg-type]
        batch, progress = check_chunksize(chunksize), check_progress(progress)
        self._engine = ProcessEngine(
            self._workers,
            start_method=method,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_worker=limit,
            options=options,
            chunksize=batch,
            init_timeout=check_seconds(init_timeout, "init_timeout"),
            idle_timeout=check_seconds(idle_timeout, "idle_timeout"),
            remote_traceback=multiprocessing.pool.RemoteTraceback,  # type: ignore[attr-defined]
        )
        self._setup(options, progress)
        weakref.finalize(self, self._engine.shutdown, False)

    def __repr__(self) -> str:
        return f"<workhorse.Pool state={self._state} pool_size={self._workers}>"


class ThreadPool(_BasePool):
    """A thread pool with the :class:`multiprocessing.pool.ThreadPool` API, plus per-task
    timeouts (a thread cannot be killed: a task past its timeout fails on time, its thread
    is asked to stop at its next workhorse call and is replaced).

    Example::

        with workhorse.ThreadPool(8) as pool:
            print(pool.map(len, ["a", "bb"]))   # [1, 2]
    """

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        *,
        timeout: float | None = None,
        retries: int = 0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        max_tasks_per_worker: int | None = None,
        progress: Progress = False,
        chunksize: int | str = "auto",
    ) -> None:
        self._workers = check_workers(processes, os.cpu_count() or 1, name="processes")
        initargs = check_initializer(initializer, initargs)
        check_chunksize(chunksize)
        progress = check_progress(progress)
        options = TaskOptions(timeout, retries, retry_on)  # type: ignore[arg-type]
        self._engine = ThreadEngine(
            self._workers,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_worker=check_max_tasks(max_tasks_per_worker, "max_tasks_per_worker"),
            options=options,
            name="ThreadPool",
        )
        self._setup(options, progress)
        weakref.finalize(self, self._engine.shutdown, False)

    def __repr__(self) -> str:
        return f"<workhorse.ThreadPool state={self._state} pool_size={self._workers}>"
