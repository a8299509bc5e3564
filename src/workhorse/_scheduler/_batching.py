"""Automatic batching: how many tasks to hand a worker at once.

Sending a task costs a round trip (pickling, a pipe write, a wake-up) of tens of
microseconds, which dominates tiny tasks; batching amortises it. But a batch is the unit of
load balancing: too large and one worker holds the last long tasks while the others idle.

The batcher keeps an exponentially weighted average of the time one item takes and sizes a
batch to last about ``TARGET`` seconds, never more than a share of what is pending -- a
``spread``-th of each worker's fair share, so that the tail spreads over every worker even
when its items are much longer than the ones measured so far (the long tasks that often end
an input) -- and never more than ``MAX_ITEMS``. It starts with
one item, so a pool of long tasks never batches them, and grows geometrically while items
are fast, so it finds the right size without knowing the input's length.

The estimate belongs to the function it was measured on. A pool that mapped a fast function
and then maps a slow one must not size the slow one's batches by the fast one's items (it put
8 tasks of 100 ms in the first batch of one worker, leaving the other idle): a function not
measured yet starts again from one item and grows as its own items are measured.

An engine whose batches cost much more than a pipe write (a Dask task: milliseconds of
scheduler and worker time) sets a longer ``target`` and a ``floor``: no batch shorter than
``floor`` seconds of work (and, with ``floor_items``, no more items than that for the floor's
sake), even in the tail, where the fair share would otherwise shrink it
to single items -- there, each extra batch costs more than the imbalance it saves. The
process engine's floor applies only to items shorter than ``floor_under`` (a pipe round trip):
it ends a map of no-ops in a few batches, and leaves items of a millisecond one per batch
at the tail (a floor of 2 ms put two of the last four 1 ms-estimated long items in one
batch: +30% over the ideal schedule).
"""

from __future__ import annotations

import math

__all__ = ["Batcher"]

TARGET = 0.01  # seconds of work per batch
MAX_ITEMS = 16384
GROWTH = 8  # at most this factor larger than the previous batch
# What is pending is cut into at least this many batches per worker: with 60 short items
# then 4 long ones on 2 workers, a share of pending // 2 put 3 of the long ones in one batch
# (+45% over the ideal schedule); a quarter of it sends the tail one item at a time.
SPREAD = 4
KEPT = 16  # functions whose estimates are kept (pools that interleave maps of several)


class Batcher:
    """Chooses batch sizes from measured per-item durations, one estimate per function.

    Example::

        batcher = Batcher()
        n = batcher.size(pending=1000, workers=2, fn=f)   # 1 at first
        batcher.observe(items=n, seconds=0.0001, fn=f)    # fast items: next batches grow
    """

    __slots__ = (
        "_estimates", "_last", "fixed", "floor", "floor_items", "floor_under", "spread",
        "target",
    )  # fmt: skip

    def __init__(
        self, fixed: int | None = None, *, target: float = TARGET, floor: float = 0.0,
        floor_items: int | None = None, floor_under: float | None = None, spread: int = SPREAD,
    ) -> None:  # fmt: skip
        self.fixed = fixed
        self.target = target
        self.floor, self.floor_items = floor, floor_items
        # The floor lifts only batches of items shorter than this (None: any): where a
        # batch's round trip costs more than its items, not where two items at the tail of
        # a map may be two of its long ones.
        self.floor_under = floor_under
        self.spread = spread
        # id() of a function -> [seconds per item, last batch size wanted]; the oldest go
        # past KEPT (an id reused by another function costs at worst one misjudged batch).
        self._estimates: dict[int, list[float]] = {}
        self._last = 1

    def size(self, pending: int, workers: int, fn: object = None) -> int:
        """The size of the next batch of calls of ``fn``, given the pending task count and
        the worker count."""
        if pending <= 0:
            return 0
        if self.fixed is not None:
            return min(self.fixed, pending)
        fair = max(1, pending // (max(1, workers) * self.spread))
        estimate = self._estimates.get(id(fn))
        if estimate is None:
            wanted = 1  # not measured yet: one item, growing as its items are measured
        else:
            item = max(estimate[0], 1e-7)
            wanted = int(self.target / item)
            wanted = max(1, min(wanted, int(estimate[1]) * GROWTH, MAX_ITEMS))
            estimate[1] = wanted
            if self.floor and (self.floor_under is None or item < self.floor_under):
                lift = math.ceil(self.floor / item)
                if self.floor_items is not None:
                    lift = min(lift, self.floor_items)
                fair = max(fair, lift)
        self._last = wanted
        return min(wanted, fair, pending)

    @property
    def recent(self) -> int:
        """The batch size it chose last (before the fair-share cap): large for fast items."""
        return self._last

    def observe(self, items: int, seconds: float, fn: object = None) -> None:
        """Record that a batch of ``items`` calls of ``fn`` ran for ``seconds``."""
        if items <= 0:
            return
        per_item = seconds / items
        estimate = self._estimates.get(id(fn))
        if estimate is None:
            if len(self._estimates) >= KEPT:
                del self._estimates[next(iter(self._estimates))]
            self._estimates[id(fn)] = [per_item, 1]
        elif per_item < estimate[0]:
            # Faster than thought: believe it at once. A batch's time includes its round trip,
            # so small batches overstate an item's time and the first ones (a worker starting)
            # far more; averaging them in made the ramp from 1 to 10,000 items take 25
            # batches instead of 5. Growth stays capped at GROWTH per batch.
            estimate[0] = per_item
        else:  # slower: averaged, so that one slow batch does not shrink every batch after
            estimate[0] = 0.7 * estimate[0] + 0.3 * per_item
