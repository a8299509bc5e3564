"""Units and the pending queue: how every backend holds the work that waits for a worker.

A job's items are never queued one object each: a :class:`Unit` is a range ``start:stop`` of
one job, and :class:`Pending` is a deque of units with a running count of their items. A
worker takes a slice off the head (:meth:`Pending.take`), or, for the process backend, a
batch of consecutive units of one function (:meth:`Pending.take_batch`); items that must run
again -- a retry, the rest of a batch whose worker died -- go back to the *front*, so they
do not wait behind everything queued since. A unit marked ``isolate`` is always sent alone:
that is how a backend finds which item of a batch kills its worker.

``Pending`` is not thread-safe: each backend guards it its own way (the process backend's
manager thread alone touches it; the thread and Dask backends hold their lock).

Example::

    pending = Pending()
    pending.add(job)                 # a job of 10 calls: one unit, 10 items
    first = pending.take(4)          # items 0:4
    pending.retry(job, 2, attempt=1, isolate=False)
    assert pending.items == 7
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from .._cancel import CancelScope
from ._job import Job

__all__ = ["Pending", "Unit"]


class Unit(CancelScope):
    """Items ``start:stop`` of ``job``, each tried ``attempt`` times before.

    Where a unit runs in the caller's process (the thread backend) it is also the running
    thread's cancel scope: one object per ``submit``, not a unit and a scope too. ``isolate``:
    send it alone (finding the item that kills workers); ``lost``: how often it came back
    from a worker without starting; ``batch``: the calls of a running multi-item slice (the
    thread backend empties it to stop the slice between two items)."""

    __slots__ = ("attempt", "batch", "isolate", "job", "lost", "start", "stop")

    def __init__(
        self, job: Job, start: int, stop: int, attempt: int = 0, *, isolate: bool = False,
        lost: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.job, self.start, self.stop, self.attempt = job, start, stop, attempt
        self.isolate, self.lost = isolate, lost
        self.batch: list[object] | None = None

    def __len__(self) -> int:
        return self.stop - self.start

    def singles(self) -> list[Unit]:
        """Each item as a unit of its own, isolated (to find the one that fails)."""
        return [
            Unit(self.job, i, i + 1, self.attempt, isolate=True)
            for i in range(self.start, self.stop)
        ]


class Pending:
    """The units waiting for a worker, in order, and how many items they hold."""

    __slots__ = ("items", "units")

    def __init__(self) -> None:
        self.units: deque[Unit] = deque()
        self.items = 0

    def __bool__(self) -> bool:
        return bool(self.units)

    def __len__(self) -> int:
        return len(self.units)

    def add(self, job: Job) -> None:
        """Queue every item of ``job`` at the back."""
        count = len(job.calls)
        if count:
            self.units.append(Unit(job, 0, count))
            self.items += count

    def push_front(self, units: Iterable[Unit], *, isolate: bool = False) -> None:
        """Put ``units`` back at the front, in their order (``isolate``: each goes alone)."""
        units = list(units)
        for unit in units:
            unit.isolate = unit.isolate or isolate
            self.items += len(unit)
        self.units.extendleft(reversed(units))

    def retry(self, job: Job, index: int, attempt: int, *, isolate: bool = False) -> None:
        """Queue item ``index`` of ``job`` alone, at the front, as try ``attempt``."""
        self.units.appendleft(Unit(job, index, index + 1, attempt, isolate=isolate))
        self.items += 1

    def head(self, *, start: bool) -> Unit | None:
        """The first unit whose job is still wanted; the cancelled ones before it are
        discarded (their sinks know). ``start``: tell the sink its items are being sent
        (a future becomes RUNNING), else only ask whether it is wanted."""
        units = self.units
        while units:
            unit = units[0]
            sink = unit.job.sink
            if sink.start() if start else sink.wanted():
                return unit
            units.popleft()
            self.items -= len(unit)
            sink.discarded(len(unit))
        return None

    def take(self, size: int) -> Unit:
        """The first ``size`` items of the head unit (all of it if it holds no more)."""
        unit = self.units[0]
        if size >= len(unit):
            self.units.popleft()
            taken = unit
        else:
            taken = Unit(unit.job, unit.start, unit.start + size, unit.attempt)
            unit.start += size
        self.items -= len(taken)
        return taken

    def take_batch(self, size: int) -> list[Unit]:
        """Up to ``size`` items from consecutive units of the head's function and kind
        (one process batch); an isolated unit goes alone."""
        head = self.head(start=False)
        if head is None:
            return []
        if head.isolate:
            size = 1
        fn, kind = head.job.fn, head.job.kind
        parts: list[Unit] = []
        taken = 0
        while taken < size:
            unit = self.head(start=False)
            if unit is None or unit.job.fn is not fn or unit.job.kind != kind:
                break
            if parts and unit.isolate:
                break
            part = self.take(size - taken)
            parts.append(part)
            taken += len(part)
        return parts

    def extract(self, doomed: Callable[[Unit], bool]) -> list[Unit]:
        """Take every unit ``doomed`` says out of the queue; returns them (the caller
        settles them)."""
        taken = [unit for unit in self.units if doomed(unit)]
        if taken:
            self.units = deque(unit for unit in self.units if not doomed(unit))
            self.items = sum(map(len, self.units))
        return taken

    def clear(self) -> list[Unit]:
        """Empty the queue; returns what it held (the caller settles it)."""
        units = list(self.units)
        self.units.clear()
        self.items = 0
        return units

    def drop_all(self) -> None:
        """Empty the queue, telling each sink its items will never run."""
        for unit in self.clear():
            unit.job.sink.drop(unit.start, unit.stop)

    def keep_first(self, keep: int) -> None:
        """Keep the first ``keep`` items; the rest will never run (their sinks are told)."""
        kept: list[Unit] = []
        for unit in self.units:
            count = min(keep, len(unit))
            keep -= count
            if count < len(unit):
                unit.job.sink.drop(unit.start + count, unit.stop)
                unit.stop = unit.start + count
            if count:
                kept.append(unit)
        self.units = deque(kept)
        self.items = sum(map(len, kept))
