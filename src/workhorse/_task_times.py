"""Per-task timing (``insights=True``): when each task was queued, started and ended, and where.

Without it a pool times batches (``pool.stats()``, the trace's slices), which costs nothing per
item. With ``insights=True`` every backend also records when each item of a batch ended (the
next item starts then), so that a batch of a thousand tiny tasks can be seen task by task:
:class:`TaskTimes` keeps what ``pool.insights()`` reports -- how long tasks ran and waited
in the queue (from their submission to their start), the slowest tasks by call -- and, with
``trace=``, each task becomes a slice inside its batch's (up to :data:`TRACED_TASKS` of them).

Memory stays bounded whatever the number of tasks: totals, a reservoir of
:data:`SAMPLES` durations for the percentiles, and the :data:`SLOWEST` slowest tasks.

Example::

    with workhorse.Pool(2, insights=True) as pool:
        pool.map(work, items)
        print(pool.insights())   # ... tasks: 1000 timed, ran 2.1 ms median, 9.8 ms p95 ...
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["SAMPLES", "SLOWEST", "TRACED_TASKS", "TaskTimes"]

SAMPLES = 10_000  # durations kept for the percentiles (a uniform sample of all tasks)
SLOWEST = 5  # tasks listed by name in pool.insights()
TRACED_TASKS = 100_000  # task slices written to a trace at most (its batches are always there)

#: One part of a batch: a job, the index of its first item there, and how many items.
Part = tuple[Any, int, int]


class TaskTimes:
    """The per-task timings of one pool (thread-safe; see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.ran = 0.0
        self.waited = 0.0
        self.longest_wait = 0.0
        self.longest = 0.0
        self._samples: list[float] = []
        self._slowest: list[tuple[float, int, str, str]] = []  # a min-heap
        self._order = itertools.count()
        self._random = random.Random(0)
        self.traced = 0

    def record(
        self, worker: object, started: float, ends: Sequence[float], parts: Sequence[Part],
        timeline: Any = None,
    ) -> None:  # fmt: skip
        """A batch whose first item started at ``started`` ran its items in order, item ``i``
        ending at ``ends[i]`` (``time.monotonic()``), on ``worker``; ``parts`` say which job
        and item each position is."""
        name = str(worker)
        begin = started
        position = 0
        with self._lock:
            for job, first, count in parts:
                queued = getattr(job, "created", begin)
                for index in range(first, first + count):
                    if position >= len(ends):
                        return
                    end = ends[position]
                    position += 1
                    seconds = max(0.0, end - begin)
                    self._add(seconds, max(0.0, begin - queued), job, index, name)
                    if timeline is not None and self.traced < TRACED_TASKS:
                        self.traced += 1
                        timeline.task(name, begin, seconds, job, index)
                    begin = end

    def _add(self, seconds: float, waited: float, job: Any, index: int, worker: str) -> None:
        self.count += 1
        self.ran += seconds
        self.waited += waited
        self.longest_wait = max(self.longest_wait, waited)
        self.longest = max(self.longest, seconds)
        samples = self._samples
        if len(samples) < SAMPLES:
            samples.append(seconds)
        else:  # reservoir sampling: every task equally likely to be kept
            slot = self._random.randrange(self.count)
            if slot < SAMPLES:
                samples[slot] = seconds
        slowest = self._slowest
        if len(slowest) < SLOWEST or seconds > slowest[0][0]:
            entry = (seconds, next(self._order), job.describe(index), worker)
            if len(slowest) < SLOWEST:
                heapq.heappush(slowest, entry)
            else:
                heapq.heapreplace(slowest, entry)

    def summary(self) -> list[str]:
        """The lines ``pool.insights()`` adds: run and wait times, the slowest tasks."""
        with self._lock:
            if not self.count:
                return ["tasks: none timed yet (insights=True times each task)"]
            samples = sorted(self._samples)
            slowest = sorted(self._slowest, reverse=True)
            count, ran, waited, longest = self.count, self.ran, self.waited, self.longest_wait
            top = self.longest

        def quantile(q: float) -> float:
            return samples[min(len(samples) - 1, int(q * len(samples)))]

        lines = [
            f"tasks: {count} timed; ran {_ms(ran / count)} mean, {_ms(quantile(0.5))} median, "
            f"{_ms(quantile(0.95))} p95, {_ms(top)} max",
            f"  waited in the queue {_ms(waited / count)} mean, {_ms(longest)} max "
            "(from submission to start)",
            "slowest tasks:",
        ]
        lines += [f"  {seconds:9.3f} s  {what}  (worker {w})" for seconds, _, what, w in slowest]
        return lines


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 1 else f"{seconds:.3f} s"
