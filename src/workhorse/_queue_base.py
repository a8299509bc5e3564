"""The machinery under the process-flavour queues: ``_QueueBase`` (see :mod:`._queue`).

Hot paths (``put``, ``get``) inline the ring's frame copy for the common case of one small
in-ring frame, so that an uncontended call is one lock round and a few header updates.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from multiprocessing import util
from pickle import dumps as _pickle_dumps
from pickle import loads as _pickle_loads
from queue import Empty, Full
from sys import getsizeof as _getsizeof
from typing import Any, Self

from ._errors import QueueShutDown
from ._queue_codec import (
    BIG,
    borrow,
    decode,
    discard_frames,
    done_with,
    encode,
    encode_many,
    give_back,
    load,
    pickle_one,
    pickle_to_scratch,
)
from ._queue_feeder import (
    Feeder,
    drop_spill,
    refill,
    retire,
    spill,
    start_feeder,
    unlink_prefixed,
)
from ._ring import (
    BATCH,
    DONE,
    GETS,
    GETTERS,
    HEAD,
    HEADER_BYTES,
    IMMEDIATE,
    PUTS,
    PUTTERS,
    SHUTDOWN,
    SLEEPERS,
    SPILLED,
    STATE,
    TAIL,
    VALID,
    Frame,
    Ring,
    frame_bytes,
)
from ._semlock import EOWNERDEAD, SEM_VALUE_MAX, NamedSemaphore
from ._serialize import PROTOCOL
from ._sharing import Shared, new_uid, owner_prefix
from ._shm import Segment
from ._timeouts import TIMEOUT_MAX, queue_timeout

__all__ = ["DEFAULT_RING_SIZE", "_QueueBase"]

#: Default ring capacity in bytes; items whose pickle exceeds a quarter of it go out of band.
#: Large, so that megabyte items stay in the ring (an out-of-band segment costs fresh pages
#: per item); cheap, because the ring restarts at its front whenever it empties, so only as
#: many pages get touched as the queue's largest backlog needs.
DEFAULT_RING_SIZE = 1 << 23
_MIN_RING_SIZE = 1024
_ALL = 1 << 30
_NUMBERS = (int, float)


class _Closed(ValueError, OSError):
    """Use of a queue after this process closed it: multiprocessing's ``Queue`` raises
    ``ValueError``, its ``SimpleQueue`` (a closed pipe) ``OSError``; this is both."""


class _NotClosed(ValueError, AssertionError):
    """``join_thread()`` before ``close()``: multiprocessing asserts; this is both."""


class _QueueBase(Shared):
    """Machinery shared by the three queue classes (see the module docstring)."""

    _ring: Ring
    _maxsize: int
    _threshold: int
    _closed: bool
    _feeder: Feeder

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

    # -- putting ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise _Closed(f"Queue {self!r} is closed")

    def _put(self, frames: list[Frame], timeout: float | None) -> None:
        try:
            if self._maxsize:
                self._put_bounded(frames, timeout)
            else:
                self._put_unbounded(frames)
        except BaseException:
            discard_frames(frames)  # emptied once accepted
            raise

    def _put_unbounded(self, frames: list[Frame]) -> None:
        ring = self._ring
        hq = ring.hq
        total = sum(items for _, _, items in frames)
        ring.lock(None)
        if hq[STATE]:
            ring.unlock()
            raise QueueShutDown("put() on a shut-down queue")
        written = moved = 0
        if not hq[SPILLED]:  # anything spilled goes first: then so does the rest
            room, write = ring.room(), ring.write
            for data, length, items in frames:
                size = frame_bytes(length)
                if size > room:
                    break
                write(data, length)
                room -= size
                written += 1
                moved += items
        rest = written < len(frames)
        try:
            if rest:
                spill(ring, frames[written:])
        except BaseException:
            ring.rollback()  # undo this put's half (the journal is valid), then unlock
            raise
        hq[PUTS] += total
        if moved and hq[GETTERS] > hq[GETTERS + 1]:
            ring.wake(GETTERS, ring.getters, moved)
        ring.unlock()
        frames.clear()  # accepted: the queue owns any out-of-band segments now
        if rest:
            start_feeder(self._feeder)

    def _put_bounded(self, frames: list[Frame], timeout: float | None) -> None:
        ring = self._ring
        hq = ring.hq
        n = sum(items for _, _, items in frames)
        need = sum(frame_bytes(length) for _, length, _ in frames)
        deadline = None if timeout is None else time.monotonic() + timeout
        if not ring.lock(timeout):
            raise Full
        held = True
        try:
            while True:
                if hq[STATE]:
                    raise QueueShutDown("put() on a shut-down queue")
                if ring.count() + n <= self._maxsize and ring.room() >= need:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise Full
                held = False
                ring.park(PUTTERS, ring.putters, remaining)
                held = True
            for data, length, _ in frames:
                ring.write(data, length)
            hq[PUTS] += n
            if hq[GETTERS] > hq[GETTERS + 1]:
                ring.wake(GETTERS, ring.getters, n)
            frames.clear()
        finally:
            if held:
                ring.unlock()

    # -- getting ---------------------------------------------------------------------------

    def _wait_for_items(self, timeout: float | None) -> list[int]:
        """Take the mutex and wait until an item is in the ring; return with it held.

        Returns the spill segments emptied meanwhile, to :func:`retire` after the unlock.
        """
        ring = self._ring
        hq = ring.hq
        deadline = None if timeout is None else time.monotonic() + timeout
        if not ring.lock(timeout):
            raise Empty
        spin, held = True, True
        emptied: list[int] = []
        try:
            while not hq[TAIL]:  # the ring is empty
                if hq[SPILLED] and hq[STATE] != IMMEDIATE:
                    emptied += refill(ring)  # the ring is empty: everything fits
                    continue
                state = hq[STATE]
                if state:
                    raise QueueShutDown("get() on a shut-down and drained queue")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise Empty
                held = False  # both re-take the mutex, or raise without it
                if spin:
                    spin = False
                    ring.unlock()
                    ring.spin_until_items()
                    ring.lock(None)
                else:
                    ring.park(GETTERS, ring.getters, remaining)
                held = True
        except BaseException:
            if held:
                ring.unlock()
            retire(ring, emptied)
            raise
        return emptied

    def _wake_after_get(self) -> None:
        ring = self._ring
        hq = ring.hq
        if hq[PUTTERS] > hq[PUTTERS + 1]:
            ring.wake(PUTTERS, ring.putters, _ALL)  # sizes differ: let each re-check
        left = ring.count()
        if left and hq[GETTERS] > hq[GETTERS + 1]:
            ring.wake(GETTERS, ring.getters, left)

    def _get_one(self, journaled: bool) -> Any:
        """Take the oldest item (mutex held, ring not empty), release, unpickle it.

        ``journaled``: the caller took the mutex with :meth:`Ring.lock`, which opened the
        journal; the bare hot path did not (see :mod:`._ring`).
        """
        ring = self._ring
        hq = ring.hq
        big = None
        wake = hq[SLEEPERS] and (hq[PUTTERS] > hq[PUTTERS + 1] or hq[GETTERS] > hq[GETTERS + 1])
        if wake and not journaled:
            ring.journal()  # waking is no hot path: make the whole round undoable
            journaled = True
        try:
            head = hq[HEAD]
            pos = head & ring.mask
            length = ring.rq[pos >> 3]
            end = pos + 8 + length
            if 0 <= length < BATCH and end <= ring.capacity:  # Ring.read() inlined
                if length < BIG:
                    data = ring.buf[pos + 8 : end].tobytes()
                else:  # no fresh megabytes per item: see _queue_codec
                    big = borrow(length)
                    with memoryview(big) as target:  # (a bytearray would copy first)
                        target[:length] = ring.buf[pos + 8 : end]
                head += 8 + ((length + 7) & -8)
                if head == hq[TAIL]:
                    hq[TAIL] = 0  # empty: restart at the front (tail first: see _ring)
                    hq[HEAD] = 0
                else:
                    hq[HEAD] = head
            else:
                data, length = ring.read()
            hq[GETS] += 1
            if wake:
                self._wake_after_get()
        finally:
            if journaled:
                hq[VALID] = 0
            ring.unlock_raw(ring.mref)
        if big is not None:
            try:
                with memoryview(big)[:length] as view:
                    return _pickle_loads(view)
            finally:
                give_back(big)
        return _pickle_loads(data) if length >= 0 else load(data, length)

    # -- public API shared by all three classes --------------------------------------------

    def put(self, obj: object, block: bool = True, timeout: float | None = None) -> None:
        """Put ``obj`` into the queue.

        The object is pickled here, in the caller. On an unbounded queue ``put`` never
        blocks (``block`` and ``timeout`` are ignored); on a bounded one it waits for room as
        :meth:`queue.Queue.put` does.

        Raises:
            queue.Full: a bounded queue stayed full (at once when ``block`` is false).
            QueueShutDown: the queue was shut down (by any process).
            SerializationError: ``obj`` cannot be pickled; nothing was put.
            ValueError: this process closed the queue, or ``timeout`` is negative.

        Example::

            q.put({"job": 1})
        """
        if self._closed:
            raise _Closed(f"Queue {self!r} is closed")
        self._used = True
        ring = self._ring
        if self._maxsize:
            timeout = queue_timeout(block, timeout)
            self._put([encode(pickle_one(obj), self._threshold, ring.prefix)], timeout)
            return
        if _getsizeof(obj) < BIG:
            try:
                data = _pickle_dumps(obj, PROTOCOL)
            except Exception:
                data = pickle_one(obj)  # cloudpickle, or SerializationError
        else:
            view = pickle_to_scratch(obj)
            if view is None:
                data = pickle_one(obj)
            else:
                try:
                    if len(view) + 8 <= self._threshold and self._put_fast(view):
                        return
                    data = view.tobytes()
                finally:
                    done_with(view)
        if len(data) + 8 > self._threshold or not self._put_fast(data):
            self._put([encode(data, self._threshold, ring.prefix)], None)

    def _put_fast(self, data: bytes | memoryview) -> bool:
        """Write one in-ring frame in one lock round; False if the general path must."""
        ring = self._ring
        hq = ring.hq
        if ring.trylock(ring.mref):  # contended, or its owner died: the general lock
            self._lock_contended()
        n = len(data)
        size = 8 + ((n + 7) & -8)
        tail = hq[TAIL]
        if hq[STATE] or hq[SPILLED] or ring.capacity - (tail - hq[HEAD]) < size:
            ring.unlock()  # shut down, spilled items must go first, or no room
            return False
        wake = hq[SLEEPERS] and hq[GETTERS] > hq[GETTERS + 1]
        if wake:
            ring.journal()  # see _ring: only a bare put is undone by counting
        pos = tail & ring.mask
        end = pos + 8 + n
        if end <= ring.capacity:  # Ring.write() inlined: no wrap
            ring.rq[pos >> 3] = n
            ring.buf[pos + 8 : end] = data
            hq[TAIL] = tail + size  # publishes the item
        else:
            ring.write(data, n)
        hq[PUTS] += 1
        if wake:
            ring.wake(GETTERS, ring.getters, 1)
            hq[VALID] = 0
        ring.unlock_raw(ring.mref)
        return True

    def _lock_contended(self) -> None:
        """Take the mutex after a failed ``trylock`` (the journal stays closed)."""
        ring = self._ring
        ring.lock(None)
        ring.hq[VALID] = 0  # lock() opened it; the hot paths decide for themselves

    def put_many(
        self, items: Iterable[object], block: bool = True, timeout: float | None = None
    ) -> None:
        """Put every item of ``items``, in order, in one lock round: all of them or none.

        The items are pickled here, one by one, and written to the ring as one batch: a
        consumer's ``get`` or ``get_many`` still takes any number of them. On a bounded
        queue it waits (per ``block``/``timeout``) until there is room for the whole batch.

        Raises:
            ValueError: more items than a bounded queue's ``maxsize``; or as :meth:`put`.
            queue.Full, QueueShutDown, SerializationError: as :meth:`put` (nothing was put).

        Example::

            q.put_many(range(1000))
        """
        self._check_open()
        self._used = True
        objs = list(items)
        maxsize, ring = self._maxsize, self._ring
        if maxsize and len(objs) > maxsize:
            raise ValueError(f"put_many() of {len(objs)} items into a queue of maxsize {maxsize}")
        timeout = queue_timeout(block, timeout) if maxsize else None
        capacity = ring.capacity if maxsize else None
        frames = encode_many(objs, self._threshold, ring.prefix, capacity)
        if frames:
            self._put(frames, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item, waiting as :meth:`queue.Queue.get` does.

        Raises:
            queue.Empty: nothing arrived in time (at once when ``block`` is false).
            QueueShutDown: the queue was shut down and is drained (or shut down immediately).
            ValueError: this process closed the queue, or ``timeout`` is negative.
            BrokenResourceError: a process died holding the queue's internal lock.

        Example::

            item = q.get(timeout=5)
        """
        if self._closed:
            raise _Closed(f"Queue {self!r} is closed")
        if timeout is not None and not (type(timeout) in _NUMBERS and 0 <= timeout <= TIMEOUT_MAX):
            timeout = queue_timeout(block, timeout)  # raises the stdlib's errors
        # Fast path: an item is there and the mutex is free.
        ring = self._ring
        rc = ring.trylock(ring.mref)
        if not rc:
            hq = ring.hq
            tail = hq[TAIL]
            if tail and not hq[SLEEPERS]:  # an item, nobody to wake: _get_one() inlined
                head = hq[HEAD]
                pos = head & ring.mask
                length = ring.rq[pos >> 3]
                end = pos + 8 + length
                if 0 <= length < BIG and end <= ring.capacity:
                    data = ring.buf[pos + 8 : end].tobytes()
                    head += 8 + ((length + 7) & -8)
                    if head == tail:
                        hq[TAIL] = 0  # empty: restart at the front (tail first: see _ring)
                        hq[HEAD] = 0
                    else:
                        hq[HEAD] = head  # publishes the get
                    hq[GETS] += 1
                    ring.unlock_raw(ring.mref)
                    return _pickle_loads(data)
            if tail:  # the ring is not empty (see _ring: tail is 0 when it is)
                return self._get_one(False)
            ring.unlock_raw(ring.mref)
        elif rc == EOWNERDEAD:
            ring.recover()  # we hold it now, repaired
            ring.unlock_raw(ring.mref)
        emptied = self._wait_for_items(queue_timeout(block, timeout))
        item = self._get_one(True)
        if emptied:
            retire(ring, emptied)
        return item

    def get_many(
        self, max_items: int, block: bool = True, timeout: float | None = None
    ) -> list[Any]:
        """Wait for at least one item, then return up to ``max_items`` available at once.

        One lock round for the whole batch. Waits per ``block``/``timeout`` like :meth:`get`.

        Raises:
            ValueError: ``max_items < 1``; or as :meth:`get`.
            queue.Empty, QueueShutDown: as :meth:`get`.

        Example::

            while batch := q.get_many(100, timeout=1):
                handle(batch)
        """
        self._check_open()
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        emptied = self._wait_for_items(queue_timeout(block, timeout))
        ring = self._ring
        try:
            chunks, _ = ring.take(max_items)
            self._wake_after_get()
        finally:
            ring.unlock()
        if emptied:
            retire(ring, emptied)
        return decode(chunks)

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
        while True:
            try:
                yield self.get()
            except QueueShutDown:
                return

    def __repr__(self) -> str:
        return f"<{type(self).__name__} maxsize={self._maxsize} at {self._ring.segment.name}>"
