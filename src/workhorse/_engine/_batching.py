"""Automatic batching: how many tasks to hand a worker at once.

Sending a task costs a round trip (pickling, a pipe write, a wake-up) of tens of
microseconds, which dominates tiny tasks; batching amortises it. But a batch is the unit of
load balancing: too large and one worker holds the last long tasks while the others idle.

The batcher keeps an exponentially weighted average of the time one item takes and sizes a
batch to last about ``TARGET`` seconds, never more than a fair share of what is pending
(so the tail spreads over every worker) and never more than ``MAX_ITEMS``. It starts with
one item, so a pool of long tasks never batches them, and grows geometrically while items
are fast, so it finds the right size without knowing the input's length.

An engine whose batches cost much more than a pipe write (a Dask task: milliseconds of
scheduler and worker time) sets a longer ``target`` and a ``floor``: no batch shorter than
``floor`` seconds of work, even in the tail, where the fair share would otherwise shrink it
to single items -- there, each extra batch costs more than the imbalance it saves.
"""

from __future__ import annotations

import math

__all__ = ["Batcher"]

TARGET = 0.01  # seconds of work per batch
MAX_ITEMS = 16384
GROWTH = 8  # at most this factor larger than the previous batch


class Batcher:
    """Chooses batch sizes from measured per-item durations.

    Example::

        batcher = Batcher()
        n = batcher.size(pending=1000, workers=2)   # 1 at first
        batcher.observe(items=n, seconds=0.0001)    # fast items: next batches grow
    """

    __slots__ = ("_item_seconds", "_last", "fixed", "floor", "target")

    def __init__(
        self, fixed: int | None = None, *, target: float = TARGET, floor: float = 0.0
    ) -> None:
        self.fixed = fixed
        self.target = target
        self.floor = floor
        self._item_seconds: float | None = None
        self._last = 1

    def size(self, pending: int, workers: int, *, settled: bool = True) -> int:
        """The size of the next batch, given the pending task count and the worker count.

        ``settled=False`` says the estimate was not measured on the items being sized (a new
        job after faster ones): the floor is left out, since a stale estimate of microseconds
        would turn 50 ms into the whole job; the fair share still bounds the batch."""
        if pending <= 0:
            return 0
        if self.fixed is not None:
            return min(self.fixed, pending)
        fair = max(1, pending // max(1, workers))
        if self._item_seconds is None:
            wanted = 1
        else:
            item = max(self._item_seconds, 1e-7)
            wanted = int(self.target / item)
            wanted = max(1, min(wanted, self._last * GROWTH, MAX_ITEMS))
            if self.floor and settled:
                fair = max(fair, math.ceil(self.floor / item))
        self._last = wanted
        return min(wanted, fair, pending)

    @property
    def recent(self) -> int:
        """The batch size it chose last (before the fair-share cap): large for fast items."""
        return self._last

    def observe(self, items: int, seconds: float) -> None:
        """Record that a batch of ``items`` took ``seconds`` from dispatch to result."""
        if items <= 0:
            return
        per_item = seconds / items
        if self._item_seconds is None:
            self._item_seconds = per_item
        else:
            self._item_seconds = 0.7 * self._item_seconds + 0.3 * per_item
