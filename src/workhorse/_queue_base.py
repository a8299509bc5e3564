"""The machinery under the process-flavour queues: ``_QueueBase`` (see :mod:`._queue`).

A queue is made of its two hot halves (:mod:`._queue_io`: putting, getting) and what is
neither: creation, pickling, the size, ``close`` and ``shutdown``.
"""

from __future__ import annotations

from collections.abc import Iterator
from multiprocessing import util
from typing import Any, Self

from ._primitive import until_shutdown
from ._queue_feeder import Feeder, drop_spill, retire, unlink_prefixed
from ._queue_io import _Closed, _Getting, _Putting
from ._ring import DONE, GETS, HEADER_BYTES, IMMEDIATE, PUTS, SHUTDOWN, STATE, Ring
from ._semlock import SEM_VALUE_MAX, NamedSemaphore
from ._sharing import Shared, new_uid, owner_prefix
from ._shm import Segment

__all__ = ["DEFAULT_RING_SIZE", "_QueueBase"]

#: Default ring capacity in bytes; items whose pickle exceeds a quarter of it go out of band.
#: Large, so that megabyte items stay in the ring (an out-of-band segment costs fresh pages
#: per item); cheap, because the ring restarts at its front whenever it empties, so only as
#: many pages get touched as the queue's largest backlog needs.
DEFAULT_RING_SIZE = 1 << 23
_MIN_RING_SIZE = 1024


class _NotClosed(ValueError, AssertionError):
    """``join_thread()`` before ``close()``: multiprocessing asserts; this is both."""


class _QueueBase(_Putting, _Getting, Shared):
    """Machinery shared by the three queue classes (see the module docstring)."""

    def __init__(self, maxsize: int = 0, *, ring_size: int = DEFAULT_RING_SIZE) -> None:
        capacity = 1 << (max(_MIN_RING_SIZE, int(ring_size)) - 1).bit_length()
        uid = new_uid()
        segment = Segment.create(HEADER_BYTES + capacity)
        sems = tuple(NamedSemaphore(0, SEM_VALUE_MAX) for _ in "gpj")
        self._setup(Ring(segment, sems, "/" + owner_prefix(f"q{uid}"), create=True), maxsize)
        self._register(uid)
        # Unread out-of-band items and spill segments die with the queue (its creator).
        util.Finalize(self, unlink_prefixed, (self._ring.prefix, self._ring), exitpriority=-10)

    def _setup(self, ring: Ring, maxsize: int) -> None:
        self._ring, self._maxsize = ring, max(0, maxsize)
        self._threshold = ring.capacity // 4
        self._closed, self._feeder = False, Feeder(self._ring)
        # As multiprocessing's: a queue this process put to has its read end closed by
        # close() (empty() raises); an unused one does not. A SimpleQueue's always is.
        self._used = self._reader_closed = False

    def _shared_state(self) -> Any:
        return (self._ring.segment.name, self._ring.sems, self._maxsize, self._ring.prefix)

    @classmethod
    def _from_shared_state(cls, uid: str, state: Any) -> Self:
        name, sems, maxsize, prefix = state
        self = cls.__new__(cls)
        self._uid = uid
        self._setup(Ring(Segment.attach(name), sems, prefix), maxsize)
        return self

    def _after_fork_in_child(self) -> None:
        self._closed, self._feeder = False, Feeder(self._ring)
        self._used = self._reader_closed = False

    # -- what is neither put nor get ---------------------------------------------------------

    def _size(self) -> int:
        """Items in the queue, read under the mutex: never a dead holder's half update."""
        ring = self._ring
        ring.lock(None)
        size = int(ring.hq[PUTS] - ring.hq[GETS])
        ring.unlock()
        return size

    def empty(self) -> bool:
        """True if no item is in the queue (a snapshot, exact whatever died meanwhile).

        Raises:
            OSError: this process closed the queue after putting to it (as multiprocessing's
                ``Queue``), or closed a ``SimpleQueue``.
        """
        if self._reader_closed:
            raise _Closed(f"Queue {self!r}: handle is closed")
        return self._size() == 0

    def close(self) -> None:
        """Indicate that this process will put no more; its feeder thread ends.

        Afterwards ``put`` and ``get`` in this process raise ``ValueError`` (also an
        ``OSError``, what a closed ``multiprocessing.SimpleQueue`` raises). Other processes
        are not affected (use :meth:`shutdown` for that). Calling it twice is fine. Items
        already put stay in the queue (in its ring or spill segments), whatever happens to
        this process.
        """
        self._closed = True
        self._reader_closed = self._used
        self._feeder.closed = True

    def join_thread(self) -> None:
        """Wait until this process's feeder thread has ended (after :meth:`close`).

        Raises ``AssertionError`` (also a ``ValueError``) when the queue was not closed
        first, as the stdlib's does. Differences from the stdlib: returns within a fraction
        of a second, since what was put is already in shared memory (nothing is flushed
        from this process).
        """
        if not self._closed:
            raise _NotClosed(f"Queue {self!r} not closed: join_thread() requires close() first")
        thread = self._feeder.thread
        if thread is not None:
            thread.join()

    def cancel_join_thread(self) -> None:
        """Kept for the stdlib's API: nothing put can be lost at exit here, so it does nothing.

        Differences from the stdlib: in ``multiprocessing``, items still in the feeder are
        lost; here they are in shared memory already.
        """

    def shutdown(self, immediate: bool = False) -> None:
        """Shut the queue down for every process, with :meth:`queue.Queue.shutdown` semantics.

        After it, ``put`` in any process raises :class:`QueueShutDown`, and ``get`` delivers
        what was put before, then raises it (so ``for item in q`` ends). With
        ``immediate=True`` the remaining items are dropped (and counted as done, so
        ``join()`` returns) and ``get`` raises at once. Every blocked caller in every process
        is woken.

        Example::

            q.shutdown()  # consumers drain the queue, then their loops end
        """
        ring = self._ring
        hq = ring.hq
        oob: list[bytes] = []
        seqs: list[int] = []
        ring.lock(None)
        try:
            if immediate:
                hq[STATE] = IMMEDIATE
                oob, seqs = drop_spill(ring)
                oob += ring.drop_ring()
                dropped = hq[PUTS] - hq[GETS]
                hq[GETS] = hq[PUTS]
                hq[DONE] = min(hq[PUTS], hq[DONE] + dropped)
            elif not hq[STATE]:
                hq[STATE] = SHUTDOWN
            ring.wake_all()
        finally:
            ring.unlock()
        retire(ring, seqs, oob)  # after the unlock: see _ring

    @property
    def is_shutdown(self) -> bool:
        """True once :meth:`shutdown` was called in any process."""
        return bool(self._ring.hq[STATE])

    def __iter__(self) -> Iterator[Any]:
        """Yield items until the queue is shut down and drained."""
        return until_shutdown(self.get)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} maxsize={self._maxsize} at {self._ring.segment.name}>"
