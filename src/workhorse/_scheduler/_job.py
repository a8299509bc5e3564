"""Jobs: calls of one function submitted together, and the sinks their outcomes go to.

A pool never creates an object per item on its hot path. ``submit`` makes a job of one call
whose sink is its future; ``map`` and each input chunk of ``imap`` make one job whose sink
is a :class:`ListSink` -- a plain list of results filled a batch at a time. This is what
makes a map of 100,000 tiny calls cost about what its pickling costs, where one
``concurrent.futures.Future`` per item (a lock, a condition, a settle) costs microseconds
each.

Engines call a sink from their own threads (the process engine's manager thread, a thread
pool's workers): ``start`` before a slice of items is dispatched, ``ok``/``fail``/``drop``
with outcomes. A sink never raises into the engine.

Example::

    sink = ListSink(3)
    sink.ok(0, [1, 2, 3])
    assert sink.wait(2, timeout=0) and sink.results[2] == 3
"""

from __future__ import annotations

import logging
import reprlib
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures._base import PENDING, RUNNING
from time import monotonic
from typing import Any

from .._futures import TaskFuture, force_cancel, settle, start_running
from .._options import TaskOptions
from .._stats import Tally

__all__ = [
    "ARGS",
    "CALL",
    "ITEM",
    "MISSING",
    "Call",
    "Failed",
    "FutureSink",
    "Job",
    "ListSink",
    "Sink",
    "future_job",
    "submit_one",
]

Call = tuple[tuple[Any, ...], dict[str, Any]]
_log = logging.getLogger("workhorse")


class Failed:
    """Stands in a result list for an item that raised (or was cancelled)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


MISSING: Any = object()


class Sink:
    """Where a job's outcomes go. Subclasses override every method."""

    cancelled = False

    def wanted(self) -> bool:
        """Is the job still wanted (not cancelled)? Does not start it."""
        return not self.cancelled

    def start(self) -> bool:
        """The job's items are being sent to run: False once it was cancelled (then they
        must not run). A future becomes RUNNING here, as the stdlib's do when they enter
        the call queue -- not while a batch merely waits for a busy worker, so that
        ``cancel()`` still works there."""
        raise NotImplementedError

    def ok(self, start: int, values: list[Any]) -> None:
        """Items ``start, start + 1, ...`` returned ``values``."""
        raise NotImplementedError

    def fail(self, index: int, error: BaseException) -> None:
        """Item ``index`` failed for good (retries are the engine's, before this)."""
        raise NotImplementedError

    def drop(self, start: int, stop: int) -> None:
        """Items ``start:stop`` will never run (shutdown, terminate, cancel)."""
        raise NotImplementedError

    def discarded(self, count: int) -> None:
        """``count`` queued items of this cancelled job were thrown away unrun."""


class FutureSink(Sink):
    """The sink of a ``submit``: its one item settles ``future``."""

    __slots__ = ("future",)

    def __init__(self, future: TaskFuture[Any]) -> None:
        self.future = future

    @property
    def cancelled(self) -> bool:  # type: ignore[override]
        return self.future.cancelled()

    def start(self) -> bool:
        future = self.future
        state = future._state
        if state == PENDING:
            return start_running(future)
        return state == RUNNING  # a retry: still wanted unless cancelled meanwhile

    def ok(self, start: int, values: list[Any]) -> None:
        self.future._stop_running = None  # its job holds the arguments: let them go
        settle(self.future, True, values[0])

    def fail(self, index: int, error: BaseException) -> None:
        self.future._stop_running = None
        settle(self.future, False, error)

    def drop(self, start: int, stop: int) -> None:
        self.future._stop_running = None
        force_cancel(self.future)


class ListSink(Sink):
    """The results of a map job, in input order: a value, a :class:`Failed`, or ``MISSING``.

    ``on_ready(sink, start, stop)`` is told of every filled range (the progress bar, an unordered
    consumer); ``future`` (made on demand by :meth:`as_future`) completes with the whole
    list, or the first failure in input order, once every item is in. ``tally``: the pool's
    counts (``pool.stats()``), told of the items accepted here and of how each ended.
    """

    def __init__(
        self, size: int, on_ready: Callable[[ListSink, int, int], None] | None = None,
        tally: Tally | None = None,
    ) -> None:  # fmt: skip
        self.tally = tally
        if tally is not None:
            tally.accepted(size)
        self.results: list[Any] = [MISSING] * size
        self.remaining = size
        self.cancelled = False
        self.on_ready = on_ready
        self._future: Future[list[Any]] | None = None
        self._cond = threading.Condition(threading.Lock())
        self._waiters = 0
        self._first_failure: int | None = None  # so completing never scans the whole list
        # Items [0, prefix) are all in: an ordered reader takes them without looking at each.
        self.prefix = 0
        self._ranges: dict[int, int] = {}  # filled ranges past the prefix: start -> stop

    def start(self) -> bool:
        return not self.cancelled

    def ok(self, start: int, values: list[Any]) -> None:
        self.results[start : start + len(values)] = values
        if self.tally is not None:
            self.tally.settled(done=len(values))
        self._filled(start, start + len(values))

    def fail(self, index: int, error: BaseException) -> None:
        self.results[index] = Failed(error)
        if self.tally is not None:
            self.tally.settled(failed=1)
        self._failed_at(index)
        self._filled(index, index + 1)

    def drop(self, start: int, stop: int) -> None:
        results = self.results
        dropped = 0
        for index in range(start, stop):
            if results[index] is MISSING:
                results[index] = Failed(CancelledError("the pool stopped before this item ran"))
                self._failed_at(index)
                dropped += 1
        if self.tally is not None:
            self.tally.settled(cancelled=dropped)
        self._filled(start, stop)

    def discarded(self, count: int) -> None:
        if self.tally is not None:
            self.tally.settled(cancelled=count)

    def _failed_at(self, index: int) -> None:
        first = self._first_failure
        if first is None or index < first:
            self._first_failure = index

    def cancel(self) -> None:
        """Dispatch no more of this job's items (the ones running finish; their results are
        dropped by whoever stops reading)."""
        self.cancelled = True

    def _filled(self, start: int, stop: int) -> None:
        with self._cond:
            self.remaining -= stop - start
            complete = self.remaining <= 0
            self._ranges[start] = stop
            while self.prefix in self._ranges:
                self.prefix = self._ranges.pop(self.prefix)
            if self._waiters:
                self._cond.notify_all()
        if self.on_ready is not None:
            try:
                self.on_ready(self, start, stop)
            except Exception:
                _log.exception("a map's result listener raised")
        if complete and self._future is not None:
            self._complete(self._future)

    def wait(self, index: int, timeout: float | None) -> bool:
        """Wait until item ``index`` is in; False after ``timeout`` seconds."""
        results = self.results
        if results[index] is not MISSING:
            return True
        with self._cond:
            self._waiters += 1
            try:
                return self._cond.wait_for(lambda: results[index] is not MISSING, timeout)
            finally:
                self._waiters -= 1

    def wait_done(self, timeout: float | None = None) -> bool:
        """Wait until every item is in; False after ``timeout`` seconds."""
        with self._cond:
            self._waiters += 1
            try:
                return self._cond.wait_for(lambda: self.remaining <= 0, timeout)
            finally:
                self._waiters -= 1

    def as_future(self) -> Future[list[Any]]:
        """A future of the whole list (or of the first failure in input order)."""
        with self._cond:
            if self._future is None:
                self._future = Future()
                self._future.set_running_or_notify_cancel()
                complete = self.remaining <= 0
            else:
                return self._future
        if complete:
            self._complete(self._future)
        return self._future

    def _complete(self, future: Future[list[Any]]) -> None:
        if self._first_failure is not None:
            settle(future, False, self.results[self._first_failure].error)
        else:
            settle(future, True, self.results)


#: How a job's ``calls`` are stored: each one the single argument (``map``), the argument
#: tuple (``starmap``, ``Executor.map``) or ``(args, kwargs)`` (``submit``). The first two
#: save a tuple and a dict per item, in the parent and on the wire.
ITEM, ARGS, CALL = "item", "args", "call"


def future_job(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], options: TaskOptions,
    stop: Callable[[Job], None],
) -> Job:  # fmt: skip
    """The job of one ``submit``: its sink's future asks ``stop(job)`` to stop it running."""
    future: TaskFuture[Any] = TaskFuture()
    job = Job(fn, [(args, kwargs)], options, FutureSink(future))
    if options.cancel_running:  # else cancel() keeps the stdlib's meaning
        future._stop_running = lambda _: stop(job)
    return job


def submit_one(
    run: Callable[[Job], None], stop: Callable[[Job], None], fn: Callable[..., Any],
    args: tuple[Any, ...], kwargs: dict[str, Any], options: TaskOptions,
) -> Future[Any]:  # fmt: skip
    """An engine's ``submit``: queue one call with ``run`` and return its future."""
    job = future_job(fn, args, kwargs, options, stop)
    run(job)
    assert isinstance(job.sink, FutureSink)
    return job.sink.future


class Job:
    """Calls of ``fn`` with ``options``, whose outcomes go to ``sink``; ``kind`` says how
    ``calls`` are stored (:data:`ITEM`, :data:`ARGS` or :data:`CALL`); ``chunksize``: the
    batch size the caller asked for (``None``: the backend's adaptive batching)."""

    __slots__ = (
        "__weakref__", "_errors", "calls", "chunksize", "created", "fn", "kind", "options",
        "sink",
    )  # fmt: skip

    def __init__(
        self, fn: Callable[..., Any], calls: list[Any], options: TaskOptions, sink: Sink,
        kind: str = CALL, chunksize: int | None = None,
    ) -> None:  # fmt: skip
        self.fn, self.calls, self.options, self.sink, self.kind = fn, calls, options, sink, kind
        self.chunksize = chunksize
        self.created = monotonic()  # when it was queued (insights=True: time in the queue)
        # Item index -> what its earlier tries raised (text: an exception would keep its
        # traceback's frames alive); made on the first retry.
        self._errors: dict[int, list[str]] | None = None

    def earlier_errors(self, index: int) -> list[str]:
        """What item ``index``'s earlier tries raised (a list to append to)."""
        if self._errors is None:
            self._errors = {}
        return self._errors.setdefault(index, [])

    def forget_errors(self, index: int) -> list[str]:
        """What item ``index``'s earlier tries raised, now that it is done with."""
        return [] if self._errors is None else self._errors.pop(index, [])

    def call(self, index: int) -> Call:
        """Item ``index`` as ``(args, kwargs)``."""
        call = self.calls[index]
        if self.kind == ITEM:
            return (call,), {}
        if self.kind == ARGS:
            return call, {}
        return call  # type: ignore[no-any-return]

    def describe(self, index: int) -> str:
        """``task name(arg, ...)`` for messages, never raising."""
        fn = self.fn
        try:
            name = getattr(fn, "__qualname__", None) or repr(fn)
            args, kwargs = self.call(index)
            shown = [reprlib.repr(a) for a in args]
            shown += [f"{k}={reprlib.repr(v)}" for k, v in kwargs.items()]
            return f"task {name}({', '.join(shown)})"
        except Exception:  # a user __repr__ that raises must not hide the real error
            return f"task {getattr(fn, '__qualname__', '?')}(...)"
