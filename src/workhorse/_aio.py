"""asyncio on every pool: ``await pool.run(fn, *args)``, ``async for r in pool.amap(...)``,
``async with pool``.

The tasks run in the pool's workers either way; what a coroutine needs is a way to wait for
them without blocking its event loop, and to stop them when it stops waiting.

* ``run`` awaits the task's :class:`concurrent.futures.Future` through
  :func:`asyncio.wrap_future`, which cancels the pool task when the awaiting asyncio task is
  cancelled -- directly, by ``asyncio.timeout``, or by a ``TaskGroup`` whose sibling failed.
  The task is submitted as with ``cancel_running=True``, so that a task already running is
  stopped too: the process backend kills its worker (and replaces it), the Dask backend its
  Dask worker; a thread is asked to stop at its next workhorse call.
* ``amap`` reads a lazy map (``Executor.map``'s) from a helper thread, taking every result
  that is already in per hop, so a map of many small results costs few thread hops and the
  loop never blocks. Results are pulled as the consumer asks: a slow consumer holds the map
  back (its window of calls in flight), and one that stops reading -- ``break``, an error,
  cancellation -- cancels the calls that have not started.
* ``async with pool`` leaves the pool as ``with pool`` does (``Pool``: ``terminate``, the
  executors: ``shutdown(wait=True)``), waiting in a thread.

The serial backend runs each task inline, in the caller: there ``run`` blocks the event loop
for the task's duration (it is for debugging, not for serving).

Example::

    async def main():
        async with workhorse.ProcessPoolExecutor() as pool:
            async with asyncio.timeout(5):
                digest = await pool.run(hash_file, path)   # killed after 5 s
            async for size in pool.amap(os.path.getsize, paths):
                print(size)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Self, TypeVar

from ._front import FrontView
from ._lazy_map import ResultIterator
from ._scheduler._job import ARGS, ITEM

__all__ = ["AsyncContext", "AsyncResults", "AsyncTasks"]

T = TypeVar("T")
#: Results taken per thread hop at most (those already in; the hop waits for the first only).
RUN_MOST = 1024


class AsyncTasks(FrontView):
    """``run`` and ``amap``: a pool's tasks awaited from asyncio (see the module docstring)."""

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the pool and await its result; cancelling the
        awaiting task cancels the pool task, stopping it if it runs.

        Example::

            value = await pool.run(pow, 2, 10)   # 1024
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        future = self._front.view({"cancel_running": True}).run_one(fn, args, kwargs)
        return await asyncio.wrap_future(future)

    def amap(
        self, fn: Callable[..., T], *iterables: Iterable[Any], ordered: bool = True
    ) -> AsyncResults[T]:
        """``map`` for ``async for``: results in input order (``ordered=False``: as they
        complete); the first error is raised in its place and ends the iteration.

        Example::

            async for size in pool.amap(os.path.getsize, paths):
                total += size
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        if not iterables:
            raise TypeError("amap() must have at least one iterable")
        if len(iterables) == 1:
            calls, kind = iter(iterables[0]), ITEM
        else:
            calls, kind = zip(*iterables, strict=False), ARGS
        results = self._front.lazy_map(
            fn, calls, kind, iterables, ordered=ordered, stop_on_error=True
        )
        return AsyncResults(results)


class AsyncResults(AsyncIterator[T]):
    """The results of :meth:`AsyncTasks.amap`; ``aclose()`` stops the map early (so does
    dropping it).

    Example::

        results = pool.amap(work, items)
        first = await anext(results)
        await results.aclose()   # the calls not started are cancelled
    """

    def __init__(self, results: ResultIterator[T]) -> None:
        self._results = results
        self._ready: list[T] = []
        self._error: BaseException | None = None
        self._ended = False

    def __aiter__(self) -> AsyncResults[T]:
        return self

    async def __anext__(self) -> T:
        if not self._ready and not self._ended and self._error is None:
            try:
                values, self._error, self._ended = await asyncio.to_thread(_take_run, self._results)
            except BaseException:  # cancelled while waiting: nobody reads the rest
                self._results.close()
                raise
            values.reverse()  # popped from the end, in order
            self._ready = values
        if self._ready:
            return self._ready.pop()
        if self._error is not None:
            error, self._error = self._error, None
            self._ended = True
            raise error
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop: read no more input and cancel the calls that have not started."""
        self._ended = True
        self._ready.clear()
        self._results.close()


class AsyncContext:
    """``async with pool:`` leaves the pool as ``with pool:`` does, waiting in a thread."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await asyncio.to_thread(self.__exit__, exc_type, exc, tb)  # type: ignore[attr-defined]


def _take_run(results: ResultIterator[T]) -> tuple[list[T], BaseException | None, bool]:
    """The next result (waiting for it) and every one already in after it, up to
    :data:`RUN_MOST`; then the error that stopped the run, and whether the map ended."""
    values: list[T] = []
    try:
        values.append(next(results))
        while len(values) < RUN_MOST and results.has_ready():
            values.append(next(results))
    except StopIteration:
        return values, None, True
    except BaseException as exc:
        return values, exc, False
    return values, None, False
