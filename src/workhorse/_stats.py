"""Pool statistics, always on: what ``pool.stats()`` returns, and the tally behind it.

Every backend reports the same facts to its pool's :class:`~._scheduler._events.PoolEvents`
(a worker started, ran a batch, exited and why; a task was retried or timed out), and the
pool's front end counts what it accepted and how each task ended. Each fact is one counter
update under one lock, made once per batch or per event, never per item of a batch: cheap
enough to leave on. A ``submit``'s future is counted where it ends -- a result, an error, a
cancel by the caller or by the pool all go through :func:`~._futures.settle` or
:func:`~._futures.force_cancel` -- not by a done-callback, which cost three times as much.

``WORKHORSE_STATS=0`` in the environment (read when a pool is created) turns the per-task
counting off -- tasks, batches, busy time and the slowest batches; worker starts and exits
are still counted -- so that bench/ can measure what it costs (the "stats cost" case of its
tiny-task workload).

Example::

    with workhorse.Pool(2) as pool:
        pool.map(abs, range(1000))
        stats = pool.stats()
    assert stats.done == 1000 and stats.pending == 0
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["EXIT_CAUSES", "STATS_ENV", "PoolStats", "Tally", "WorkerStats", "counting_tasks"]

#: Set to ``0`` (or ``off``, ``false``, ``no``) to turn the per-task counting off.
STATS_ENV = "WORKHORSE_STATS"

#: Why a worker exits, as :attr:`PoolStats.worker_exits` counts it.
EXIT_CAUSES = (
    "crashed", "timeout", "cancelled", "init timeout", "task limit", "memory", "idle",
    "shutdown", "lost",
)  # fmt: skip
#: Exited workers kept in :attr:`PoolStats.workers` (the most recent ones).
KEPT_EXITED = 32
_CANCELLED = (CANCELLED, CANCELLED_AND_NOTIFIED)


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One worker's share of a pool's work (a process, a thread, a Dask worker).

    ``busy`` is the time it spent running tasks, ``alive`` the time since it started (until
    it exited); ``exit`` is why it exited (one of :data:`EXIT_CAUSES`), ``None`` while alive.

    Example::

        for worker in pool.stats().workers:
            print(worker.worker, worker.tasks, f"{worker.utilization:.0%}")
    """

    worker: str
    tasks: int
    busy: float
    alive: float
    exit: str | None = None

    @property
    def idle(self) -> float:
        """Seconds alive and not running a task."""
        return max(0.0, self.alive - self.busy)

    @property
    def utilization(self) -> float:
        """``busy / alive`` (0 for a worker that has not lived yet)."""
        return min(1.0, self.busy / self.alive) if self.alive > 0 else 0.0


@dataclass(frozen=True, slots=True)
class PoolStats:
    """What a pool has done so far: a snapshot, taken by ``pool.stats()``.

    Task counts are of *items* (each call of a ``map`` counts): ``submitted`` were accepted,
    ``done`` returned, ``failed`` raised for good (after their retries; a task past its
    timeout is failed too, and counted in ``timed_out`` as well), ``cancelled`` will never run
    (a cancelled future, a map stopped early, queued tasks dropped at shutdown). ``retried``
    counts the tries run again. ``worker_exits`` counts workers by why they exited (see
    :data:`EXIT_CAUSES`); ``workers`` lists the live workers, then the most recent to exit.
    ``busy`` is the time all workers spent running tasks; ``serialization`` the time the pool
    spent pickling and unpickling tasks and results in this process and in its workers (0 for
    backends that do not pickle: threads, serial).

    Example::

        stats = pool.stats()
        print(f"{stats.done}/{stats.submitted} done, {stats.failed} failed")
    """

    submitted: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0
    timed_out: int = 0
    workers_started: int = 0
    worker_exits: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    workers: tuple[WorkerStats, ...] = ()
    busy: float = 0.0
    serialization: float = 0.0

    @property
    def pending(self) -> int:
        """Accepted and not settled yet: queued or running."""
        return max(0, self.submitted - self.done - self.failed - self.cancelled)


def counting_tasks() -> bool:
    """Whether pools created now count their tasks (see :data:`STATS_ENV`)."""
    return os.environ.get(STATS_ENV, "1").strip().lower() not in ("0", "off", "false", "no")


class _Worker:
    __slots__ = ("busy", "ended", "exit", "name", "started", "tasks")

    def __init__(self, name: str, started: float) -> None:
        self.name, self.started = name, started
        self.tasks, self.busy = 0, 0.0
        self.ended: float | None = None
        self.exit: str | None = None

    def frozen(self, now: float) -> WorkerStats:
        alive = (self.ended if self.ended is not None else now) - self.started
        return WorkerStats(self.name, self.tasks, self.busy, max(0.0, alive), self.exit)


class Tally:
    """The mutable counts of one pool (thread-safe; see the module docstring)."""

    __slots__ = (
        "_exited",
        "_exits",
        "_live",
        "_lock",
        "busy",
        "cancelled",
        "done",
        "failed",
        "retried",
        "serialization",
        "started",
        "submitted",
        "timed_out",
    )  # fmt: skip

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.submitted = self.done = self.failed = self.cancelled = 0
        self.retried = self.timed_out = self.started = 0
        self.busy = self.serialization = 0.0
        self._live: dict[str, _Worker] = {}
        self._exited: deque[_Worker] = deque(maxlen=KEPT_EXITED)
        self._exits: Counter[str] = Counter()

    def accepted(self, items: int) -> None:
        with self._lock:
            self.submitted += items

    def settled(self, done: int = 0, failed: int = 0, cancelled: int = 0) -> None:
        with self._lock:
            self.done += done
            self.failed += failed
            self.cancelled += cancelled

    def future_settled(self, future: Future[Any]) -> None:
        """A ``submit``'s done-callback: counts how it ended (its state is final here, so it
        is read without the future's lock)."""
        if future._state in _CANCELLED:
            self.settled(cancelled=1)
        elif future._exception is None:
            self.settled(done=1)
        else:
            self.settled(failed=1)

    def count(self, what: str) -> None:
        """One more ``retried`` or ``timed_out``."""
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def worker_started(self, worker: object) -> None:
        name = str(worker)
        with self._lock:
            self.started += 1
            self._live[name] = _Worker(name, time.monotonic())

    def ran(self, worker: object, items: int, seconds: float, pickling: float = 0.0) -> None:
        """``worker`` ran a batch of ``items`` in ``seconds`` (plus ``pickling`` seconds of
        serialization, wherever it happened)."""
        name = str(worker)
        with self._lock:
            self.busy += seconds
            self.serialization += pickling
            entry = self._live.get(name)
            if entry is None:  # a worker that was running before the pool counted (Dask's)
                entry = self._live[name] = _Worker(name, time.monotonic() - seconds)
            entry.tasks += items
            entry.busy += seconds

    def serialized(self, seconds: float) -> None:
        with self._lock:
            self.serialization += seconds

    def worker_exited(self, worker: object, cause: str) -> None:
        name = str(worker)
        with self._lock:
            entry = self._live.pop(name, None)
            if entry is None:
                return  # counted already (a worker exits once)
            entry.ended, entry.exit = time.monotonic(), cause
            self._exited.append(entry)
            self._exits[cause] += 1

    def snapshot(self) -> PoolStats:
        now = time.monotonic()
        with self._lock:
            workers = [w.frozen(now) for w in self._live.values()]
            workers += [w.frozen(now) for w in reversed(self._exited)]
            return PoolStats(
                submitted=self.submitted, done=self.done, failed=self.failed,
                cancelled=self.cancelled, retried=self.retried, timed_out=self.timed_out,
                workers_started=self.started, worker_exits=MappingProxyType(dict(self._exits)),
                workers=tuple(workers), busy=self.busy, serialization=self.serialization,
            )  # fmt: skip
