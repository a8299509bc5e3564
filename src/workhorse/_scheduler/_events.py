"""What a pool reports as it runs, written once for every backend: its log records and the
counts behind ``pool.stats()``.

Every backend reports the same events here -- a worker started, died or was replaced, a task
timed out or runs again, the pool broke -- so that a record means the same whatever runs
the tasks. Records go to a child of the ``workhorse`` logger named for the backend
(``workhorse.processes``, ``workhorse.threads``, ``workhorse.serial``, ``workhorse.dask``);
each message starts with the pool's name, also in ``record.pool``. (A logger per pool would
never be freed: ``logging`` keeps every logger it makes for the life of the program, and a
program may make thousands of pools.)

Levels: WARNING when something went wrong (a worker crashed, a task timed out, the pool
broke), INFO for what the pool did about it (a task runs again, a worker is replaced, and
why), DEBUG for the ordinary lifecycle (workers started and stopped, shutdown).

As the logging HOWTO asks of libraries, the only handler added is a ``NullHandler`` on each of
these loggers: a program that configures no logging sees nothing (the stdlib's pools print
nothing in these cases either), and one that does gets every record.

Each event also updates the pool's :class:`~.._stats.Tally` (``events.tally``): workers
started, exited (and why: one of :data:`~.._stats.EXIT_CAUSES`), their busy time
(:meth:`PoolEvents.ran`), retries and timeouts.

Example::

    events = PoolEvents("processes", "Pool")
    events.worker_started(1234)   # DEBUG "Pool-1: worker 1234 started"
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

from .._errors import _signal_name
from .._stats import Tally, counting_tasks
from .._task_times import Part, TaskTimes
from .._trace import Slowest, Timeline

__all__ = ["PoolEvents", "describe_exit", "logger_for"]

_numbers = itertools.count(1)
_lock = threading.Lock()


def logger_for(backend: str) -> logging.Logger:
    """The logger of ``backend``'s pools, with its ``NullHandler``."""
    logger = logging.getLogger(f"workhorse.{backend}")
    with _lock:
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
    return logger


def describe_exit(exitcode: int | None) -> str:
    """How a worker process ended, in words: ``killed by SIGKILL``, ``exit code 3``."""
    if exitcode is None:
        return "exit status unknown"
    name = _signal_name(exitcode)
    return f"exit code {exitcode}" if name is None else f"killed by {name}"


class PoolEvents:
    """One pool's log records (see the module docstring)."""

    __slots__ = ("_shut", "counts", "logger", "name", "per_task", "slowest", "tally", "timeline")

    def __init__(self, backend: str, kind: str = "pool") -> None:
        self.name = f"{kind}-{next(_numbers)}"
        self.logger = logger_for(backend)
        self.tally = Tally()
        # What counts each task and batch: the tally, or None with $WORKHORSE_STATS=0.
        self.counts: Tally | None = self.tally if counting_tasks() else None
        self.slowest = Slowest()
        self.timeline: Timeline | None = None  # trace=: set by the front end
        # insights=True (set by the front end): backends then report each item's end time
        self.per_task: TaskTimes | None = None
        self._shut = False

    def _emit(self, level: int, message: str, *args: object) -> None:
        logger = self.logger
        if logger.isEnabledFor(level):
            logger.log(level, "%s: " + message, self.name, *args, extra={"pool": self.name})

    # -- DEBUG: the lifecycle ------------------------------------------------------------

    def started(self, workers: int | None, how: str) -> None:
        """The pool was created."""
        shown = "the cluster's" if workers is None else str(workers)
        self._emit(logging.DEBUG, "started: %s workers (%s)", shown, how)

    def worker_started(self, worker: object) -> None:
        """A worker (a pid, a thread name) started."""
        self.tally.worker_started(worker)
        if self.timeline is not None:
            self.timeline.instant(worker, "started")
        self._emit(logging.DEBUG, "worker %s started", worker)

    def worker_stopped(self, worker: object, why: str, cause: str = "idle") -> None:
        """A worker left in the ordinary course (``cause``: idle, the pool's shutdown)."""
        self.worker_exited(worker, cause)
        self._emit(logging.DEBUG, "worker %s stopped: %s", worker, why)

    def worker_exited(self, worker: object, cause: str) -> None:
        """A worker is gone (``cause``: one of :data:`~.._stats.EXIT_CAUSES`); counted only,
        the records that say why are :meth:`worker_died` and :meth:`worker_replaced`."""
        self.tally.worker_exited(worker, cause)
        if self.timeline is not None:
            self.timeline.instant(worker, f"exited: {cause}")

    def ran(
        self, worker: object, items: int, seconds: float, pickling: float = 0.0, *,
        job: Any = None, index: int = 0, started: float | None = None,
        ends: list[float] | None = None, parts: list[Part] | None = None,
    ) -> None:  # fmt: skip
        """``worker`` ran ``items`` tasks (``job``'s from ``index``) for ``seconds`` from
        ``started`` (monotonic; ``None``: until now); ``pickling``: the seconds spent pickling
        and unpickling them and their results. Counted, and kept for insights and the trace.

        ``insights=True``: ``ends`` are the items' end times, in order (a batch of one needs
        none); ``parts`` (job, first index, count) say whose items they are when the batch
        holds several jobs' (default: ``items`` of ``job`` from ``index``)."""
        per_task = self.per_task
        if per_task is not None and job is not None:
            begin = time.monotonic() - seconds if started is None else started
            if not ends and items == 1:  # a batch of one needs no end times
                ends = [begin + seconds]
            if ends is not None:
                per_task.record(worker, begin, ends, parts or [(job, index, items)], self.timeline)
        if self.counts is None:
            if self.timeline is None:
                return
        else:
            self.counts.ran(worker, items, seconds, pickling)
        if job is None:
            return
        self.slowest.offer(seconds, job, index, items, worker)
        timeline = self.timeline
        if timeline is not None:
            start = time.monotonic() - seconds if started is None else started
            name = getattr(job.fn, "__qualname__", None) or type(job.fn).__qualname__
            timeline.batch(worker, name, start, seconds, items, job.describe(index), pickling)

    def shutting_down(self, wait: bool, cancel: bool) -> None:
        """``shutdown``/``close``/``terminate`` was called (said once per pool)."""
        if self._shut:
            return
        self._shut = True
        how = "waiting for its tasks" if wait else "without waiting"
        self._emit(logging.DEBUG, "shutting down, %s%s", how, ", cancelling queued tasks" * cancel)

    # -- INFO: what the pool did about a failure -----------------------------------------

    def retrying(self, task: str, attempt: int, tries: int, error: BaseException) -> None:
        """``task`` failed on try ``attempt`` (1-based) of ``tries`` and runs again."""
        self.tally.count("retried")
        if self.timeline is not None:
            self.timeline.instant(None, "retry", task=task, attempt=attempt, error=repr(error))
        self._emit(
            logging.INFO, "%s failed on try %d of %d (%s: %s); running it again",
            task, attempt, tries, type(error).__name__, error,
        )  # fmt: skip

    def worker_replaced(self, worker: object, why: str) -> None:
        """A worker is replaced (after a crash, a timeout, its task limit...)."""
        self._emit(logging.INFO, "replacing worker %s: %s", worker, why)

    # -- WARNING: something went wrong ---------------------------------------------------

    def worker_died(self, worker: object, how: str, task: str | None) -> None:
        """A worker died (``how``: :func:`describe_exit`), running ``task`` or idle."""
        doing = f"while running {task}" if task else "between tasks"
        self._emit(logging.WARNING, "worker %s died (%s) %s", worker, how, doing)

    def memory_grew(self, worker: object, grown: int, tasks: int, limit: str) -> None:
        """A worker grew by ``grown`` bytes over ``tasks`` tasks, past ``limit``."""
        self._emit(
            logging.WARNING, "worker %s grew by %d MB over %d tasks, a likely memory leak "
            "(limit: %s); replacing it", worker, grown // 2**20, tasks, limit,
        )  # fmt: skip

    def timed_out(self, task: str, timeout: float | None, what: str) -> None:
        """``task`` ran past its timeout; ``what`` the pool does about it."""
        self.tally.count("timed_out")
        if self.timeline is not None:
            self.timeline.instant(None, "timeout", task=task, action=what)
        self._emit(logging.WARNING, "%s ran past its timeout of %s s; %s", task, timeout, what)

    def broken(self, error: BaseException) -> None:
        """The pool broke: every queued task fails with ``error``."""
        self._emit(logging.WARNING, "the pool is broken: %s", error)
