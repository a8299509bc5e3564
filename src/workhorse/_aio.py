"""asyncio and trio on every pool: ``await pool.run(fn, *args)``, ``async for r in
pool.amap(...)``, ``async with pool``.

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

Under trio (directly, or through anyio on its trio backend) the same holds with trio's
means: ``run`` sleeps on a ``trio.Event`` that the future's done-callback sets through the
run's token (no thread per awaiting task), a trio cancellation (a cancel scope,
``trio.move_on_after``, a nursery whose sibling failed) cancels and stops the pool task, and
the waits of ``amap`` and ``async with`` go to ``trio.to_thread``. Which library runs is read
at each call: asyncio if an asyncio loop runs in this thread, else trio; anyio code works on
either of its backends.

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
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Future
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
        trio = _trio()  # before submitting: outside asyncio and trio nothing may start
        future = self._front.view({"cancel_running": True}).run_one(fn, args, kwargs)
        if trio is None:
            return await asyncio.wrap_future(future)
        return await _trio_result(trio, future)

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
                values, self._error, self._ended = await _in_thread(_take_run, self._results)
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
        await _in_thread(self.__exit__, exc_type, exc, tb)  # type: ignore[attr-defined]


def _trio() -> Any:
    """The trio module if trio (not asyncio) runs this coroutine; ``None`` under asyncio."""
    try:
        asyncio.get_running_loop()
        return None
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")  # a trio run imported it
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
            return trio
        except RuntimeError:
            pass
    raise RuntimeError("workhorse's async methods run under asyncio or trio (or anyio on either)")


async def _trio_result(trio: Any, future: Future[T]) -> T:
    """Wait for ``future`` in trio without a thread; cancel it if the wait is cancelled."""
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()

    def wake(_: object) -> None:  # any thread: the pool's, or this one if already done
        try:
            token.run_sync_soon(done.set)
        except trio.RunFinishedError:
            pass  # the trio run ended meanwhile: nobody waits

    future.add_done_callback(wake)
    try:
        await done.wait()
    except BaseException:  # trio.Cancelled (or KeyboardInterrupt): stop the pool task
        future.cancel()
        raise
    return future.result()


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a thread, under asyncio or trio."""
    trio = _trio()
    if trio is None:
        return await asyncio.to_thread(fn, *args)
    result: T = await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
    return result


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
