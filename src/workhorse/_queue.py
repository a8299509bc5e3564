"""Process-flavour queues: ``Queue``, ``SimpleQueue`` and ``JoinableQueue`` on a shared ring.

The stdlib's ``multiprocessing.Queue`` is a pipe plus a feeder thread per process; it can only
be inherited at start-up, pickles in the feeder (an unpicklable item is dropped with a message
on stderr), and cannot be shut down. Here a queue is a shared-memory ring (:mod:`._ring`) plus
four named semaphores, so it pickles to names at any time and any process opens the same ring::

    process A                        shared memory                   process B
    put(x): dumps --mutex--> write --> +--------+-----------+ --mutex--> read: get()
                                       | header | [f][f][f] |            (loads after
    put(y), ring full: backlog         +--------+-----------+             the lock round)
        --> feeder thread (waits for room on "putters")
    big item (> ring/4): own shm segment; the frame carries its name; the reader unlinks it

Invariants (besides those of :mod:`._ring`):

* ``put`` pickles in the caller; nothing reaches the ring or a backlog unless pickling worked.
* Per process, items reach the ring in ``put`` order: the backlog is only touched with the
  ring's mutex held, ``put`` writes directly only when the backlog is empty, and the feeder
  pops an item only in the same lock round that wrote it.
* Bounded queues (``maxsize > 0``) never use a backlog: ``put`` waits in the caller for
  ``count < maxsize`` and ring room. Unbounded ``put`` never blocks.
* An item is "in the queue" from the moment ``put`` returns: it is either a frame (``count``)
  or in a backlog (``buffered``). ``get`` on a shut-down queue ends only when both are zero.
* The mutex is held only for header updates and copies, never while pickling, unpickling or
  doing other I/O (out-of-band segments are written before and read after the lock round).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing import util
from pickle import dumps as _pickle_dumps
from pickle import loads as _pickle_loads
from queue import Empty, Full
from typing import Any, Self

from ._errors import QueueShutDown
from ._ring import (
    BUFFERED,
    COUNT,
    GETTERS,
    HEADER_BYTES,
    HOLDER,
    IMMEDIATE,
    JOINERS,
    PUTTERS,
    SHUTDOWN,
    STATE,
    UNFINISHED,
    Backlog,
    Ring,
    discard_oob,
    frame_bytes,
    load,
    store_oob,
    unlink_prefixed,
)
from ._semlock import SEM_VALUE_MAX, NamedSemaphore
from ._serialize import PROTOCOL, dumps
from ._sharing import Shared, new_uid
from ._shm import Segment
from ._timeouts import queue_timeout, wait_timeout

__all__ = ["DEFAULT_RING_SIZE", "JoinableQueue", "Queue", "SimpleQueue"]

#: Default ring capacity in bytes; items whose pickle exceeds a quarter of it go out of band.
DEFAULT_RING_SIZE = 1 << 20
_MIN_RING_SIZE = 1024
_ALL = 1 << 30


class _Feeder:
    """This process's backlog of an unbounded queue and the daemon thread draining it."""

    __slots__ = ("__weakref__", "backlog", "cancelled", "closed", "cond", "ring", "thread")

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        self.backlog: Backlog = deque()
        self.cond = threading.Condition(threading.Lock())
        self.thread: threading.Thread | None = None
        self.closed = self.cancelled = False


def _feed(feeder: _Feeder) -> None:
    ring, backlog, cond = feeder.ring, feeder.backlog, feeder.cond
    try:
        while True:
            with cond:
                while not backlog and not feeder.closed:
                    cond.wait()
                if not backlog:
                    return
            need = ring.flush(backlog)
            if need:
                ring.wait_room(need)
    except BaseException:  # a broken ring: nothing more can be delivered
        with cond:
            for data, length in backlog:
                if length < 0:
                    discard_oob(data)
            backlog.clear()


def _finalize_close(feeder: _Feeder) -> None:
    with feeder.cond:
        feeder.closed = True
        feeder.cond.notify()


def _finalize_join(feeder_ref: weakref.ref[_Feeder]) -> None:
    feeder = feeder_ref()
    if feeder is None:  # the queue and its feeder thread are long gone
        return
    ring = feeder.ring
    if not feeder.cancelled:
        if feeder.thread is not None:
            feeder.thread.join()
        return
    # cancel_join_thread(): drop what is left, but keep the shared counts exact.
    try:
        if feeder.backlog and ring.lock(1.0):
            ring.forget(feeder.backlog)
            ring.unlock()
    except Exception:
        pass


class _QueueBase(Shared):
    """Machinery shared by the three queue classes (see the module docstring)."""

    _ring: Ring
    _maxsize: int
    _threshold: int
    _closed: bool
    _feeder: _Feeder

    def __init__(self, maxsize: int = 0, *, ring_size: int = DEFAULT_RING_SIZE) -> None:
        capacity = 1 << (max(_MIN_RING_SIZE, int(ring_size)) - 1).bit_length()
        uid = new_uid()
        segment = Segment.create(HEADER_BYTES + capacity)
        sems = (NamedSemaphore(1, 1), *(NamedSemaphore(0, SEM_VALUE_MAX) for _ in "gpj"))
        self._setup(Ring(segment, sems, f"/wh-{uid}"), maxsize)
        self._register(uid)
        # Unread out-of-band items die with the queue; after the feeders' exit flush (-5).
        util.Finalize(self, unlink_prefixed, (self._ring.prefix,), exitpriority=-10)

    def _setup(self, ring: Ring, maxsize: int) -> None:
        self._ring, self._maxsize = ring, max(0, maxsize)
        self._threshold = ring.capacity // 4
        self._closed, self._feeder = False, _Feeder(self._ring)

    def _shared_state(self) -> Any:
        return (self._ring.segment.name, self._ring.sems, self._maxsize)

    @classmethod
    def _from_shared_state(cls, uid: str, state: Any) -> Self:
        name, sems, maxsize = state
        self = cls.__new__(cls)
        self._uid = uid
        self._setup(Ring(Segment.attach(name), sems, f"/wh-{uid}"), maxsize)
        return self

    def _after_fork_in_child(self) -> None:
        self._ring.pid = os.getpid()
        self._closed, self._feeder = False, _Feeder(self._ring)

    # -- putting ---------------------------------------------------------------------------

    def _encode(self, obj: object) -> tuple[bytes, int]:
        data = dumps(obj, what="queue item")
        if len(data) + 8 > self._threshold:
            return self._encode_large(data)
        return data, len(data)

    def _encode_large(self, data: bytes) -> tuple[bytes, int]:
        name = store_oob(self._ring.prefix, data)
        return name, -len(name)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("Queue is closed")

    def _put(self, items: list[tuple[bytes, int]], timeout: float | None) -> None:
        try:
            if self._maxsize:
                self._put_bounded(items, timeout)
            else:
                self._put_unbounded(items)
        except BaseException:
            for data, length in items:
                if length < 0:
                    discard_oob(data)
            raise

    def _put_unbounded(self, items: list[tuple[bytes, int]]) -> None:
        ring, feeder = self._ring, self._feeder
        hq = ring.hq
        backlog = feeder.backlog  # guarded by the ring's mutex, like the ring itself
        ring.lock(None)
        if hq[STATE]:
            ring.unlock()
            raise QueueShutDown("put() on a shut-down queue")
        written = 0
        if not backlog:
            room, write = ring.room(), ring.write
            for data, length in items:
                size = 8 + ((abs(length) + 7) & -8)  # frame_bytes(), inlined
                if size > room:
                    break
                write(data, length)
                room -= size
                written += 1
        rest = len(items) - written
        hq[COUNT] += written
        hq[BUFFERED] += rest
        hq[UNFINISHED] += len(items)
        if written and hq[GETTERS] > hq[GETTERS + 1]:
            ring.wake(GETTERS, ring.getters, written)
        if rest:
            backlog.extend(items[written:])
        ring.unlock()
        items.clear()  # accepted: from here on the feeder owns any out-of-band segments
        if rest:
            with feeder.cond:
                if feeder.thread is None:
                    self._start_feeder()
                feeder.cond.notify()

    def _start_feeder(self) -> None:
        feeder = self._feeder
        feeder.thread = threading.Thread(
            target=_feed, args=(feeder,), name="QueueFeederThread", daemon=True
        )
        feeder.thread.start()
        # As multiprocessing does: flush at exit unless cancel_join_thread() was called.
        util.Finalize(self, _finalize_close, (feeder,), exitpriority=10)
        # Only weak references here: the registry must not keep the ring alive.
        util.Finalize(feeder.thread, _finalize_join, (weakref.ref(feeder),), exitpriority=-5)

    def _put_bounded(self, items: list[tuple[bytes, int]], timeout: float | None) -> None:
        ring, n = self._ring, len(items)
        hq = ring.hq
        need = sum(frame_bytes(length) for _, length in items)
        deadline = None if timeout is None else time.monotonic() + timeout
        if not ring.lock(timeout):
            raise Full
        held = True
        try:
            while True:
                if hq[STATE]:
                    raise QueueShutDown("put() on a shut-down queue")
                if hq[COUNT] + n <= self._maxsize and ring.room() >= need:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise Full
                held = False
                ring.park(PUTTERS, ring.putters, remaining)
                held = True
            for data, length in items:
                ring.write(data, length)
            hq[COUNT] += n
            hq[UNFINISHED] += n
            if hq[GETTERS] > hq[GETTERS + 1]:
                ring.wake(GETTERS, ring.getters, n)
            items.clear()
        finally:
            if held:
                ring.unlock()

    # -- getting ---------------------------------------------------------------------------

    def _get(self, max_items: int, timeout: float | None) -> list[tuple[bytes, int]]:
        ring = self._ring
        hq = ring.hq
        deadline = None if timeout is None else time.monotonic() + timeout
        if not ring.lock(timeout):
            raise Empty
        held = spin = True
        try:
            while not hq[COUNT]:
                state = hq[STATE]
                if state == IMMEDIATE or (state and not hq[BUFFERED]):
                    raise QueueShutDown("get() on a shut-down and drained queue")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise Empty
                held = False
                if spin:
                    spin = False
                    ring.unlock()
                    ring.spin_until(COUNT)
                    ring.lock(None)
                else:
                    ring.park(GETTERS, ring.getters, remaining)
                held = True
            count = hq[COUNT]
            k = count if count < max_items else max_items
            read = ring.read
            frames = [read() for _ in range(k)]
            hq[COUNT] = count - k
            if hq[PUTTERS] > hq[PUTTERS + 1]:
                ring.wake(PUTTERS, ring.putters, _ALL)  # sizes differ: let each re-check
            if count > k and hq[GETTERS] > hq[GETTERS + 1]:
                ring.wake(GETTERS, ring.getters, count - k)
            return frames
        finally:
            if held:
                ring.unlock()

    @staticmethod
    def _load_all(frames: list[tuple[bytes, int]]) -> list[Any]:
        out: list[Any] = []
        append = out.append
        try:
            for data, length in frames:
                append(_pickle_loads(data) if length >= 0 else load(data, length))
        except BaseException:
            for data, length in frames[len(out) + 1 :]:
                if length < 0:
                    discard_oob(data)
            raise
        return out

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
            raise ValueError("Queue is closed")
        if self._maxsize:
            self._put([self._encode(obj)], queue_timeout(block, timeout))
            return
        try:
            data = _pickle_dumps(obj, PROTOCOL)
        except Exception:
            data = dumps(obj, what="queue item")  # cloudpickle, or SerializationError
        n = len(data)
        if n + 8 > self._threshold:
            self._put([self._encode_large(data)], None)
            return
        # Fast path: one lock round, the frame fits and no backlog must go first.
        ring = self._ring
        hq = ring.hq
        if ring.try_lock(False):
            hq[HOLDER] = ring.pid
        else:
            ring.lock(None)
        if hq[STATE] or self._feeder.backlog or ring.room() < 8 + ((n + 7) & -8):
            ring.unlock()
            self._put([(data, n)], None)
            return
        ring.write(data, n)
        hq[COUNT] += 1
        hq[UNFINISHED] += 1
        if hq[GETTERS] > hq[GETTERS + 1]:
            ring.wake(GETTERS, ring.getters, 1)
        hq[HOLDER] = 0
        ring.release()

    def put_many(
        self, items: Iterable[object], block: bool = True, timeout: float | None = None
    ) -> None:
        """Put every item of ``items``, in order, in one lock round: all of them or none.

        On a bounded queue it waits (per ``block``/``timeout``) until there is room for the
        whole batch.

        Raises:
            ValueError: more items than a bounded queue's ``maxsize``; or as :meth:`put`.
            queue.Full, QueueShutDown, SerializationError: as :meth:`put` (nothing was put).

        Example::

            q.put_many(range(1000))
        """
        self._check_open()
        objs = list(items)
        if self._maxsize and len(objs) > self._maxsize:
            raise ValueError(
                f"put_many() of {len(objs)} items into a queue of maxsize {self._maxsize}"
            )
        timeout = queue_timeout(block, timeout) if self._maxsize else None
        encoded: list[tuple[bytes, int]] = []
        try:
            append, limit = encoded.append, self._threshold - 8
            for obj in objs:
                try:
                    data = _pickle_dumps(obj, PROTOCOL)
                except Exception:
                    data = dumps(obj, what="queue item")
                n = len(data)
                append((data, n) if n <= limit else self._encode_large(data))
            if self._maxsize:
                self._fit_batch(encoded)
        except BaseException:
            for data, length in encoded:
                if length < 0:
                    discard_oob(data)
            raise
        if encoded:
            self._put(encoded, timeout)

    def _fit_batch(self, encoded: list[tuple[bytes, int]]) -> None:
        # A bounded batch is written at once, so it must fit the ring: move the largest
        # items out of band until it does.
        total = sum(frame_bytes(length) for _, length in encoded)
        order = sorted(range(len(encoded)), key=lambda i: -encoded[i][1])
        for i in order:
            if total <= self._ring.capacity or encoded[i][1] < 64:
                break
            data, length = encoded[i]
            name = store_oob(self._ring.prefix, data)
            encoded[i] = (name, -len(name))
            total += frame_bytes(-len(name)) - frame_bytes(length)
        if total > self._ring.capacity:
            raise ValueError("put_many() batch is too large for the queue's ring")

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
            raise ValueError("Queue is closed")
        if timeout is not None:
            timeout = queue_timeout(block, timeout)
        # Fast path: an item is there and the mutex is free.
        ring = self._ring
        hq = ring.hq
        if block and ring.try_lock(False):
            hq[HOLDER] = ring.pid
            count = hq[COUNT]
            if count:
                data, length = ring.read()
                hq[COUNT] = count - 1
                if hq[PUTTERS] > hq[PUTTERS + 1]:
                    ring.wake(PUTTERS, ring.putters, _ALL)
                if count > 1 and hq[GETTERS] > hq[GETTERS + 1]:
                    ring.wake(GETTERS, ring.getters, count - 1)
                hq[HOLDER] = 0
                ring.release()
                return _pickle_loads(data) if length >= 0 else load(data, length)
            hq[HOLDER] = 0
            ring.release()
        data, length = self._get(1, queue_timeout(block, timeout))[0]
        return load(data, length)

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
        return self._load_all(self._get(max_items, queue_timeout(block, timeout)))

    def empty(self) -> bool:
        """True if no item is in the queue (a snapshot; counts items still in feeders)."""
        hq = self._ring.hq
        return hq[COUNT] + hq[BUFFERED] == 0

    def close(self) -> None:
        """Indicate that this process will put no more; its feeder flushes, then exits.

        Afterwards ``put`` and ``get`` in this process raise ``ValueError``. Other processes
        are not affected (use :meth:`shutdown` for that). Calling it twice is fine.
        """
        self._closed = True
        _finalize_close(self._feeder)

    def join_thread(self) -> None:
        """Wait until this process's feeder thread has flushed every buffered item.

        Differences from the stdlib: raises ``ValueError`` (not ``AssertionError``) when the
        queue was not closed first.
        """
        if not self._closed:
            raise ValueError("join_thread() requires close() first")
        thread = self._feeder.thread
        if thread is not None:
            thread.join()

    def cancel_join_thread(self) -> None:
        """Let this process exit without waiting for its feeder (buffered items are lost)."""
        self._feeder.cancelled = True

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
        ring.lock(None)
        try:
            if immediate:
                hq[STATE] = IMMEDIATE
                dropped = ring.drop_all()
                hq[UNFINISHED] = max(0, hq[UNFINISHED] - dropped)
            elif not hq[STATE]:
                hq[STATE] = SHUTDOWN
            ring.wake_all()
        finally:
            ring.unlock()

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


class Queue(_QueueBase):
    """A FIFO queue for processes (and their threads), like :class:`multiprocessing.Queue`.

    Built on named shared memory and named semaphores, so it can be passed to any process at
    any time: as a ``Process`` argument under every start method, through another queue, or
    as a pool task argument; it unpickles to the same object once per process.

    Args:
        maxsize: at most this many items (``<= 0``: unbounded, ``put`` never blocks).
        ring_size: bytes of the shared ring (rounded up to a power of two); items whose
            pickle exceeds a quarter of it travel in their own shared-memory segment.

    Example::

        q = Queue()
        p = multiprocessing.Process(target=worker, args=(q,))
        p.start()
        q.put_many(range(100))
        q.shutdown()         # worker's ``for item in q:`` ends after the 100 items

    Differences from the stdlib:
        * ``put`` pickles in the caller and raises :class:`SerializationError` (the stdlib
          drops the item in its feeder thread).
        * ``shutdown``/``is_shutdown`` (3.13's ``queue.Queue`` semantics, across processes),
          iteration, ``put_many``/``get_many`` (one lock round per batch).
        * A negative ``timeout`` raises ``ValueError`` as in :mod:`queue`.
        * A process killed while holding the internal lock makes later calls raise
          :class:`BrokenResourceError` instead of hanging.
    """

    def __init__(self, maxsize: int = 0, *, ring_size: int = DEFAULT_RING_SIZE) -> None:
        super().__init__(maxsize, ring_size=ring_size)

    @property
    def maxsize(self) -> int:
        """The bound given at creation (0: unbounded)."""
        return self._maxsize

    def put_nowait(self, obj: object) -> None:
        """Same as ``put(obj, False)``."""
        self.put(obj, False)

    def get_nowait(self) -> Any:
        """Same as ``get(False)``."""
        return self.get(False)

    def qsize(self) -> int:
        """Approximate number of items in the queue, including those still in feeders."""
        hq = self._ring.hq
        return int(hq[COUNT] + hq[BUFFERED])

    def full(self) -> bool:
        """True if a bounded queue holds ``maxsize`` items (a snapshot)."""
        return bool(self._maxsize) and self._ring.hq[COUNT] >= self._maxsize


class SimpleQueue(_QueueBase):
    """An unbounded FIFO queue for processes, like :class:`multiprocessing.SimpleQueue`.

    Example::

        q = SimpleQueue()
        q.put("hello")
        assert q.get() == "hello"

    Differences from the stdlib: ``put`` never blocks (a full ring spills into a per-process
    feeder thread, as with :class:`Queue`), ``get`` takes ``block``/``timeout``, and it has
    the extras of :class:`Queue` (``shutdown``, iteration, ``put_many``/``get_many``).
    """

    def __init__(self, *, ring_size: int = DEFAULT_RING_SIZE) -> None:
        super().__init__(0, ring_size=ring_size)


class JoinableQueue(Queue):
    """A :class:`Queue` whose ``join()`` waits until every item put was marked done.

    Example::

        q = JoinableQueue()
        q.put_many(jobs)
        ...                  # consumers call q.task_done() after each item
        q.join()

    Differences from the stdlib: ``join`` takes a ``timeout`` and returns whether all tasks
    are done; after ``shutdown(immediate=True)`` the dropped items count as done.
    """

    def task_done(self) -> None:
        """Mark one item obtained with ``get`` as processed.

        Raises:
            ValueError: called more times than items were put.
        """
        ring = self._ring
        hq = ring.hq
        ring.lock(None)
        try:
            left = hq[UNFINISHED] - 1
            if left < 0:
                raise ValueError("task_done() called too many times")
            hq[UNFINISHED] = left
            if left == 0 or hq[STATE] == IMMEDIATE:
                ring.wake(JOINERS, ring.joiners, _ALL)
        finally:
            ring.unlock()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every item put has been marked done; return False on timeout.

        Example::

            if not q.join(timeout=10):
                log.warning("workers are slow")
        """
        timeout = wait_timeout(timeout)
        ring = self._ring
        hq = ring.hq
        deadline = None if timeout is None else time.monotonic() + timeout
        if not ring.lock(timeout):
            return False
        held = True
        try:
            while True:
                left = hq[UNFINISHED]
                if hq[STATE] == IMMEDIATE:
                    left -= hq[BUFFERED]  # other feeders are dropping theirs
                if left <= 0:
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                held = False
                ring.park(JOINERS, ring.joiners, remaining)
                held = True
        finally:
            if held:
                ring.unlock()
