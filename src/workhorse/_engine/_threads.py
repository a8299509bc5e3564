"""The thread pool engine: worker threads taking slices of jobs, and a deadline thread.

Threads take work from one deque of units (item ranges of jobs) under a condition; a slice
is sized by the same adaptive :class:`~._batching.Batcher` as process batches, so tiny
calls are taken many at a time (one lock round trip for all) while slow ones go one by one
and spread over every thread.

A thread cannot be killed. So a task that passes its timeout, or whose running future is
cancelled, is *abandoned*: its future fails (``TaskTimeout``) or is cancelled on time, its
thread is cancelled cooperatively (it stops at its next workhorse call with
``workhorse.Cancelled``) and a new thread takes its place, so the pool keeps its capacity;
the abandoned thread exits as soon as its task returns, and its result is discarded. Items
with a timeout are therefore always run one per slice.

Invariants: an item's outcome is given to its sink by exactly one of its worker thread
(normal end), the deadline thread (timeout) or a stop (cancel, terminate); an abandoned
slice's thread delivers nothing.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from .._cancel import CancelScope, swap
from .._errors import PoolBroken, TaskTimeout
from .._options import TaskOptions
from ._batching import Batcher
from ._job import ARGS, ITEM, FutureSink, Job, future_job

__all__ = ["ThreadEngine"]


class _Unit:
    __slots__ = ("attempt", "job", "start", "stop")

    def __init__(self, job: Job, start: int, stop: int, attempt: int = 0) -> None:
        self.job, self.start, self.stop, self.attempt = job, start, stop, attempt


class _Slice:
    """A unit being run by one thread, with the scope that can cancel it."""

    __slots__ = ("scope", "unit")

    def __init__(self, unit: _Unit) -> None:
        self.unit, self.scope = unit, CancelScope()


class ThreadEngine:
    """Runs jobs on up to ``workers`` threads, started as work arrives.

    Example::

        engine = ThreadEngine(4)
        assert engine.submit(sum, ([1, 2],), {}, engine.options).result() == 3
        engine.shutdown()
    """

    def __init__(
        self,
        workers: int,
        *,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_worker: int | None = None,
        options: TaskOptions | None = None,
        name: str = "workhorse-thread",
    ) -> None:
        self.workers = workers
        self.options = options or TaskOptions()
        self._initializer, self._initargs = initializer, initargs
        self._max_tasks = max_tasks_per_worker
        self._name = name
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pending: deque[_Unit] = deque()
        self._pending_items = 0
        self._batcher = Batcher()
        self._threads: set[threading.Thread] = set()
        self._idle = 0  # threads waiting for work
        self._active = 0  # threads counted against capacity (abandoned ones are not)
        self._names = itertools.count()
        self._closing = False
        self._broken: BaseException | None = None
        self._deadlines: list[tuple[float, int, _Slice]] = []
        self._deadline_cond = threading.Condition(self._lock)
        self._deadline_thread: threading.Thread | None = None
        self._seq = itertools.count()
        self._running: set[_Slice] = set()

    # -- called from any thread -------------------------------------------------------

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:  # fmt: skip
        """Queue one task; returns its future."""
        job = future_job(fn, args, kwargs, options, self.stop_job)
        self.run(job)
        assert isinstance(job.sink, FutureSink)
        return job.sink.future

    def run(self, job: Job) -> None:
        """Queue every call of ``job``; outcomes go to its sink."""
        with self._lock:
            if self._broken is not None:
                raise PoolBroken(f"the pool is broken: {self._broken}") from self._broken
            if self._closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if not job.calls:
                return
            self._pending.append(_Unit(job, 0, len(job.calls)))
            self._pending_items += len(job.calls)
            if self._idle:
                self._cond.notify()
            for _ in range(min(self.workers - self._active, len(job.calls) - self._idle)):
                self._grow()

    def stop_job(self, job: Job) -> None:
        """Abandon the running slices of ``job`` (their threads are replaced)."""
        with self._lock:
            doomed = [s for s in self._running if s.unit.job is job]
        for piece in doomed:
            self._abandon(piece, "the task was cancelled")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; finish (or cancel) what is queued; let the threads exit."""
        with self._lock:
            if cancel_futures:
                self._drop_pending()
            self._closing = True
            self._cond.notify_all()
            self._deadline_cond.notify_all()
            threads = list(self._threads)
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()
            if self._deadline_thread is not None and self._deadline_thread is not current:
                self._deadline_thread.join()

    def terminate(self) -> None:
        """Cancel every queued and running task now; running threads are abandoned."""
        with self._lock:
            self._drop_pending()
            running = list(self._running)
        for piece in running:
            unit = piece.unit
            if self._abandon(piece, "the pool was terminated"):
                unit.job.sink.drop(unit.start, unit.stop)
        self.shutdown(wait=False)

    @property
    def alive(self) -> bool:
        """True while any worker thread runs."""
        return any(t.is_alive() for t in self._threads)

    # -- internals (lock held where the name says so) -----------------------------------

    def _drop_pending(self) -> None:
        for unit in self._pending:
            unit.job.sink.drop(unit.start, unit.stop)
        self._pending.clear()
        self._pending_items = 0

    def _grow(self) -> None:
        """Start one more worker thread (lock held)."""
        if self._active >= self.workers:
            return
        self._active += 1
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{next(self._names)}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _take(self, done: int) -> _Slice | None:
        """The next slice for a thread that has run ``done`` items; None: exit."""
        pending = self._pending
        with self._lock:
            while True:
                while not pending and not self._closing and self._broken is None:
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                if not pending or self._broken is not None:
                    return None
                unit = pending[0]
                job = unit.job
                if not job.sink.start():  # cancelled while queued
                    pending.popleft()
                    self._pending_items -= unit.stop - unit.start
                    continue
                if job.options.timeout is not None or type(job.sink) is FutureSink:
                    size = 1
                else:
                    size = self._batcher.size(self._pending_items, self.workers)
                if self._max_tasks is not None:
                    size = max(1, min(size, self._max_tasks - done))
                if size >= unit.stop - unit.start:
                    pending.popleft()
                    taken = unit
                else:
                    taken = _Unit(job, unit.start, unit.start + size, unit.attempt)
                    unit.start += size
                self._pending_items -= taken.stop - taken.start
                if pending and self._idle:
                    self._cond.notify()  # more to do: hand it on
                piece = _Slice(taken)
                self._running.add(piece)
                return piece

    def _work(self) -> None:
        me = threading.current_thread()
        try:
            if self._initializer is not None:
                try:
                    self._initializer(*self._initargs)
                except BaseException as exc:
                    self._break(exc)
                    return
            done = 0
            while self._max_tasks is None or done < self._max_tasks:
                piece = self._take(done)
                if piece is None:
                    return
                if not self._run(piece):
                    return  # abandoned: a replacement already took our place
                done += piece.unit.stop - piece.unit.start
            with self._lock:  # retired after max tasks: hand the slot to a fresh thread
                self._active -= 1
                if self._pending and not self._closing:
                    self._grow()
        finally:
            with self._lock:
                self._threads.discard(me)
                self._deadline_cond.notify_all()  # the deadline thread exits with the last one

    def _run(self, piece: _Slice) -> bool:
        unit, scope = piece.unit, piece.scope
        job = unit.job
        if job.options.timeout is not None:
            self._watch(piece)
        values: list[Any] = []
        failures: dict[int, BaseException] = {}
        fn, calls, kind = job.fn, job.calls, job.kind
        began = time.monotonic()
        previous = swap(scope)
        try:
            for index in range(unit.start, unit.stop):
                if scope.cancelled:
                    break
                try:
                    if kind == ITEM:
                        values.append(fn(calls[index]))
                    elif kind == ARGS:
                        values.append(fn(*calls[index]))
                    else:
                        args, kwargs = calls[index]
                        values.append(fn(*args, **kwargs))
                except BaseException as exc:  # Cancelled included: it is the task's outcome
                    failures[index] = exc
                    values.append(None)
        finally:
            swap(previous)
            with self._lock:
                self._running.discard(piece)
        if scope.cancelled:
            return False  # timed out or stopped: settled by whoever stopped it
        self._batcher.observe(len(values), time.monotonic() - began)
        self._deliver(unit, values, failures)
        return True

    def _deliver(self, unit: _Unit, values: list[Any], failures: dict[int, BaseException]) -> None:
        sink = unit.job.sink
        if not failures:
            sink.ok(unit.start, values)
            return
        run_start = unit.start
        for index, error in failures.items():
            if run_start < index:
                sink.ok(run_start, values[run_start - unit.start : index - unit.start])
            run_start = index + 1
            if unit.job.options.should_retry(unit.attempt, error) and not sink.cancelled:
                with self._lock:
                    self._pending.appendleft(_Unit(unit.job, index, index + 1, unit.attempt + 1))
                    self._pending_items += 1
                    self._cond.notify()
            else:
                sink.fail(index, error)
        if run_start < unit.stop:
            sink.ok(run_start, values[run_start - unit.start :])

    def _abandon(self, piece: _Slice, reason: str) -> bool:
        """Give up on a running slice: cancel its thread's scope and replace the thread.
        False if it was already given up on."""
        scope = piece.scope
        with self._lock:
            if scope.cancelled:
                return False
            scope.cancel(reason)
            self._active -= 1
            if not self._closing and self._pending:
                self._grow()
        return True

    def _watch(self, piece: _Slice) -> None:
        timeout = piece.unit.job.options.timeout or 0.0
        with self._lock:
            at = time.monotonic() + timeout
            heapq.heappush(self._deadlines, (at, next(self._seq), piece))
            if self._deadline_thread is None:
                self._deadline_thread = threading.Thread(
                    target=self._enforce_deadlines, name=f"{self._name}-deadlines", daemon=True
                )
                self._deadline_thread.start()
            self._deadline_cond.notify()

    def _enforce_deadlines(self) -> None:
        with self._lock:
            while not (self._closing and not self._threads):
                if not self._deadlines:
                    self._deadline_cond.wait(0.5 if self._closing else None)
                    continue
                at, _, piece = self._deadlines[0]
                left = at - time.monotonic()
                if left > 0:
                    self._deadline_cond.wait(left)
                    continue
                heapq.heappop(self._deadlines)
                if piece not in self._running or piece.scope.cancelled:
                    continue
                self._lock.release()
                try:
                    if self._abandon(piece, "the task ran past its timeout"):
                        unit = piece.unit
                        unit.job.sink.fail(unit.start, self._timeout_error(unit))
                finally:
                    self._lock.acquire()

    @staticmethod
    def _timeout_error(unit: _Unit) -> TaskTimeout:
        return TaskTimeout(
            f"{unit.job.describe(unit.start)} ran longer than its timeout of "
            f"{unit.job.options.timeout} s; its future failed on time, but a thread cannot be "
            "killed: it was asked to stop at its next workhorse call and was replaced"
        )

    def _break(self, cause: BaseException) -> None:
        with self._lock:
            if self._broken is None:
                error = PoolBroken(f"the pool's initializer raised {type(cause).__name__}: {cause}")
                error.__cause__ = cause
                self._broken = error
            broken = self._broken
            victims = list(self._pending)
            self._pending.clear()
            self._pending_items = 0
            self._cond.notify_all()
        for unit in victims:
            for index in range(unit.start, unit.stop):
                unit.job.sink.fail(index, broken)
