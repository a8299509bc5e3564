"""Where each worker is, readable by the parent without a message: one shared-memory slot
per worker.

A worker writes ``(batch id, item index, start time)`` into its slot before each item. The
parent reads it when the worker dies (which item of the batch killed it, which completed
before) and to enforce per-task timeouts (how long the current item has run). Writing three
int64 fields costs far less than a message per item, which is what lets automatic batching
keep per-item crash isolation and per-item timeouts.

The writer is the only process writing a slot, and the reader only acts on it after the
writer has stopped (death) or tolerates a stale read (a timeout check one item behind is
re-checked on the next tick), so no lock is needed.
"""

from __future__ import annotations

import time

from ..._shm import Segment

__all__ = ["IDLE", "ProgressBoard"]

FIELDS = 4  # batch id, item index, start time (ns, monotonic), items completed in total
IDLE = -1


class ProgressBoard:
    """A table of per-worker progress slots in one shared-memory segment.

    Example::

        board = ProgressBoard.create(4)
        board.start_item(slot=0, batch=7, index=2)      # in the worker
        batch, index, started = board.read(0)           # in the parent
    """

    __slots__ = ("_segment", "_view", "slots")

    def __init__(self, segment: Segment, slots: int) -> None:
        self._segment = segment
        self._view = segment.buf.cast("q")
        self.slots = slots

    @classmethod
    def create(cls, slots: int) -> ProgressBoard:
        """A new board for ``slots`` workers, all idle."""
        board = cls(Segment.create(8 * FIELDS * slots, prefix="wh-progress"), slots)
        for slot in range(slots):
            board.clear(slot)
        return board

    @classmethod
    def attach(cls, name: str, slots: int) -> ProgressBoard:
        """Map the board created by the parent (in a worker)."""
        return cls(Segment.attach(name), slots)

    @property
    def name(self) -> str:
        """The shared-memory name to hand to workers."""
        return self._segment.name

    def begin_batch(self, slot: int, batch: int) -> memoryview:
        """Record that the worker in ``slot`` starts ``batch`` at item 0; returns the view
        in which the worker then writes each item's index at ``index_at(slot)`` (and, for
        batches with timeouts, each item's start time at ``index_at(slot) + 1``)."""
        base = slot * FIELDS
        view = self._view
        view[base + 2] = time.monotonic_ns()
        view[base + 1] = 0  # before the batch id: a reader never pairs it with a stale index
        view[base] = batch
        return view

    @staticmethod
    def index_at(slot: int) -> int:
        """Where a worker's current item index lives in the view of :meth:`begin_batch`."""
        return slot * FIELDS + 1

    def start_item(self, slot: int, batch: int, index: int) -> None:
        """Record that the worker in ``slot`` starts item ``index`` of ``batch``."""
        base = slot * FIELDS
        view = self._view
        view[base + 2] = time.monotonic_ns()
        view[base + 1] = index
        view[base] = batch

    def finish_batch(self, slot: int, items: int) -> None:
        """Record that the worker in ``slot`` finished its batch of ``items`` items."""
        base = slot * FIELDS
        self._view[base] = IDLE
        self._view[base + 3] += items

    def clear(self, slot: int) -> None:
        """Mark ``slot`` idle (a new worker takes it)."""
        base = slot * FIELDS
        self._view[base : base + FIELDS] = memoryview(bytes(8 * FIELDS)).cast("q")
        self._view[base] = IDLE

    def read(self, slot: int) -> tuple[int, int, int]:
        """``(batch id, item index, start time in monotonic ns)``; batch is IDLE if none."""
        base = slot * FIELDS
        view = self._view
        return view[base], view[base + 1], view[base + 2]

    def close(self) -> None:
        """Remove and unmap the board (the parent, at pool shutdown)."""
        self._segment.unlink()
        self.detach()

    def detach(self) -> None:
        """Unmap the board (a worker, at exit)."""
        self._view.release()
        self._segment.close()
