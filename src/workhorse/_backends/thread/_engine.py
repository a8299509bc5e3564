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
import itertools
import logging
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from time import monotonic
from typing import Any

from ..._backend import BackendBase
from ..._errors import PoolBroken
from ..._futures import TaskFuture
from ..._options import TaskOptions
from ..._scheduler import _exit
from ..._scheduler._batching import Batcher
from ..._scheduler._events import PoolEvents
from ..._scheduler._job import ARGS, FutureSink, Job
from ..._scheduler._outcomes import deliver, timeout_error
from ..._scheduler._units import Pending, Unit
from ..._worker_info import WorkerInfo, enter, run_exit_hook
from ._calls import call_slice
from ._deadlines import Deadlines

__all__ = ["ThreadEngine"]

_executor_log = logging.getLogger(
    "concurrent.futures"
)  # where the stdlib logs a failing initializer

_ABANDONED = (
    "its future failed on time, but a thread cannot be killed: it was asked to stop at its "
    "next workhorse call and was replaced"
)


class ThreadEngine(BackendBase):
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
        worker_exit: Callable[[], Any] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_worker: int | None = None,
        options: TaskOptions | None = None,
        chunksize: int | None = None,
        name: str = "workhorse-thread",
        events: PoolEvents | None = None,
        shared: Any = None,
    ) -> None:
        self.workers = workers
        self.options = options or TaskOptions()
        self.events = events or PoolEvents("threads")
        self._initializer, self._initargs = initializer, initargs
        self._worker_exit = worker_exit
        self._shared = shared  # threads share memory: every worker reads this very object
        self._max_tasks = max_tasks_per_worker
        self._name = name
        self._lock = threading.Lock()
        self._pending = Pending()
        self._batcher = Batcher(chunksize)  # None: adaptive
        self._threads: set[threading.Thread] = set()
        self._sleepers: list[_thread.LockType] = []  # idle threads' wake-up locks (held)
        self._active = 0  # threads counted against capacity (abandoned ones are not)
        self._names = itertools.count()
        self._ids: set[int] = set()  # WorkerInfo.id of each thread (see workhorse.worker())
        self._closing = False
        self._broken: BaseException | None = None
        self._deadlines = Deadlines(
            self._lock, f"{name}-deadlines", expire=self._expire,
            finished=lambda: self._closing and not self._threads, closing=lambda: self._closing,
        )  # fmt: skip
        self._running: dict[Unit, bool] = {}  # taken slices; popping one claims its outcome
        self._stop_future = self._stop_one  # one bound method shared by every future
        self.feeds: weakref.WeakSet[Any] = weakref.WeakSet()  # the lazy maps open on it
        _exit.register(self)
        self.events.started(workers, "threads, started as work arrives")

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
            self._pending.add(job)
            sleepers = self._sleepers
            idle = len(sleepers)
            if idle:
                sleepers.pop().release()  # it hands on to the next sleeper if more is left
            if self._active < self.workers and count > idle:
                for _ in range(min(self.workers - self._active, count - idle)):
                    self._grow()

    def stop_job(self, job: Job) -> None:
        """Abandon the running slices of ``job`` (their threads are replaced)."""
        self._stop_where(lambda unit: unit.job is job)

    def _stop_one(self, future: TaskFuture[Any]) -> None:
        """Abandon the running slice whose sink is ``future`` (a cancelled ``submit``)."""
        self._stop_where(lambda unit: getattr(unit.job.sink, "future", None) is future)

    def _stop_where(self, doomed: Callable[[Unit], bool]) -> None:
        for unit in list(self._running):  # list(): an atomic snapshot, no lock needed
            if doomed(unit):
                self._abandon(unit, "the task was cancelled")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; finish (or cancel) what is queued; let the threads exit."""
        self.events.shutting_down(wait, cancel_futures)
        with self._lock:
            if cancel_futures:
                self._pending.drop_all()
            self._closing = True
            _wake_all(self._sleepers)
            self._deadlines.wake()
            threads = list(self._threads)
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()
            self._deadlines.join()

    def terminate(self) -> None:
        """Cancel every queued and running task now; running threads are abandoned."""
        self.events.shutting_down(False, True)
        with self._lock:
            self._pending.drop_all()
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

    def _grow(self) -> None:
        """Start one more worker thread (lock held)."""
        if self._active >= self.workers:
            return
        self._active += 1
        # The lowest number free: a replacement takes the one its predecessor left.
        wid = next(i for i in itertools.count() if i not in self._ids)
        self._ids.add(wid)
        thread = threading.Thread(
            target=self._work, args=(wid,), name=f"{self._name}-{next(self._names)}",
            daemon=True,
        )  # fmt: skip
        self._threads.add(thread)
        thread.start()  # not masked: it runs tasks, which may start processes (see _signals)

    def _take(self, done: int, waiter: _thread.LockType) -> Unit | None:
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
                unit = pending.head(start=True)
                if unit is None:
                    continue  # every queued job was cancelled: sleep again
                job = unit.job
                count = len(unit)
                if count == 1 or job.options.timeout is not None or type(job.sink) is FutureSink:
                    size = 1
                else:
                    size = job.chunksize or self._batcher.size(pending.items, self.workers, job.fn)
                if self._max_tasks is not None:
                    size = max(1, min(size, self._max_tasks - done))
                taken = pending.take(size)
                if pending and self._sleepers:
                    self._sleepers.pop().release()  # more to do: hand it on
                self._running[taken] = True
                return taken

    def _work(self, wid: int) -> None:
        me = threading.current_thread()
        waiter = _thread.allocate_lock()
        waiter.acquire()
        self.events.worker_started(me.name)
        enter(WorkerInfo(wid, os.getpid(), me.name, "threads", shared=self._shared))
        cause, initialized = "shutdown", True
        try:
            if self._initializer is not None:
                try:
                    self._initializer(*self._initargs)
                except BaseException as exc:
                    _executor_log.critical("Exception in initializer:", exc_info=True)
                    self._break(exc)
                    initialized = False
                    return
            done = 0
            while self._max_tasks is None or done < self._max_tasks:
                unit = self._take(done, waiter)
                if unit is None:
                    return
                if not self._run(unit):
                    # abandoned: a replacement already took our place
                    cause = "cancelled" if unit.job.sink.cancelled else "timeout"
                    return
                done += unit.stop - unit.start
                # Idle from here on: the finished task's function and arguments must not be
                # kept alive by this frame (CPython's test_no_stale_references).
                unit = None
            cause = "task limit"
            self.events.worker_replaced(me.name, "it reached its task limit")
            with self._lock:  # retired after max tasks: hand the slot to a fresh thread
                self._active -= 1
                self._ids.discard(wid)  # and its id
                wid = -1
                if self._pending and not self._closing:
                    self._grow()
        finally:
            if initialized and cause in ("shutdown", "task limit"):  # an ordinary exit
                run_exit_hook(self._worker_exit)
            self.events.worker_exited(me.name, cause)
            with self._lock:
                self._threads.discard(me)
                self._ids.discard(wid)  # (-1: handed on already)
                self._deadlines.wake()  # the deadline thread exits with the last one

    def _run(self, unit: Unit) -> bool:
        job = unit.job
        if job.options.timeout is not None:
            self._deadlines.watch(unit, job.options.timeout)
        start = unit.start
        began = monotonic()
        ends: list[float] | None = [] if self.events.per_task is not None else None
        values, failures = call_slice(unit, ends)
        seconds = monotonic() - began
        self.events.ran(
            threading.current_thread().name, len(values), seconds, job=job, index=start,
            started=began, ends=ends,
        )  # fmt: skip
        if not self._running.pop(unit, False):
            return False  # timed out or stopped: settled by whoever stopped it
        self._batcher.observe(len(values), seconds, unit.job.fn)
        if failures:
            requeue = partial(self._requeue, job)
            deliver(job, start, values, failures, unit.attempt, requeue, self.events)
        else:
            job.sink.ok(start, values)
        return True

    def _requeue(self, job: Job, index: int, attempt: int) -> None:
        with self._lock:
            self._pending.retry(job, index, attempt)
            if self._sleepers:
                self._sleepers.pop().release()

    def _abandon(self, unit: Unit, reason: str) -> bool:
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

    def _expire(self, unit: Unit) -> None:
        """``unit`` ran past its timeout: fail it on time and abandon its thread."""
        if unit in self._running and self._abandon(unit, "the task ran past its timeout"):
            task = unit.job.describe(unit.start)
            self.events.timed_out(task, unit.job.options.timeout, "replacing its thread")
            unit.job.sink.fail(unit.start, timeout_error(unit.job, unit.start, _ABANDONED))

    def _break(self, cause: BaseException) -> None:
        first = False
        with self._lock:
            if self._broken is None:
                error = PoolBroken(f"the pool's initializer raised {type(cause).__name__}: {cause}")
                error.__cause__ = cause
                self._broken, first = error, True
            broken = self._broken
            victims = self._pending.clear()
            _wake_all(self._sleepers)
        if first:
            self.events.broken(broken)
        for unit in victims:
            for index in range(unit.start, unit.stop):
                unit.job.sink.fail(index, broken)


def _wake_all(sleepers: list[_thread.LockType]) -> None:
    """Wake every idle thread (the pool's lock held)."""
    for waiter in sleepers:
        waiter.release()
    sleepers.clear()
