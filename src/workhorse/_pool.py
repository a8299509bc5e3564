"""``Pool`` and ``ThreadPool``: :mod:`multiprocessing.pool`'s faces on workhorse's engines.

Differences from the stdlib (deliberate):

* A worker that dies fails only its own task (``WorkerCrashed``); ``multiprocessing.Pool``
  hangs forever in that case. Every ``get()`` of a task that cannot finish raises.
* Leaving a ``with Pool() as pool:`` block normally waits for the submitted work
  (``close()`` + ``join()``); the stdlib calls ``terminate()``, which silently drops it.
  Leaving it on ``KeyboardInterrupt`` (or any ``BaseException``) terminates, as the stdlib.
* ``imap``/``imap_unordered`` pull their input lazily with a bounded number of tasks in
  flight (an infinite iterator works); ``chunksize`` is accepted, but batching is adaptive
  unless the pool was built with a fixed ``chunksize=``.
"""

from __future__ import annotations

import os
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from multiprocessing import TimeoutError as PoolTimeoutError
from typing import Any, Generic, TypeVar

from ._engine._core import ProcessEngine
from ._engine._threads import ThreadEngine
from ._executor import (
    MAP_WINDOW_PER_WORKER,
    _check_chunksize,
    _check_max_tasks,
    _ordered_results,
)
from ._futures import force_cancel
from ._options import TaskOptions
from ._process import DEFAULT_START_METHOD

__all__ = ["AsyncResult", "MapResult", "Pool", "ThreadPool"]

T = TypeVar("T")
_RUN, _CLOSE, _TERMINATE = "RUN", "CLOSE", "TERMINATE"


class AsyncResult(Generic[T]):
    """The result of ``apply_async``, as in :mod:`multiprocessing.pool`.

    Example::

        result = pool.apply_async(pow, (2, 10))
        assert result.get(timeout=5) == 1024
    """

    def __init__(self, future: Future[T]) -> None:
        self._future = future

    def ready(self) -> bool:
        """Whether the call has completed."""
        return self._future.done()

    def successful(self) -> bool:
        """Whether it completed without raising; ``ValueError`` if not ready yet."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return not self._future.cancelled() and self._future.exception() is None

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the result is available or ``timeout`` seconds pass."""
        try:
            self._future.exception(timeout)
        except (FuturesTimeoutError, Exception):
            pass

    def get(self, timeout: float | None = None) -> T:
        """The result; raises the task's exception, or ``multiprocessing.TimeoutError``."""
        try:
            return self._future.result(timeout)
        except FuturesTimeoutError:
            raise PoolTimeoutError(f"no result within {timeout} s") from None


class MapResult(AsyncResult[list[T]]):
    """The result of ``map_async``/``starmap_async``: a list, in input order."""


def _gather(futures: list[Future[T]]) -> Future[list[T]]:
    """One future for many: their results in order, or the first error in input order."""
    outer: Future[list[T]] = Future()
    outer.set_running_or_notify_cancel()
    remaining = [len(futures)]
    lock = threading.Lock()

    def one_done(_: Future[T]) -> None:
        with lock:
            remaining[0] -= 1
            if remaining[0]:
                return
        for future in futures:
            if future.cancelled():
                outer.set_exception(RuntimeError("a task of this map was cancelled"))
                return
            error = future.exception()
            if error is not None:
                outer.set_exception(error)
                return
        outer.set_result([f.result() for f in futures])

    if not futures:
        outer.set_result([])
    for future in futures:
        future.add_done_callback(one_done)
    return outer


class _ResultIterator(Iterator[T]):
    """What ``imap``/``imap_unordered`` return: an iterator with ``next(timeout)``."""

    def __init__(self, results: Iterator[T]) -> None:
        self._results = results

    def __iter__(self) -> _ResultIterator[T]:
        return self

    def __next__(self) -> T:
        return next(self._results)

    def next(self, timeout: float | None = None) -> T:
        """The next result; ``timeout`` is accepted for compatibility and not enforced per
        item (use ``with_options(timeout=...)`` for per-task limits)."""
        return next(self._results)


class _BasePool:
    _engine: ProcessEngine | ThreadEngine
    _workers: int
    _options: TaskOptions

    def _setup(self) -> None:
        self._state = _RUN
        self._lock = threading.Lock()

    def _check_running(self) -> None:
        if self._state != _RUN:
            raise ValueError("Pool not running")

    def _submit_all(self, fn: Callable[..., Any], calls: Iterable[Any]) -> list[Future[Any]]:
        self._check_running()
        if not callable(fn):
            raise TypeError(f"func must be callable, not {type(fn).__name__}")
        return self._engine.submit_many(fn, list(calls), self._options)

    def apply(self, func: Callable[..., T], args: tuple[Any, ...] = (), kwds: Any = None) -> T:
        """Call ``func(*args, **kwds)`` in a worker and return its result."""
        return self.apply_async(func, args, kwds).get()

    def apply_async(
        self,
        func: Callable[..., T],
        args: tuple[Any, ...] = (),
        kwds: Any = None,
        callback: Callable[[T], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult[T]:
        """Schedule ``func(*args, **kwds)``; ``callback``/``error_callback`` get the outcome.

        Example::

            pool.apply_async(pow, (2, 10), callback=print, error_callback=log_error)
        """
        (future,) = self._submit_all(func, [(tuple(args), dict(kwds or {}))])
        _add_callbacks(future, callback, error_callback)
        return AsyncResult(future)

    def map(
        self, func: Callable[..., T], iterable: Iterable[Any], chunksize: int | None = None
    ) -> list[T]:
        """``list(map(func, iterable))`` computed by the pool, in input order."""
        return self.map_async(func, iterable, chunksize).get()

    def starmap(
        self,
        func: Callable[..., T],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
    ) -> list[T]:
        """Like ``map`` with each item unpacked as arguments: ``func(*item)``."""
        return self.starmap_async(func, iterable, chunksize).get()

    def map_async(
        self,
        func: Callable[..., T],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        callback: Callable[[list[T]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> MapResult[T]:
        """Asynchronous ``map``: a :class:`MapResult` whose ``get()`` is the list."""
        _check_chunksize(chunksize)
        futures = self._submit_all(func, (((item,), {}) for item in iterable))
        return self._map_result(futures, callback, error_callback)

    def starmap_async(
        self,
        func: Callable[..., T],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        callback: Callable[[list[T]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> MapResult[T]:
        """Asynchronous ``starmap``."""
        _check_chunksize(chunksize)
        futures = self._submit_all(func, ((tuple(item), {}) for item in iterable))
        return self._map_result(futures, callback, error_callback)

    def _map_result(
        self,
        futures: list[Future[Any]],
        callback: Callable[[list[Any]], object] | None,
        error_callback: Callable[[BaseException], object] | None,
    ) -> MapResult[Any]:
        gathered = _gather(futures)
        _add_callbacks(gathered, callback, error_callback)
        return MapResult(gathered)

    def imap(
        self, func: Callable[..., T], iterable: Iterable[Any], chunksize: int = 1
    ) -> _ResultIterator[T]:
        """Results of ``func(item)`` in input order, streamed as they complete; the input is
        pulled lazily (it may be infinite)."""
        self._check_running()
        _check_chunksize(chunksize)
        calls: Iterator[tuple[tuple[Any, ...], dict[str, Any]]]
        calls = (((item,), {}) for item in iterable)
        window = max(64, MAP_WINDOW_PER_WORKER * self._workers)
        return _ResultIterator(
            _ordered_results(self._engine, func, calls, self._options, window, None)
        )

    def imap_unordered(
        self, func: Callable[..., T], iterable: Iterable[Any], chunksize: int = 1
    ) -> _ResultIterator[T]:
        """Like ``imap``, but each result as soon as it is ready, in completion order."""
        self._check_running()
        _check_chunksize(chunksize)
        calls: Iterator[tuple[tuple[Any, ...], dict[str, Any]]]
        calls = (((item,), {}) for item in iterable)
        window = max(64, MAP_WINDOW_PER_WORKER * self._workers)
        return _ResultIterator(_unordered_results(self._engine, func, calls, self._options, window))

    def close(self) -> None:
        """Accept no more tasks; the workers exit once the submitted ones are done."""
        with self._lock:
            if self._state == _RUN:
                self._state = _CLOSE
                self._engine.shutdown(wait=False)

    def terminate(self) -> None:
        """Stop the workers now; unfinished tasks are cancelled (their ``get`` raises)."""
        with self._lock:
            self._state = _TERMINATE
        self._engine.terminate()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the workers to exit; the pool must be closed or terminated first."""
        if self._state == _RUN:
            raise ValueError("Pool is still running")
        self._engine.shutdown(wait=True)

    def __enter__(self) -> Any:
        if self._state != _RUN:
            raise ValueError("Pool not running")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.terminate()
        else:
            self.close()
            self.join()


def _add_callbacks(
    future: Future[Any],
    callback: Callable[[Any], object] | None,
    error_callback: Callable[[BaseException], object] | None,
) -> None:
    if callback is None and error_callback is None:
        return

    def done(f: Future[Any]) -> None:
        if f.cancelled():
            return
        error = f.exception()
        if error is None:
            if callback is not None:
                callback(f.result())
        elif error_callback is not None:
            error_callback(error)

    future.add_done_callback(done)


def _unordered_results(
    engine: ProcessEngine | ThreadEngine,
    fn: Callable[..., Any],
    calls: Iterator[tuple[tuple[Any, ...], dict[str, Any]]],
    options: TaskOptions,
    window: int,
) -> Iterator[Any]:
    finished: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
    in_flight: set[Future[Any]] = set()
    step = max(1, window // 8)
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < window:
                chunk = [call for _, call in zip(range(step), calls, strict=False)]
                exhausted = len(chunk) < step
                for future in engine.submit_many(fn, chunk, options) if chunk else ():
                    in_flight.add(future)
                    future.add_done_callback(finished.put)
            if not in_flight:
                return
            future = finished.get()
            in_flight.discard(future)
            yield future.result()
    finally:
        for future in in_flight:
            force_cancel(future) if future.running() else future.cancel()


class Pool(_BasePool):
    """A process pool with the :class:`multiprocessing.pool.Pool` API that never hangs.

    Args:
        processes: number of worker processes (default: the CPU count).
        initializer, initargs: called in each worker when it starts.
        maxtasksperchild: a worker is replaced after this many tasks.
        context: a ``multiprocessing`` or workhorse context choosing the start method.
        timeout, retries, retry_on, chunksize: as for :class:`ProcessPoolExecutor`.

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
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        max_tasks_per_worker: int | None = None,
        chunksize: int | str = "auto",
    ) -> None:
        self._workers = _pool_size(processes, os.cpu_count() or 1)
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        max_tasks = _check_max_tasks(maxtasksperchild, "maxtasksperchild")
        if max_tasks_per_worker is not None:
            max_tasks = _check_max_tasks(max_tasks_per_worker, "max_tasks_per_worker")
        method = DEFAULT_START_METHOD if context is None else context.get_start_method()
        self._options = TaskOptions(timeout=timeout, retries=retries, retry_on=retry_on)
        self._engine = ProcessEngine(
            self._workers,
            start_method=method,
            initializer=initializer,
            initargs=tuple(initargs),
            max_tasks_per_worker=max_tasks,
            options=self._options,
            chunksize=_check_chunksize(chunksize),
        )
        self._setup()
        weakref.finalize(self, self._engine.shutdown, False)

    def __repr__(self) -> str:
        return f"<workhorse.Pool state={self._state} pool_size={self._workers}>"


class ThreadPool(_BasePool):
    """A thread pool with the :class:`multiprocessing.pool.ThreadPool` API, plus per-task
    timeouts (the thread is asked to stop and replaced; it cannot be killed).

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
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        max_tasks_per_worker: int | None = None,
        chunksize: int | str = "auto",
    ) -> None:
        self._workers = _pool_size(processes, os.cpu_count() or 1)
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        _check_chunksize(chunksize)
        self._options = TaskOptions(timeout=timeout, retries=retries, retry_on=retry_on)
        self._engine = ThreadEngine(
            self._workers,
            initializer=initializer,
            initargs=tuple(initargs),
            max_tasks_per_worker=_check_max_tasks(max_tasks_per_worker, "max_tasks_per_worker"),
            options=self._options,
            name="ThreadPool",
        )
        self._setup()
        weakref.finalize(self, self._engine.shutdown, False)

    def __repr__(self) -> str:
        return f"<workhorse.ThreadPool state={self._state} pool_size={self._workers}>"


def _pool_size(processes: int | None, default: int) -> int:
    if processes is None:
        return default
    if isinstance(processes, bool) or not isinstance(processes, int):
        raise TypeError(f"processes must be an int, not {type(processes).__name__}")
    if processes < 1:
        raise ValueError("Number of processes must be at least 1")
    return processes
