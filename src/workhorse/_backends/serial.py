"""The serial backend: every call runs in the caller's thread, in order, when it is queued.

For debugging and tests: ``pdb.set_trace()`` (or a breakpoint) inside a task stops in the
caller's terminal, a task's exception carries its own traceback, and a test is
deterministic. Select it with ``backend="serial"`` on any pool, or for every pool of a
program created without ``backend=`` with ``WORKHORSE_BACKEND=serial`` (joblib's
sequential backend, for workhorse).

The same options, errors and progress as the other backends: ``retries``/``retry_on``
through the shared retry path (:mod:`._outcomes`), an initializer that raises breaks the
pool (:class:`~workhorse.PoolBroken`), ``max_tasks_per_worker`` runs the initializer again
after that many tasks (a fresh worker, as far as the caller's process can be one).
``timeout``: a task running in the main thread is interrupted by ``SIGALRM`` when it
passes its timeout and fails with :class:`~workhorse.TaskTimeout` (unless the program has
its own ``SIGALRM`` handler or timer); elsewhere it cannot be interrupted, so it runs to the
end and then fails with ``TaskTimeout`` (its result discarded). What it cannot give: a task
that kills its process (``os._exit``, a segfault) kills the caller; nothing is pickled, so
an unpicklable argument is not an error here. A ``KeyboardInterrupt`` in a task fails that
task, cancels the rest of its job and is raised in the caller.

Example::

    with workhorse.Pool(4, backend="serial") as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]   # ran here, one after the other
"""

from __future__ import annotations

import os
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._backend import BackendBase
from .._errors import PoolBroken
from .._scheduler import _exit
from .._scheduler._events import PoolEvents
from .._scheduler._job import Job
from .._scheduler._outcomes import fail_or_retry, timeout_error
from .._worker_info import WorkerInfo, enter, leave, run_exit_hook

if TYPE_CHECKING:
    from .._config import PoolConfig

__all__ = ["SerialEngine"]

CALLER = "the caller"  # the one "worker" of pool.stats(): tasks run in the calling thread


def _caller_info(shared: Any = None) -> WorkerInfo:
    return WorkerInfo(0, os.getpid(), CALLER, "serial", shared=shared)


class _Expired(BaseException):
    """Raised inside a task by the ``SIGALRM`` handler (a BaseException, so that a task's
    ``except Exception`` does not swallow it)."""


class SerialEngine(BackendBase):
    """Runs each call inline, in the caller's thread (see the module docstring).

    Example::

        engine = SerialEngine(PoolConfig.build(default_backend="serial"))
        assert engine.submit(pow, (2, 10), {}, engine.options).result() == 1024
    """

    inline = True  # see workhorse._backend.Backend
    recent_batch = 1
    alive = False  # no worker outlives a call

    def __init__(self, config: PoolConfig) -> None:
        self.workers = config.workers or 1
        self.options = config.options
        self.events = PoolEvents("serial", config.name)
        self.events.started(1, "serial: each task runs inline, in the caller")
        self.feeds: weakref.WeakSet[Any] = weakref.WeakSet()  # the lazy maps open on it
        self._initializer, self._initargs = config.initializer, config.initargs
        self._worker_exit = config.worker_exit
        self._max_tasks = config.max_tasks_per_worker
        self._done = 0  # tasks since the initializer last ran
        self._initialized = False
        self._info = _caller_info(config.shared)
        self._closing = False
        self._broken: BaseException | None = None

    def run(self, job: Job) -> None:
        """Run every call of ``job`` now, in order; outcomes go to its sink."""
        _exit.check_accepting()
        if self._broken is not None:
            raise PoolBroken(f"the pool is broken: {self._broken}") from self._broken
        if self._closing:
            raise RuntimeError("cannot schedule new futures after shutdown")
        queue: deque[tuple[int, int]] = deque((index, 0) for index in range(len(job.calls)))

        def requeue(index: int, attempt: int) -> None:
            queue.appendleft((index, attempt))

        while queue:
            index, attempt = queue.popleft()
            if not job.sink.start():  # cancelled (by a task, or a map that stopped reading)
                job.sink.drop(index, index + 1)
                continue
            try:
                self._run_one(job, index, attempt, requeue)
            except KeyboardInterrupt:
                for rest, _ in queue:
                    job.sink.drop(rest, rest + 1)
                raise

    def _run_one(
        self, job: Job, index: int, attempt: int, requeue: Callable[[int, int], None]
    ) -> None:
        previous = enter(self._info)  # workhorse.worker() in the task: the caller, as worker 0
        try:
            self._run_inline(job, index, attempt, requeue)
        finally:
            leave(previous)

    def _run_inline(
        self, job: Job, index: int, attempt: int, requeue: Callable[[int, int], None]
    ) -> None:
        if not self._initialized:
            self._initialize(job, index)
            if self._broken is not None:
                return
        args, kwargs = job.call(index)
        timeout = job.options.timeout
        alarm = timeout is not None and _can_alarm()
        began = time.monotonic()
        try:
            if alarm:
                assert timeout is not None
                value = _call_with_alarm(job.fn, args, kwargs, timeout)
            else:
                value = job.fn(*args, **kwargs)
        except _Expired:
            error: BaseException = timeout_error(job, index, "it was interrupted (SIGALRM)")
            self.events.timed_out(job.describe(index), timeout, "interrupting it (SIGALRM)")
        except KeyboardInterrupt as exc:
            job.sink.fail(index, exc)
            raise
        except BaseException as exc:  # SystemExit included: it is the task's outcome
            error = exc
        else:
            if timeout is not None and time.monotonic() - began > timeout:
                how = "it could not be interrupted outside the main thread; its result was dropped"
                error = timeout_error(job, index, how)
                self.events.timed_out(job.describe(index), timeout, "dropping its result")
            else:
                self.events.ran(
                    CALLER, 1, time.monotonic() - began, job=job, index=index, started=began
                )
                self._count_task()
                job.sink.ok(index, [value])
                return
        self.events.ran(CALLER, 1, time.monotonic() - began, job=job, index=index, started=began)
        self._count_task()
        fail_or_retry(job, index, attempt, error, requeue, self.events)

    def _initialize(self, job: Job, index: int) -> None:
        self._initialized = True
        if self._initializer is None:
            return
        try:
            self._initializer(*self._initargs)
        except Exception as exc:
            name = type(exc).__name__
            self._broken = PoolBroken(f"the pool's initializer raised {name}: {exc}")
            self._broken.__cause__ = exc
            self.events.broken(self._broken)
            job.sink.fail(index, self._broken)

    def _count_task(self) -> None:
        self._done += 1
        if self._max_tasks is not None and self._done >= self._max_tasks:
            run_exit_hook(self._worker_exit)  # this "worker" leaves (its info is entered)
            self._done, self._initialized = 0, False  # a "new worker": initialize again
            self._info = _caller_info(self._info.shared)

    def stop_job(self, job: Job) -> None:
        """Nothing runs elsewhere: a job is stopped by its sink refusing to ``start``."""

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept nothing more (everything accepted has already run)."""
        self.events.shutting_down(wait, cancel_futures)
        self._closing = True
        self._leave()

    def terminate(self) -> None:
        """Accept nothing more."""
        self._closing = True
        self._leave()

    def _leave(self) -> None:
        """The caller stops being a worker: the pool's ``worker_exit`` hook, once."""
        if not self._initialized or self._broken is not None:
            return
        self._initialized = False
        previous = enter(self._info)
        try:
            run_exit_hook(self._worker_exit)
        finally:
            leave(previous)


def _can_alarm() -> bool:
    """Whether a ``SIGALRM`` timer may interrupt a task here: in the main thread, with no
    handler or timer of the program's in the way."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
        return False
    return signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def _call_with_alarm(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float
) -> Any:
    def expire(signum: int, frame: Any) -> None:
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
