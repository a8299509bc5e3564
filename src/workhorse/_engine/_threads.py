"""The thread pool engine: worker threads pulling from one queue, and a deadline thread.

A thread cannot be killed. So a task that passes its timeout, or whose running future is
cancelled, is *abandoned*: its future fails (``TaskTimeout``) or is cancelled on time, its
thread is cancelled cooperatively (it stops at its next workhorse call with
``workhorse.Cancelled``) and a new thread takes its place, so the pool keeps its capacity;
the abandoned thread exits as soon as its task returns, and its result is discarded.

Invariants: a future is settled by exactly one of its worker thread (normal end), the
deadline thread (timeout) or ``cancel()``; ``settle`` ignores the later attempts.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from .._cancel import CancelScope, swap
from .._errors import PoolBroken, TaskTimeout
from .._futures import TaskFuture, force_cancel, settle, start_running
from .._options import TaskOptions

__all__ = ["ThreadEngine"]


class _Task:
    __slots__ = ("args", "attempt", "fn", "future", "kwargs", "options", "scope")

    def __init__(
        self, future: TaskFuture[Any], fn: Callable[..., Any], args: Any, kwargs: Any,
        options: TaskOptions,
    ) -> None:  # fmt: skip
        self.future, self.fn, self.args, self.kwargs = future, fn, args, kwargs
        self.options, self.attempt = options, 0
        self.scope: CancelScope | None = None

    def describe(self) -> str:
        name = getattr(self.fn, "__qualname__", None) or repr(self.fn)
        return f"task {name}"


class ThreadEngine:
    """Runs tasks on up to ``workers`` threads, started as work arrives.

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
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._idle = threading.Semaphore(0)
        self._active = 0  # threads counted against capacity (abandoned ones are not)
        self._names = itertools.count()
        self._closing = False
        self._broken: BaseException | None = None
        self._deadlines: list[tuple[float, int, _Task]] = []
        self._deadline_cond = threading.Condition(self._lock)
        self._deadline_thread: threading.Thread | None = None
        self._seq = itertools.count()
        self._running: dict[int, _Task] = {}
        self._stop = self._stop_task

    # -- called from any thread -------------------------------------------------------

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:  # fmt: skip
        """Queue one task; returns its future."""
        return self.submit_many(fn, [(args, kwargs)], options)[0]

    def submit_many(
        self, fn: Callable[..., Any], calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
        options: TaskOptions,
    ) -> list[Future[Any]]:  # fmt: skip
        """Queue several calls of ``fn``."""
        futures: list[Future[Any]] = []
        with self._lock:
            if self._broken is not None:
                raise PoolBroken(f"the pool is broken: {self._broken}") from self._broken
            if self._closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            for args, kwargs in calls:
                future: TaskFuture[Any] = TaskFuture()
                task = _Task(future, fn, args, kwargs, options)
                future._stop_running = self._stop
                future._wh_task = task  # type: ignore[attr-defined]
                self._queue.put(task)
                futures.append(future)
                self._grow()
        return futures

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; finish (or cancel) what is queued; let the threads exit."""
        with self._lock:
            if cancel_futures:
                self._drain_and_cancel()
            if not self._closing:
                self._closing = True
                for _ in range(len(self._threads)):
                    self._queue.put(None)
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
            self._drain_and_cancel()
        for thread_task in list(self._running.values()):
            force_cancel(thread_task.future)
            if thread_task.scope is not None:
                thread_task.scope.cancel("the pool was terminated")
        self.shutdown(wait=False)

    @property
    def alive(self) -> bool:
        """True while any worker thread runs."""
        return any(t.is_alive() for t in self._threads)

    # -- internals ---------------------------------------------------------------------

    def _drain_and_cancel(self) -> None:
        while True:
            try:
                task = self._queue.get_nowait()
            except queue.Empty:
                return
            if task is not None:
                force_cancel(task.future)

    def _grow(self) -> None:
        """Start a thread for a queued task unless one is idle or capacity is reached
        (lock held); the stdlib's ThreadPoolExecutor does the same."""
        if self._idle.acquire(blocking=False) or self._active >= self.workers:
            return
        self._active += 1
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{next(self._names)}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

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
                task = self._queue.get()
                if task is None:
                    return
                if not self._run(task):
                    return  # abandoned: a replacement already took our place
                done += 1
                self._idle.release()
            with self._lock:  # retired after max tasks: hand the slot to a fresh thread
                self._idle.acquire(blocking=False)
                self._active -= 1
                if not self._closing:
                    self._grow()
        finally:
            with self._lock:
                self._threads.discard(me)
                self._deadline_cond.notify_all()  # the deadline thread exits with the last one

    def _run(self, task: _Task) -> bool:
        future = task.future
        if task.attempt == 0 and not start_running(future):
            return True
        scope = task.scope = CancelScope()
        key = id(task)
        self._running[key] = task
        if task.options.timeout is not None:
            self._watch(task)
        previous = swap(scope)
        try:
            ok, value = True, task.fn(*task.args, **task.kwargs)
        except BaseException as exc:  # Cancelled included: it is the task's outcome
            ok, value = False, exc
        finally:
            swap(previous)
            del self._running[key]
        if scope.cancelled:
            future._wh_task = None  # type: ignore[attr-defined]
            return False  # timed out or cancelled: already settled, slot already replaced
        if not ok and task.options.should_retry(task.attempt, value):
            task.attempt += 1
            self._queue.put(task)
            return True
        future._wh_task = None  # type: ignore[attr-defined]  # no stale refs to the arguments
        settle(future, ok, value)
        return True

    def _stop_task(self, future: TaskFuture[Any]) -> None:
        task = getattr(future, "_wh_task", None)
        if task is not None:
            self._abandon(task, "the task was cancelled")

    def _abandon(self, task: _Task, reason: str) -> None:
        """Give up on a running task: cancel its thread's scope and replace the thread."""
        scope = task.scope
        if scope is None or scope.cancelled:
            return
        scope.cancel(reason)
        with self._lock:
            self._active -= 1
            if not self._closing:
                self._grow()

    def _watch(self, task: _Task) -> None:
        timeout = task.options.timeout or 0.0
        with self._lock:
            heapq.heappush(self._deadlines, (time.monotonic() + timeout, next(self._seq), task))
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
                at, _, task = self._deadlines[0]
                left = at - time.monotonic()
                if left > 0:
                    self._deadline_cond.wait(left)
                    continue
                heapq.heappop(self._deadlines)
                if task.future.done() or id(task) not in self._running:
                    continue
                self._lock.release()
                try:
                    settle(task.future, False, self._timeout_error(task))
                    self._abandon(task, "the task ran past its timeout")
                finally:
                    self._lock.acquire()

    @staticmethod
    def _timeout_error(task: _Task) -> TaskTimeout:
        return TaskTimeout(
            f"{task.describe()} ran longer than its timeout of {task.options.timeout} s; its "
            "future failed on time, but a thread cannot be killed: it was asked to stop at its "
            "next workhorse call and was replaced"
        )

    def _break(self, cause: BaseException) -> None:
        with self._lock:
            if self._broken is None:
                error = PoolBroken(f"the pool's initializer raised {type(cause).__name__}: {cause}")
                error.__cause__ = cause
                self._broken = error
            broken = self._broken
            while True:
                try:
                    task = self._queue.get_nowait()
                except queue.Empty:
                    break
                if task is not None:
                    settle(task.future, False, broken)
