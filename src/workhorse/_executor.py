"""``ProcessPoolExecutor`` and ``ThreadPoolExecutor``: the stdlib's faces on workhorse's engines.

Both are real :class:`concurrent.futures.Executor` subclasses returning real
:class:`concurrent.futures.Future` objects, so ``wait``, ``as_completed`` and
``asyncio.wrap_future`` work unchanged.

Differences from the stdlib (deliberate):

* A worker that dies (segfault, ``os._exit``, OOM kill) fails only the task it was running,
  with :class:`~workhorse.WorkerCrashed` (a ``BrokenProcessPool``); the pool replaces the
  worker and goes on. The stdlib breaks the whole pool.
* ``future.cancel()`` stops a *running* task (its worker is killed and replaced).
* ``map`` pulls its input lazily, with a bounded number of tasks in flight, so an infinite
  iterator works; the stdlib submits everything first.
* ``max_tasks_per_child`` works with every start method.
* Extras as keyword arguments: ``timeout`` (per task), ``retries``/``retry_on``,
  ``max_tasks_per_worker``, ``chunksize`` (``"auto"`` by default); per-call overrides through
  :meth:`with_options`.
"""

from __future__ import annotations

import os
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from typing import Any, TypeVar

from ._engine._core import ProcessEngine
from ._engine._threads import ThreadEngine
from ._futures import force_cancel
from ._options import TaskOptions
from ._process import DEFAULT_START_METHOD

__all__ = ["OptionsView", "ProcessPoolExecutor", "ThreadPoolExecutor"]

T = TypeVar("T")
_UNSET: Any = object()
MAP_WINDOW_PER_WORKER = 1024  # tasks in flight per worker while map() streams its input


def _check_workers(max_workers: int | None, default: int) -> int:
    if max_workers is None:
        return default
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise TypeError(f"max_workers must be an int, not {type(max_workers).__name__}")
    if max_workers <= 0:
        raise ValueError("max_workers must be greater than 0")
    return max_workers


def _check_chunksize(chunksize: int | str | None) -> int | None:
    if chunksize is None or chunksize == "auto":
        return None
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise ValueError(f"chunksize must be a positive int or 'auto', not {chunksize!r}")
    return chunksize


def _check_max_tasks(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int or None, not {value!r}")
    return value


class _Submitter:
    """``submit``/``map``/``with_options`` over an engine with a set of task options."""

    _engine: ProcessEngine | ThreadEngine
    _options: TaskOptions
    _workers: int

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)``; returns a :class:`concurrent.futures.Future`.

        Example::

            future = executor.submit(pow, 2, 10)
            assert future.result() == 1024
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        return self._engine.submit(fn, args, kwargs, self._options)

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[T]:
        """Like the builtin ``map``, run on the pool; results in input order, streamed.

        The input is pulled lazily, a bounded number of tasks in flight, so it may be an
        infinite iterator. ``timeout`` is the stdlib's: seconds from this call after which
        ``next()`` raises ``TimeoutError``. ``chunksize`` is accepted for compatibility;
        batching is the pool's (``chunksize=`` of the constructor).

        Example::

            assert list(executor.map(pow, [2, 3], [2, 2])) == [4, 9]
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        deadline = None if timeout is None else time.monotonic() + timeout
        calls: Iterator[tuple[tuple[Any, ...], dict[str, Any]]]
        calls = ((args, {}) for args in zip(*iterables, strict=False))
        return _ordered_results(self._engine, fn, calls, self._options, self._window(), deadline)

    def _window(self) -> int:
        return max(64, MAP_WINDOW_PER_WORKER * self._workers)

    def with_options(
        self,
        *,
        timeout: float | None = _UNSET,
        retries: int = _UNSET,
        retry_on: tuple[type[BaseException], ...] = _UNSET,
    ) -> OptionsView:
        """A light view of this pool whose tasks get other options.

        Example::

            quick = executor.with_options(timeout=1.0, retries=2)
            quick.submit(fetch, url)
        """
        changes = {
            name: value
            for name, value in (("timeout", timeout), ("retries", retries), ("retry_on", retry_on))
            if value is not _UNSET
        }
        return OptionsView(self, self._options.updated(**changes))


def _ordered_results(
    engine: ProcessEngine | ThreadEngine,
    fn: Callable[..., Any],
    calls: Iterator[tuple[tuple[Any, ...], dict[str, Any]]],
    options: TaskOptions,
    window: int,
    deadline: float | None,
) -> Iterator[Any]:
    in_flight: deque[Future[Any]] = deque()
    step = max(1, window // 8)
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < window:
                chunk = [call for _, call in zip(range(step), calls, strict=False)]
                exhausted = len(chunk) < step
                if chunk:
                    in_flight.extend(engine.submit_many(fn, chunk, options))
            if not in_flight:
                return
            future = in_flight.popleft()
            if deadline is None:
                yield future.result()
            else:
                yield future.result(max(0.0, deadline - time.monotonic()))
    except FuturesTimeoutError:
        raise TimeoutError("map() did not finish before its timeout") from None
    finally:
        for future in in_flight:
            force_cancel(future) if future.running() else future.cancel()


class OptionsView(_Submitter):
    """A pool seen with other task options (see ``with_options``); shares the pool's workers.

    Example::

        pool.with_options(timeout=5).map(work, items)
    """

    def __init__(self, owner: _Submitter, options: TaskOptions) -> None:
        self._owner = owner
        self._engine = owner._engine
        self._workers = owner._workers
        self._options = options

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._owner!r} with {self._options}>"


class _PoolExecutor(_Submitter, Executor):
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; ``wait`` for those submitted (or cancel the queued ones).

        Example::

            executor.shutdown(wait=False, cancel_futures=True)
        """
        self._engine.shutdown(wait, cancel_futures=cancel_futures)

    def terminate(self) -> None:
        """Stop now: running tasks are stopped, queued ones cancelled, workers gone.

        Example::

            executor.terminate()
        """
        self._engine.terminate()

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
        mp_context: a ``multiprocessing`` context or ``workhorse.with_start_method(...)``
            context choosing the start method (default: forkserver).
        initializer: called with ``initargs`` in each worker when it starts; if it raises,
            the pool is broken (:class:`~workhorse.PoolBroken`) instead of forking forever.
        max_tasks_per_child: the stdlib's name for ``max_tasks_per_worker``.
        timeout: per-task limit in seconds; a task past it is stopped (its worker killed and
            replaced) and its future raises :class:`~workhorse.TaskTimeout`.
        retries: how many times a failed task is run again; ``retry_on`` limits which
            exceptions count (a crashed worker, ``WorkerCrashed``, included by default).
        max_tasks_per_worker: a worker is replaced after this many tasks.
        chunksize: ``"auto"`` (adaptive batching) or a fixed number of tasks per batch.

    Example::

        with workhorse.ProcessPoolExecutor(timeout=10) as pool:
            futures = [pool.submit(pow, 2, n) for n in range(10)]
            print([f.result() for f in futures])
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
        timeout: float | None = None,
        retries: int = 0,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        max_tasks_per_worker: int | None = None,
        chunksize: int | str = "auto",
    ) -> None:
        self._workers = _check_workers(max_workers, os.cpu_count() or 1)
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be callable, not {type(initializer).__name__}")
        method = DEFAULT_START_METHOD if mp_context is None else mp_context.get_start_method()
        max_tasks = _check_max_tasks(max_tasks_per_worker, "max_tasks_per_worker")
        if max_tasks is None:
            max_tasks = _check_max_tasks(max_tasks_per_child, "max_tasks_per_child")
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
        weakref.finalize(self, self._engine.shutdown, False)

    def __repr__(self) -> str:
        return f"<workhorse.ProcessPoolExecutor max_workers={self._workers}>"


class ThreadPoolExecutor(_PoolExecutor):
    """A thread pool with per-task timeouts, cancellation of running tasks and retries; a
    drop-in for :class:`concurrent.futures.ThreadPoolExecutor`.

    A thread cannot be killed: a task past its ``timeout`` (or a running task whose future is
    cancelled) fails on time and its thread is asked to stop at its next workhorse call
    (``workhorse.Cancelled``) and replaced; the result it may produce later is discarded.

    Example::

        with workhorse.ThreadPoolExecutor(max_workers=8, timeout=5) as pool:
            statuses = list(pool.map(fetch_status, urls))
    """

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        timeout: float | None = None,
        retries: int = 0,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        max_tasks_per_worker: int | None = None,
        chunksize: int | str = "auto",
    ) -> None:
        self._workers = _check_workers(max_workers, min(32, (os.cpu_count() or 1) + 4))
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be callable, not {type(initializer).__name__}")
        _check_chunksize(chunksize)  # threads pay no transfer cost: nothing to batch
        self._options = TaskOptions(timeout=timeout, retries=retries, retry_on=retry_on)
        self._engine = ThreadEngine(
            self._workers,
            initializer=initializer,
            initargs=tuple(initargs),
            max_tasks_per_worker=_check_max_tasks(max_tasks_per_worker, "max_tasks_per_worker"),
            options=self._options,
            name=thread_name_prefix or f"ThreadPoolExecutor-{id(self):x}",
        )
        weakref.finalize(self, self._engine.shutdown, False)

    def __repr__(self) -> str:
        return f"<workhorse.ThreadPoolExecutor max_workers={self._workers}>"
