"""The two halves of a process queue's hot paths: putting into the ring, getting out of it.

:class:`~workhorse._queue_base._QueueBase` is made of both (see :mod:`._queue` for the design).
``put`` and ``get`` inline the ring's frame copy for the common case of one small in-ring
frame, so that an uncontended call is one lock round and a few header updates; every wait
(for room, for an item, for ``join``) is :func:`lock_until`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pickle import dumps as _pickle_dumps
from pickle import loads as _pickle_loads
from queue import Empty, Full
from sys import getsizeof as _getsizeof
from typing import Any

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
from ._queue_feeder import Feeder, refill, retire, spill, start_feeder
from ._ring import (
    BATCH,
    GETS,
    GETTERS,
    HEAD,
    IMMEDIATE,
    PUTS,
    PUTTERS,
    SLEEPERS,
    SPILLED,
    STATE,
    TAIL,
    VALID,
    Frame,
    Ring,
    frame_bytes,
)
from ._semlock import EOWNERDEAD, NamedSemaphore
from ._serialize import PROTOCOL
from ._timeouts import TIMEOUT_MAX, Deadline, queue_timeout

__all__ = ["lock_until"]

_ALL = 1 << 30
_NUMBERS = (int, float)


class _Closed(ValueError, OSError):
    """Use of a queue after this process closed it: multiprocessing's ``Queue`` raises
    ``ValueError``, its ``SimpleQueue`` (a closed pipe) ``OSError``; this is both."""


def lock_until(
    ring: Ring,
    ready: Callable[[], bool],
    channel: int,
    sem: NamedSemaphore,
    timeout: float | None,
    *,
    spin: bool = False,
) -> bool:
    """Take the ring's mutex and park on ``channel`` until ``ready()`` (called with the mutex
    held) is true; then return True, still holding it.

    False once ``timeout`` passed, with the mutex released; whatever raises (``ready()``
    included) leaves it released too. ``spin``: the first wait spins, mutex released, until
    an item arrives (a put usually follows within microseconds), rather than parking.
    """
    deadline = Deadline(timeout)
    if not ring.lock(timeout):
        return False
    held = True
    try:
        while not ready():
            remaining = deadline.remaining()
            if remaining is not None and remaining <= 0:
                held = False
                ring.unlock()
                return False
            held = False  # both re-take the mutex, or raise without it
            if spin:
                spin = False
                ring.unlock()
                ring.spin_until_items()
                ring.lock(None)
            else:
                ring.park(channel, sem, remaining)
            held = True
    except BaseException:
        if held:
            ring.unlock()
        raise
    return True


class _Half:
    """What both halves read of the queue they make up."""

    _ring: Ring
    _maxsize: int
    _threshold: int
    _closed: bool
    _used: bool
    _feeder: Feeder

    def _check_open(self) -> None:
        if self._closed:
            raise _Closed(f"Queue {self!r} is closed")


class _Putting(_Half):
    """``put`` and ``put_many``: pickle in the caller, then one lock round."""

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
        ring.lock(None)
        if ring.hq[STATE]:
            ring.unlock()
            raise QueueShutDown("put() on a shut-down queue")
        self._accept(frames)

    def _put_bounded(self, frames: list[Frame], timeout: float | None) -> None:
        ring = self._ring
        hq = ring.hq
        n = sum(items for _, _, items in frames)

        def room() -> bool:
            if hq[STATE]:
                raise QueueShutDown("put() on a shut-down queue")
            # Items, as the stdlib counts them (spilled ones too), never bytes: frames that
            # find the ring full of large items spill, as on an unbounded queue, so a put
            # the stdlib accepts at once is accepted at once here too.
            return hq[PUTS] - hq[GETS] + n <= self._maxsize

        if not lock_until(ring, room, PUTTERS, ring.putters, timeout):
            raise Full
        self._accept(frames)

    def _accept(self, frames: list[Frame]) -> None:
        """Write ``frames`` into the ring (mutex held, then released), spilling those that
        find no room; the feeder moves spilled frames in as room appears."""
        ring = self._ring
        hq = ring.hq
        total = sum(items for _, _, items in frames)
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
        frames = encode_many(objs, self._threshold, ring.prefix)
        if frames:
            self._put(frames, timeout)


class _Getting(_Half):
    """``get`` and ``get_many``: one lock round, then unpickle outside it."""

    def _wait_for_items(self, timeout: float | None) -> list[int]:
        """Take the mutex and wait until an item is in the ring; return with it held.

        Returns the spill segments emptied meanwhile, to :func:`retire` after the unlock.
        """
        ring = self._ring
        hq = ring.hq
        emptied: list[int] = []

        def items() -> bool:
            while not hq[TAIL]:  # the ring is empty
                if hq[SPILLED] and hq[STATE] != IMMEDIATE:
                    emptied.extend(refill(ring))  # the ring is empty: everything fits
                    continue
                if hq[STATE]:
                    raise QueueShutDown("get() on a shut-down and drained queue")
                return False
            return True

        try:
            ready = lock_until(ring, items, GETTERS, ring.getters, timeout, spin=True)
        except BaseException:
            retire(ring, emptied)
            raise
        if not ready:
            retire(ring, emptied)
            raise Empty
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
