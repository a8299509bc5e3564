"""Thread queues: :mod:`queue`'s, plus shutdown, batching, iteration and cancellation.

``Queue`` (and its alias-like subclass ``JoinableQueue``) is a :class:`queue.Queue` that keeps
its whole API and adds what 3.13 and the process queues have: ``shutdown``/``is_shutdown``
with 3.13's exact semantics on every Python, ``close``/``join_thread``/``cancel_join_thread``
for drop-in parity with :mod:`multiprocessing` queues, ``join(timeout)``, iteration until
shutdown, and ``put_many``/``get_many``. ``SimpleQueue`` is the union of
:class:`queue.SimpleQueue` and :class:`multiprocessing.SimpleQueue`.

Every blocking wait goes through the cancel-aware :class:`~workhorse._thread_condition.Condition`.
The mutex is never cancellable (``task_done``, ``shutdown`` and ``qsize`` must work in a
cancelled thread); calls that may block (``get``/``get_many``/``join`` and, on a bounded queue,
``put``/``put_many``, unless ``block=False``) check the cancel scope on entry instead.

Lost wake-ups: ``put``/``get`` wake one waiter each, as in the stdlib. A ``put_many`` waiter
may need more room than one ``get`` frees, so while one waits, freed room wakes every putter.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from . import _cancel
from ._errors import QueueShutDown
from ._primitive import until_shutdown, wait_for
from ._thread_condition import Condition
from ._thread_lock import _InternalLock, _type_name
from ._timeouts import Deadline, queue_timeout, wait_timeout

__all__ = ["JoinableQueue", "Queue", "SimpleQueue"]

_T = TypeVar("_T")

_ALIVE, _SHUTDOWN, _IMMEDIATE = "alive", "shutdown", "shutdown(immediate)"


class _Core(Generic[_T]):
    """What every thread queue shares: a deque, one mutex, three conditions, the state."""

    maxsize: int

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self.queue: deque[_T] = deque()
        self._mutex = _InternalLock()
        # Annotated as threading's type, which they subclass, to match queue.Queue's fields.
        self.not_empty: threading.Condition = Condition(self._mutex)
        self.not_full: threading.Condition = Condition(self._mutex)
        self.all_tasks_done: threading.Condition = Condition(self._mutex)
        self.unfinished_tasks = 0
        self._state = _ALIVE
        #: True once :meth:`shutdown` was called (a plain attribute, as in 3.13).
        self.is_shutdown = False
        self._closed = False
        self._batch_putters = 0  # put_many calls waiting for room

    # -- state ------------------------------------------------------------------------------

    def shutdown(self, immediate: bool = False) -> None:
        """Shut the queue down: ``put`` raises, ``get`` drains what is left, then raises.

        With ``immediate=True``, what is left is dropped (each dropped item counts as a
        finished task, which may release ``join``), so ``get`` raises at once. Every blocked
        ``put``, ``get`` and ``join`` wakes up. Calling it again is allowed; the state only
        moves from alive to shut down to shut down immediately.
        """
        with self._mutex:
            self.is_shutdown = True
            if immediate:
                self._state = _IMMEDIATE
                while self.queue:
                    self.queue.popleft()
                    if self.unfinished_tasks > 0:
                        self.unfinished_tasks -= 1
                self.all_tasks_done.notify_all()
            elif self._state == _ALIVE:
                self._state = _SHUTDOWN
            self.not_empty.notify_all()
            self.not_full.notify_all()

    def close(self) -> None:
        """Refuse every later ``put`` and ``get`` with ``ValueError("Queue is closed")``.

        For parity with :meth:`multiprocessing.Queue.close`. Calling it twice is fine. Unlike
        :meth:`shutdown`, the items left are unreachable; threads blocked in ``put``/``get``
        wake up with the ``ValueError``.
        """
        with self._mutex:
            self._closed = True
            self.not_empty.notify_all()
            self.not_full.notify_all()

    def _check_usable(self) -> None:
        # Called with the mutex held.
        if self._closed:
            raise ValueError("Queue is closed")

    # -- size -------------------------------------------------------------------------------

    def qsize(self) -> int:
        """Return the number of items in the queue (already stale when you read it)."""
        with self._mutex:
            return len(self.queue)

    def empty(self) -> bool:
        """Return True if the queue is empty (already stale when you read it)."""
        with self._mutex:
            return not self.queue

    def _no_room(self, n: int) -> bool:
        return 0 < self.maxsize < len(self.queue) + n

    # -- put --------------------------------------------------------------------------------

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item`` into the queue, waiting for a free slot if it is bounded and full.

        Args:
            item: the object to enqueue.
            block: wait for room (the default), or raise ``queue.Full`` at once.
            timeout: with ``block``, seconds to wait at most; ``None`` waits forever.

        Raises:
            queue.Full: no room within the timeout, or at once without ``block``.
            QueueShutDown: the queue is (or, while waiting, was) shut down.
            ValueError: a negative timeout (bounded queues, as in the stdlib), or closed.
            Cancelled: the calling thread's cancel scope was cancelled (bounded queues only).
        """
        self._put_items((item,), block, timeout)

    def put_nowait(self, item: _T) -> None:
        """Put ``item`` if there is room at once, else raise ``queue.Full``."""
        self._put_items((item,), False, None)

    def put_many(
        self, items: Iterable[_T], block: bool = True, timeout: float | None = None
    ) -> None:
        """Put all of ``items`` at once, in order, or none of them.

        On a bounded queue it waits until there is room for all of them; other threads never
        see part of the batch.

        Raises:
            ValueError: more items than a bounded queue's ``maxsize``; see :meth:`put`.
            queue.Full, QueueShutDown, Cancelled: as :meth:`put`.
        """
        batch = tuple(items)
        if 0 < self.maxsize < len(batch):
            raise ValueError(
                f"cannot put {len(batch)} items at once into a queue of maxsize {self.maxsize}"
            )
        self._put_items(batch, block, timeout)

    def _put_items(self, items: tuple[_T, ...], block: bool, timeout: float | None) -> None:
        n = len(items)
        # The stdlib only looks at the timeout of a bounded queue.
        wait = queue_timeout(block, timeout) if self.maxsize > 0 else 0.0
        if block and self.maxsize > 0:  # a put that can never block is no cancellation point
            _cancel.checkpoint()
        with self.not_full:
            self._check_usable()
            if self._state != _ALIVE:
                raise QueueShutDown("put() on a shut-down queue")
            if self._no_room(n):
                if not block:
                    raise queue.Full
                self._wait_for_room(n, Deadline(wait))
            self.queue.extend(items)
            self.unfinished_tasks += n
            self.not_empty.notify(n)

    def _wait_for_room(self, n: int, deadline: Deadline) -> None:
        if n > 1:
            self._batch_putters += 1
        try:
            while self._no_room(n):
                remaining = deadline.remaining()
                if remaining is not None and remaining <= 0:
                    raise queue.Full
                self.not_full.wait(remaining)
                self._check_usable()
                if self._state != _ALIVE:
                    raise QueueShutDown("put() on a shut-down queue")
        finally:
            if n > 1:
                self._batch_putters -= 1

    # -- get --------------------------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Remove and return the oldest item, waiting for one if the queue is empty.

        Args:
            block: wait for an item (the default), or raise ``queue.Empty`` at once.
            timeout: with ``block``, seconds to wait at most; ``None`` waits forever.

        Raises:
            queue.Empty: no item within the timeout, or at once without ``block``.
            QueueShutDown: the queue is shut down and drained.
            ValueError: a negative timeout, or the queue is closed.
            Cancelled: the calling thread's cancel scope was cancelled while it could block.
        """
        return self._get_items(1, block, timeout)[0]

    def get_nowait(self) -> _T:
        """Remove and return an item if one is there, else raise ``queue.Empty``."""
        return self._get_items(1, False, None)[0]

    def get_many(
        self, max_items: int, block: bool = True, timeout: float | None = None
    ) -> list[_T]:
        """Wait (as :meth:`get`) for at least one item, then take up to ``max_items`` at once.

        It never waits for a second item: it returns what is there, in order.

        Raises:
            ValueError: ``max_items`` is less than one; see :meth:`get`.
            queue.Empty, QueueShutDown, Cancelled: as :meth:`get`.
        """
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        return self._get_items(max_items, block, timeout)

    def _get_items(self, max_items: int, block: bool, timeout: float | None) -> list[_T]:
        deadline = Deadline(queue_timeout(block, timeout))
        if block:
            _cancel.checkpoint()
        with self.not_empty:
            self._check_usable()
            while not self.queue:
                if self._state != _ALIVE:
                    raise QueueShutDown("get() on a shut-down and empty queue")
                remaining = deadline.remaining()
                if remaining is not None and remaining <= 0:
                    raise queue.Empty
                self.not_empty.wait(remaining)
                self._check_usable()
            n = min(max_items, len(self.queue))
            items = [self.queue.popleft() for _ in range(n)]
            if self._batch_putters:
                self.not_full.notify_all()
            else:
                self.not_full.notify(n)
            return items

    def __iter__(self) -> Iterator[_T]:
        """Yield items as they come until the queue is shut down and drained."""
        return until_shutdown(self.get)

    def __repr__(self) -> str:
        size = f"{len(self.queue)}/{self.maxsize}" if self.maxsize > 0 else f"{len(self.queue)}"
        state = "closed" if self._closed else self._state
        return f"<{_type_name(self)} at {id(self):#x}: size={size} {state}>"


class Queue(_Core[_T], queue.Queue[_T]):
    """A FIFO queue for threads: :class:`queue.Queue` with shutdown, batches and timeouts.

    ``maxsize <= 0`` means unbounded. Iterating yields items until the queue is shut down and
    drained, which makes the consumer side of a pipeline a ``for`` loop.

    Example::

        q = Queue(maxsize=100)
        # producer:                      # consumer:
        q.put_many(lines)                for line in q:
        q.shutdown()                         handle(line)

    Differences from the stdlib:

    * ``shutdown(immediate=False)`` and ``is_shutdown`` with 3.13's semantics on every Python;
      the error is :class:`~workhorse.QueueShutDown` (a ``queue.ShutDown`` on 3.13+).
    * ``join(timeout=None)`` returns True when every task is done, False on timeout.
    * ``put_many``/``get_many`` move batches under one lock acquisition.
    * ``close()`` (later ``put``/``get`` raise ``ValueError``), ``join_thread()`` and
      ``cancel_join_thread()`` exist for parity with :class:`multiprocessing.Queue`; the last
      two do nothing, since no feeder thread exists.
    * Inside a cancel scope, blocking calls raise :class:`~workhorse.Cancelled` once the scope
      is cancelled.
    * Timeouts above ``threading.TIMEOUT_MAX`` raise ``OverflowError`` on entry, not only when
      the call would have to wait. Subclass hooks ``_put``/``_get``/``_qsize`` are not used.
    """

    def __init__(self, maxsize: int = 0) -> None:
        _Core.__init__(self, maxsize)
        self.mutex = self._mutex  # type: ignore[assignment]  # the stdlib's public name

    def full(self) -> bool:
        """Return True if a bounded queue is full (already stale when you read it)."""
        with self._mutex:
            return 0 < self.maxsize <= len(self.queue)

    def task_done(self) -> None:
        """Mark one item taken with ``get`` as processed; ``join`` returns when all are.

        Raises:
            ValueError: called more times than items were put.
        """
        with self._mutex:
            unfinished = self.unfinished_tasks - 1
            if unfinished < 0:
                raise ValueError("task_done() called too many times")
            if unfinished == 0:
                self.all_tasks_done.notify_all()
            self.unfinished_tasks = unfinished

    def join(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Wait until every item put has been marked done with :meth:`task_done`.

        Args:
            timeout: seconds to wait at most; ``None`` waits forever, negative is zero.

        Returns:
            True if every task is done, False if the timeout passed first.

        Raises:
            Cancelled: the calling thread's cancel scope was cancelled.
        """
        wait = wait_timeout(timeout)
        _cancel.checkpoint()
        with self.all_tasks_done:
            return wait_for(self.all_tasks_done.wait, lambda: self.unfinished_tasks == 0, wait)

    def join_thread(self) -> None:
        """Do nothing: for parity with :meth:`multiprocessing.Queue.join_thread`."""

    def cancel_join_thread(self) -> None:
        """Do nothing: for parity with :meth:`multiprocessing.Queue.cancel_join_thread`."""

    def __repr__(self) -> str:
        return f"{_Core.__repr__(self)[:-1]} unfinished={self.unfinished_tasks}>"


class JoinableQueue(Queue[_T]):
    """A :class:`Queue`, under the name :mod:`multiprocessing` gives its joinable queue.

    Every thread queue is joinable already (as :class:`queue.Queue` is); this name exists so
    that code written for ``multiprocessing.JoinableQueue`` runs unchanged.

    Example::

        q = JoinableQueue()
        q.put(job)
        # worker: job = q.get(); ...; q.task_done()
        q.join(timeout=60)

    Differences from the stdlib: those of :class:`Queue`.
    """


class SimpleQueue(_Core[_T]):
    """An unbounded FIFO queue, the union of :class:`queue.SimpleQueue` and
    :class:`multiprocessing.SimpleQueue`.

    Example::

        q = SimpleQueue()
        q.put("job")
        assert q.get(timeout=1) == "job"

    Differences from the stdlib: ``shutdown``/``is_shutdown``, iteration until shutdown,
    ``put_many``/``get_many`` and ``close`` (from :class:`multiprocessing.SimpleQueue`) are
    added; blocking ``get`` is cancel-aware. ``put`` never blocks; its ``block`` and
    ``timeout`` arguments exist for compatibility and are ignored, as in the stdlib.
    """

    def __init__(self) -> None:
        super().__init__(0)

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item`` into the queue; never blocks (``block``/``timeout`` are ignored).

        Raises:
            QueueShutDown: the queue is shut down.
            ValueError: the queue is closed.
        """
        self._put_items((item,), False, None)

    def put_many(
        self, items: Iterable[_T], block: bool = True, timeout: float | None = None
    ) -> None:
        """Put all of ``items`` at once, in order; never blocks.

        Raises:
            QueueShutDown: the queue is shut down.
            ValueError: the queue is closed.
        """
        self._put_items(tuple(items), False, None)
