"""The thread pool engine: worker threads taking slices of jobs, and a deadline thread.

Threads take work from one deque of units (item ranges of jobs) under one lock; a slice
is sized by the same adaptive :class:`~._batching.Batcher` as process batches, so tiny
calls are taken many at a time (one lock round trip for all) while slow ones go one by one
and spread over every thread. An idle thread sleeps on its own C lock, kept on a stack of
sleepers: waking it is one ``release`` (no ``threading.Condition``, no lock allocated per
wait), and the most recently idle thread is woken first, so surplus threads stay asleep.

A thread cannot be killed. So a task that passes its timeout, or whose running future is
cancelled, is *abandoned*: its future fails (``TaskTimeout``) or is cancelled on time, its
thread is cancelled cooperatively (it stops at its next workhorse call with
``workhorse.Cancelled``) and a new thread takes its place, so the pool keeps its capacity;
the abandoned thread exits as soon as its task returns, and its result is discarded. Items
with a timeout are therefore always run one per slice.

Invariants: an item's outcome is given to its sink by exactly one of its worker thread
(normal end), the deadline thread (timeout) or a stop (cancel, terminate); an abandoned
slice's thread delivers nothing. The token is the slice's entry in ``_running``: whoever
pops it (``dict.pop`` is atomic) owns the outcome, so a thread finishing its slice needs no
lock to know it was not abandoned meanwhile.
"""

from __future__ import annotations

import _thread
import heapq
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from time import monotonic
from typing import Any

from .. import _cancel
from .._cancel import CancelScope
from .._errors import PoolBroken, TaskTimeout
from .._futures import TaskFuture
from .._options import TaskOptions
from .._signals import start_quietly
from . import _exit
from ._batching import Batcher
from ._job import ARGS, ITEM, FutureSink, Job

__all__ = ["ThreadEngine"]

_executor_log = logging.getLogger(
    "concurrent.futures"
)  # where the stdlib logs a failing initializer


class _Unit(CancelScope):
    """Items ``start:stop`` of ``job`` (its ``attempt``-th try). Once a thread takes it, it is
    also that thread's cancel scope: one object per ``submit``, not a slice and a scope too.
    A pending unit is never cancelled (only running ones are abandoned)."""

    __slots__ = ("attempt", "batch", "job", "start", "stop")

    def __init__(self, job: Job, start: int, stop: int, attempt: int = 0) -> None:
        super().__init__()
        self.job, self.start, self.stop, self.attempt = job, start, stop, attempt
        self.batch: list[Any] | None = None  # the calls of a running multi-item slice


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
        self._pending: deque[_Unit] = deque()
        self._pending_items = 0
        self._batcher = Batcher()
        self._threads: set[threading.Thread] = set()
        self._sleepers: list[_thread.LockType] = []  # idle threads' wake-up locks (held)
        self._active = 0  # threads counted against capacity (abandoned ones are not)
        self._names = itertools.count()
        self._closing = False
        self._broken: BaseException | None = None
        self._deadlines: list[tuple[float, int, _Unit]] = []
        self._deadline_cond = threading.Condition(self._lock)
        self._deadline_thread: threading.Thread | None = None
        self._seq = itertools.count()
        self._running: dict[_Unit, bool] = {}  # taken slices; popping one claims its outcome
        self._stop_future = self._stop_one  # one bound method shared by every future
        self.feeds: weakref.WeakSet[Any] = weakref.WeakSet()  # the lazy maps open on it
        _exit.register(self)

    # -- called from any thread -------------------------------------------------------

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:  # fmt: skip
        """Queue one task; returns its future."""
        # _job.future_job's job, built for the thread engine: without keyword arguments the
        # call is stored as its argument tuple (no (args, kwargs) pair), and every future
        # shares one bound stop method instead of a closure over its job.
        future: TaskFuture[Any] = TaskFuture()
        sink = FutureSink(future)
        if kwargs:
            job = Job(fn, [(args, kwargs)], options, sink)
        else:
            job = Job(fn, [args], options, sink, ARGS)
        if options.cancel_running:  # else cancel() keeps the stdlib's meaning
            future._stop_running = self._stop_future
        self.run(job)
        return future

    def run(self, job: Job) -> None:
        """Queue every call of ``job``; outcomes go to its sink."""
        _exit.check_accepting()
        count = len(job.calls)
        with self._lock:
            if self._broken is not None:
                raise PoolBroken(f"the pool is broken: {self._broken}") from self._broken
            if self._closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if not count:
                return
            self._pending.append(_Unit(job, 0, count))
            self._pending_items += count
            sleepers = self._sleepers
            idle = len(sleepers)
            if idle:
                sleepers.pop().release()  # it hands on to the next sleeper if more is left
            if self._active < self.workers and count > idle:
                for _ in range(min(self.workers - self._active, count - idle)):
                    self._grow()

    def stop_job(self, job: Job) -> None:
        """Abandon the running slices of ``job`` (their threads are replaced)."""
        doomed = [unit for unit in list(self._running) if unit.job is job]  # list(): atomic
        for unit in doomed:
            self._abandon(unit, "the task was cancelled")

    def _stop_one(self, future: TaskFuture[Any]) -> None:
        """Abandon the running slice whose sink is ``future`` (a cancelled ``submit``)."""
        for unit in list(self._running):  # list(): an atomic snapshot, no lock needed
            sink = unit.job.sink
            if type(sink) is FutureSink and sink.future is future:
                self._abandon(unit, "the task was cancelled")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; finish (or cancel) what is queued; let the threads exit."""
        with self._lock:
            if cancel_futures:
                self._drop_pending()
            self._closing = True
            self._wake_all()
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
        for unit in running:
            if self._abandon(unit, "the pool was terminated"):
                unit.job.sink.drop(unit.start, unit.stop)
        self.shutdown(wait=False)

    @property
    def alive(self) -> bool:
        """True while any worker thread runs."""
        return any(t.is_alive() for t in self._threads)

    # -- internals (lock held where the name says so) -----------------------------------

    def _wake_all(self) -> None:
        """Wake every idle thread (lock held)."""
        for waiter in self._sleepers:
            waiter.release()
        self._sleepers.clear()

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
        thread.start()  # not masked: it runs tasks, which may start processes (see _signals)

    def _take(self, done: int, waiter: _thread.LockType) -> _Unit | None:
        """The next slice for a thread that has run ``done`` items; None: exit. ``waiter`` is
        the thread's wake-up lock, held by it."""
        pending = self._pending
        lock = self._lock
        with lock:
            while True:
                while not pending and not self._closing and self._broken is None:
                    self._sleepers.append(waiter)
                    lock.release()
                    try:
                        waiter.acquire()  # released by whoever pops us from the sleepers
                    finally:
                        lock.acquire()
                if not pending or self._broken is not None:
                    return None
                unit = pending[0]
                job = unit.job
                if not job.sink.start():  # cancelled while queued
                    pending.popleft()
                    self._pending_items -= unit.stop - unit.start
                    continue
                count = unit.stop - unit.start
                if count == 1 or job.options.timeout is not None or type(job.sink) is FutureSink:
                    size = 1
                else:
                    size = self._batcher.size(self._pending_items, self.workers)
                if self._max_tasks is not None:
                    size = max(1, min(size, self._max_tasks - done))
                if size >= count:
                    pending.popleft()
                    taken = unit
                else:
                    taken = _Unit(job, unit.start, unit.start + size, unit.attempt)
                    unit.start += size
                self._pending_items -= taken.stop - taken.start
                if pending and self._sleepers:
                    self._sleepers.pop().release()  # more to do: hand it on
                self._running[taken] = True
                return taken

    def _work(self) -> None:
        me = threading.current_thread()
        waiter = _thread.allocate_lock()
        waiter.acquire()
        try:
            if self._initializer is not None:
                try:
                    self._initializer(*self._initargs)
                except BaseException as exc:
                    _executor_log.critical("Exception in initializer:", exc_info=True)
                    self._break(exc)
                    return
            done = 0
            while self._max_tasks is None or done < self._max_tasks:
                unit = self._take(done, waiter)
                if unit is None:
                    return
                if not self._run(unit):
                    return  # abandoned: a replacement already took our place
                done += unit.stop - unit.start
                # Idle from here on: the finished task's function and arguments must not be
                # kept alive by this frame (CPython's test_no_stale_references).
                unit = None
            with self._lock:  # retired after max tasks: hand the slot to a fresh thread
                self._active -= 1
                if self._pending and not self._closing:
                    self._grow()
        finally:
            with self._lock:
                self._threads.discard(me)
                self._deadline_cond.notify_all()  # the deadline thread exits with the last one

    def _run(self, unit: _Unit) -> bool:
        job = unit.job
        if job.options.timeout is not None:
            self._watch(unit)
        fn, calls, kind, start = job.fn, job.calls, job.kind, unit.start
        failures: dict[int, BaseException] = {}
        began = monotonic()
        state = _cancel.state
        previous, state.scope = state.scope, unit
        try:
            if unit.stop - start == 1:  # every submit: no loop, no batch list
                try:
                    if kind == ITEM:
                        value = fn(calls[start])
                    elif kind == ARGS:
                        value = fn(*calls[start])
                    else:
                        args, kwargs = calls[start]
                        value = fn(*args, **kwargs)
                except BaseException as exc:  # Cancelled included: it is the task's outcome
                    failures[start] = exc
                    value = None
                values = [value]
            else:
                values = self._run_many(unit, failures)
        finally:
            state.scope = previous
        if not self._running.pop(unit, False):
            return False  # timed out or stopped: settled by whoever stopped it
        self._batcher.observe(len(values), monotonic() - began)
        if failures:
            self._deliver(unit, values, failures)
        else:
            job.sink.ok(start, values)
        return True

    @staticmethod
    def _run_many(unit: _Unit, failures: dict[int, BaseException]) -> list[Any]:
        """Run a slice of several items; ``failures`` gets the ones that raised."""
        job = unit.job
        fn, kind = job.fn, job.kind
        # A private copy that _abandon empties: the loop stops before the next item without
        # testing a flag per item, and an abandoned slice starts no new call.
        batch = unit.batch = job.calls[unit.start : unit.stop]
        items = iter(batch)
        values: list[Any] = []
        append = values.append
        while True:  # the try is outside the loop: it costs nothing until an item raises
            try:
                if kind == ITEM:
                    for item in items:
                        append(fn(item))
                elif kind == ARGS:
                    for item in items:
                        append(fn(*item))
                else:
                    for args, kwargs in items:
                        append(fn(*args, **kwargs))
                return values
            except BaseException as exc:  # Cancelled included: it is the task's outcome
                failures[unit.start + len(values)] = exc
                append(None)

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
                    if self._sleepers:
                        self._sleepers.pop().release()
            else:
                sink.fail(index, error)
        if run_start < unit.stop:
            sink.ok(run_start, values[run_start - unit.start :])

    def _abandon(self, unit: _Unit, reason: str) -> bool:
        """Give up on a running slice: cancel its thread's scope and replace the thread.
        False if it had finished or was already given up on."""
        if not self._running.pop(unit, False):
            return False
        with self._lock:
            unit.cancel(reason)
            if unit.batch is not None:
                unit.batch.clear()  # its thread calls nothing more
            self._active -= 1
            if not self._closing and self._pending:
                self._grow()
        return True

    def _watch(self, unit: _Unit) -> None:
        timeout = unit.job.options.timeout or 0.0
        with self._lock:
            at = time.monotonic() + timeout
            heapq.heappush(self._deadlines, (at, next(self._seq), unit))
            if self._deadline_thread is None:
                self._deadline_thread = threading.Thread(
                    target=self._enforce_deadlines, name=f"{self._name}-deadlines", daemon=True
                )
                start_quietly(self._deadline_thread)
            self._deadline_cond.notify()

    def _enforce_deadlines(self) -> None:
        with self._lock:
            while not (self._closing and not self._threads):
                if not self._deadlines:
                    self._deadline_cond.wait(0.5 if self._closing else None)
                    continue
                at, _, unit = self._deadlines[0]
                left = at - time.monotonic()
                if left > 0:
                    self._deadline_cond.wait(left)
                    continue
                heapq.heappop(self._deadlines)
                if unit not in self._running:
                    continue
                self._lock.release()
                try:
                    if self._abandon(unit, "the task ran past its timeout"):
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
            self._wake_all()
        for unit in victims:
            for index in range(unit.start, unit.stop):
                unit.job.sink.fail(index, broken)
