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
    put_many(xs): one batch frame, one lock round; get_many takes any prefix of batches
    big item (> ring/4): own shm segment; the frame carries its name; the reader unlinks it

Invariants (besides those of :mod:`._ring`):

* ``put`` pickles in the caller; nothing reaches the ring or a backlog unless pickling worked.
* Per process, items reach the ring in ``put`` order: the backlog is only touched with the
  ring's mutex held, ``put`` writes directly only when the backlog is empty, and the feeder
  pops an item only in the same lock round that wrote it.
* Bounded queues (``maxsize > 0``) never use a backlog: ``put`` waits in the caller for
  ``count < maxsize`` and ring room. Unbounded ``put`` never blocks.
* An item is "in the queue" from the moment ``put`` returns: it is either in the ring
  (``count``) or in a backlog (``buffered``). ``get`` on a shut-down queue ends only when
  both are zero.
* The mutex is held only for header updates and copies, never while pickling, unpickling or
  doing other I/O (out-of-band segments are written before and read after the lock round).

Module layout: the public classes here; their machinery in :mod:`._queue_base`, the item
encoding in :mod:`._queue_codec`, the feeder thread in :mod:`._queue_feeder`, the shared
ring itself in :mod:`._ring`.
"""

from __future__ import annotations

import time
from typing import Any

from ._queue_base import DEFAULT_RING_SIZE, _QueueBase
from ._ring import BUFFERED, COUNT, IMMEDIATE, JOINERS, STATE, UNFINISHED
from ._timeouts import wait_timeout

__all__ = ["DEFAULT_RING_SIZE", "JoinableQueue", "Queue", "SimpleQueue"]

_ALL = 1 << 30


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
