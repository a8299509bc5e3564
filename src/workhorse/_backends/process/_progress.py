"""Where each worker is, readable by the parent without a message: one shared-memory slot
per worker.

A worker writes ``(batch id, item index, start time)`` into its slot before each item. The
parent reads it when the worker dies (which item of the batch killed it, which completed
before) and to enforce per-task timeouts (how long the current item has run). Writing three
int64 fields costs far less than a message per item, which is what lets automatic batching
keep per-item crash isolation and per-item timeouts.

The board is a shared-memory segment unlinked the moment it is created: no name is left in
``/dev/shm``, even if the whole process family is killed at once (the resource tracker too).
Workers get a descriptor of it with their start-up arguments (multiprocessing's ``DupFd``, as
their pipe travels; a ``fork`` child inherits it), and the memory goes when the pool and its
last worker have closed theirs.

The writer is the only process writing a slot, and the reader only acts on it after the
writer has stopped (death) or tolerates a stale read (a timeout check one item behind is
re-checked on the next tick), so no lock is needed.
"""

from __future__ import annotations

import mmap
import os
import time
from multiprocessing import reduction
from typing import Any

from ..._sharing import create_shm, owner_prefix, unlink_shm

__all__ = ["IDLE", "BoardHandle", "ProgressBoard"]

FIELDS = 4  # batch id, item index, start time (ns, monotonic), items completed in total
IDLE = -1


class ProgressBoard:
    """A table of per-worker progress slots in one shared-memory segment.

    Example::

        board = ProgressBoard.create(4)
        board.start_item(slot=0, batch=7, index=2)      # in the worker
        batch, index, started = board.read(0)           # in the parent
    """

    __slots__ = ("_fd", "_mmap", "_view", "slots")

    def __init__(self, fd: int, slots: int, *, keep_fd: bool) -> None:
        try:
            self._mmap = mmap.mmap(fd, 8 * FIELDS * slots)
        finally:
            if not keep_fd:
                os.close(fd)
        self._fd = fd if keep_fd else -1
        self._view = memoryview(self._mmap).cast("q")
        self.slots = slots

    @classmethod
    def create(cls, slots: int) -> ProgressBoard:
        """A new board for ``slots`` workers, all idle."""
        name, fd = create_shm(owner_prefix("progress"))
        try:
            unlink_shm(name)  # from here on it lives as long as a descriptor or mapping does
            os.ftruncate(fd, 8 * FIELDS * slots)
            board = cls(fd, slots, keep_fd=True)
        except BaseException:
            os.close(fd)
            raise
        for slot in range(slots):
            board.clear(slot)
        return board

    @classmethod
    def attach(cls, handle: BoardHandle, slots: int) -> ProgressBoard:
        """Map the board created by the parent (in a worker; ``handle`` from
        :meth:`handle`, whose descriptor this closes)."""
        return cls(handle.fd, slots, keep_fd=False)

    def handle(self) -> BoardHandle:
        """What a worker gets among its start-up arguments to map the board."""
        return BoardHandle(self._fd)

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
        """Unmap the board and close its descriptor (the parent, at pool shutdown)."""
        self.detach()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def detach(self) -> None:
        """Unmap the board (a worker, at exit)."""
        self._view.release()
        self._mmap.close()


class BoardHandle:
    """A worker's way to the board: its descriptor, duplicated into the child when pickled
    (spawn, forkserver, the fork template) and inherited as is by a ``fork`` child."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (reduction.DupFd(self.fd),))


def _rebuild(fd: Any) -> BoardHandle:
    return BoardHandle(fd.detach())
