"""Process-flavour queues: ``Queue``, ``SimpleQueue`` and ``JoinableQueue`` on a shared ring.

The stdlib's ``multiprocessing.Queue`` is a pipe plus a feeder thread per process; it can only
be inherited at start-up, pickles in the feeder (an unpicklable item is dropped with a message
on stderr), and cannot be shut down. Here a queue is a shared-memory ring (:mod:`._ring`) plus
three named semaphores, so it pickles to names at any time and any process opens the same
ring::

    process A                        shared memory                   process B
    put(x): dumps --mutex--> write --> +--------+-----------+ --mutex--> read: get()
                                       | header | [f][f][f] |            (loads after
    put(y), ring full: spill --------> +--------+-----------+             the lock round)
        segments (shared memory), moved into the ring as room appears
    put_many(xs): one batch frame, one lock round; get_many takes any prefix of batches
    big item (> ring/4): own shm segment; the frame carries its name; the reader unlinks it

Guarantees (and their limits):

* **Accepted is delivered.** An item is in the queue from the moment ``put``/``put_many``
  returns: in the ring, or in a spill segment (:mod:`._queue_feeder`), both shared memory
  that outlives the producer. A producer killed at any instant -- even inside ``put`` --
  loses nothing that a ``put`` of it had returned; the call it was killed in either
  happened whole or not at all. Unbounded ``put`` still never blocks (what does not fit the
  ring spills); bounded ``put`` waits while ``maxsize`` items are in the queue, as the
  stdlib's does, whatever their size (what does not fit the ring spills there too).
* **Order.** Items of one producer are delivered in ``put`` order (spilled items go to the
  ring before anything put after them); there is no order across producers, as in the
  stdlib.
* **Exact counts.** ``qsize()``, ``empty()`` and ``JoinableQueue.join()`` count shared
  items only (accepted minus taken, minus done): no count is left above zero by a process
  that died, and ``for item in q`` ends after ``shutdown()`` once the queue is drained.
* **No hang, no corruption.** The ring's mutex is robust: a process killed holding it
  neither keeps it nor leaves a half-done update behind (:mod:`._ring`); every blocking
  call keeps its timeout.
* **Limits.** An item a consumer took is gone from the queue even if that consumer dies
  before using it (at most the items of its one ``get``/``get_many`` call in progress).
  Spill segments use memory in ``/dev/shm``: a producer that outruns its consumers for good
  fills it, and ``put`` then raises ``OSError`` (``ENOSPC``) with nothing put.

Invariants (besides those of :mod:`._ring`):

* ``put`` pickles in the caller; nothing reaches the ring or a spill segment unless
  pickling worked.
* While anything is spilled, every put appends to the spill chain, and only the oldest
  spilled frames move to the ring; so the ring always holds older items than the chain.
* A bounded queue (``maxsize > 0``) counts items, never bytes: ``put`` waits in the caller
  until its items fit under ``maxsize`` (spilled ones counted), then writes or spills like
  an unbounded one. (Counting ring bytes made the fifth put of 200-byte items into
  ``Queue(6, ring_size=1024)`` wait for a consumer, where the stdlib's accepts six at once.)
* The mutex is held only for header updates and copies, never while pickling, unpickling or
  doing other I/O (out-of-band segments are written before and read after the lock round;
  spill segments are created with the mutex held, once per ring's worth of items).

Module layout: the public classes here; their machinery in :mod:`._queue_base` and
:mod:`._queue_io` (its put and get halves), the item encoding in :mod:`._queue_codec`, the
spill chain and its feeder thread in :mod:`._queue_feeder`, the shared ring itself in
:mod:`._ring`.
"""

from __future__ import annotations

from typing import Any

from ._queue_base import DEFAULT_RING_SIZE, _QueueBase
from ._queue_io import lock_until
from ._ring import DONE, JOINERS, PUTS
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
        * Nothing a ``put`` accepted is lost when its process dies (it is in shared
          memory, not in a feeder thread); ``close``/``join_thread`` only stop this
          process's feeder thread, and ``cancel_join_thread`` has nothing to cancel.
        * A process killed while holding the internal lock neither hangs the queue nor
          corrupts it (see the module docstring).
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
        """Number of items in the queue (a snapshot, exact whatever died meanwhile).

        Differences from the stdlib: exact, not approximate; it includes items waiting in
        spill segments.
        """
        return self._size()

    def full(self) -> bool:
        """True if a bounded queue holds ``maxsize`` items (a snapshot)."""
        return bool(self._maxsize) and self._size() >= self._maxsize


class SimpleQueue(_QueueBase):
    """An unbounded FIFO queue for processes, like :class:`multiprocessing.SimpleQueue`.

    Example::

        q = SimpleQueue()
        q.put("hello")
        assert q.get() == "hello"

    Differences from the stdlib: ``put`` never blocks (a full ring spills into shared memory,
    as with :class:`Queue`), ``get`` takes ``block``/``timeout``, and it has
    the extras of :class:`Queue` (``shutdown``, iteration, ``put_many``/``get_many``).
    """

    def __init__(self, *, ring_size: int = DEFAULT_RING_SIZE) -> None:
        super().__init__(0, ring_size=ring_size)

    def close(self) -> None:
        """Close this process's use of the queue: ``put``, ``get`` and ``empty`` then raise
        ``OSError``, as with the stdlib's closed pipe (other processes are not affected)."""
        super().close()
        self._reader_closed = True


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
            left = hq[PUTS] - hq[DONE] - 1
            if left < 0:
                raise ValueError("task_done() called too many times")
            hq[DONE] += 1
            if left == 0:
                ring.wake(JOINERS, ring.joiners, _ALL)
        finally:
            ring.unlock()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every item put has been marked done; return False on timeout.

        Example::

            if not q.join(timeout=10):
                log.warning("workers are slow")
        """
        ring = self._ring
        hq = ring.hq
        done = lock_until(
            ring, lambda: hq[PUTS] - hq[DONE] <= 0, JOINERS, ring.joiners, wait_timeout(timeout)
        )
        if done:
            ring.unlock()
        return done
