"""``Queue`` and ``JoinableQueue`` on a Dask cluster: a ``distributed.Queue`` plus shutdown.

Items are pickled here (cloudpickle for lambdas) and travel as bytes, so any picklable object
fits, not only what Dask's msgpack takes. Dask's queue has no shutdown; it is built from:

* a ``distributed.Variable`` flag, which ``put`` checks (``QueueShutDown`` once it is set);
* a wake-up mark put *behind* the items: a ``get`` that meets it puts it back for the next
  consumer and raises ``QueueShutDown`` -- so every blocked consumer wakes, items put before
  the shutdown are still delivered first, and iteration ends once the queue is drained.

Timed ``get``/``put`` go through workhorse's scheduler extension (:mod:`._extension`), so
that a wait that runs out is an answer, not an ERROR in the scheduler's log.

A ``put`` racing with ``shutdown`` from another process may land behind the mark (and stay
unread); a ``shutdown`` of a full bounded queue waits for room for its mark.

Example::

    q = cluster.Queue()
    pool.submit(consume, q)        # for item in q: ...
    q.put_many(range(10))
    q.shutdown()
"""

from __future__ import annotations

import queue
from collections.abc import Iterable, Iterator
from typing import Any

from .._errors import QueueShutDown
from .._primitive import until_shutdown
from .._serialize import dumps, loads
from .._timeouts import Deadline, queue_timeout, wait_timeout
from ._extension import NOTHING, queue_get, queue_put
from ._shared import Shared
from ._sync import POLL, Event, Lock

__all__ = ["JoinableQueue", "Queue"]

SHUTDOWN_MARK = "workhorse-queue-shutdown"  # a str: items always travel as bytes


class Queue(Shared):
    """A cluster-wide ``queue.Queue`` with ``shutdown()``, ``put_many``/``get_many`` and
    iteration that ends at shutdown.

    Example::

        q = cluster.Queue(maxsize=100)
        q.put("job")
        assert q.get(timeout=5) == "job"
    """

    kind = "queue"

    def __init__(self, maxsize: int = 0, *, client: Any = None, name: str | None = None) -> None:
        self._maxsize = max(0, int(maxsize))
        self._bind(name, client)
        self._flag.set(False)

    def _params(self) -> tuple[Any, ...]:
        return (self._maxsize,)

    def _attach(self, params: tuple[Any, ...]) -> None:
        from distributed import Queue as DaskQueue
        from distributed import Variable

        (self._maxsize,) = params
        self._queue = DaskQueue(self.name, client=self._client, maxsize=self._maxsize)
        self._flag = Variable(f"{self.name}-shutdown", client=self._client)
        self._shut = False  # seen shut down here: no need to ask again

    @property
    def maxsize(self) -> int:
        """The bound given at creation (0: unbounded)."""
        return int(self._maxsize)

    def is_shutdown(self) -> bool:
        """Whether ``shutdown()`` was called (by anyone)."""
        if not self._shut:
            self._shut = bool(self._flag.get())
        return self._shut

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item``; ``queue.Full`` after ``timeout``; ``QueueShutDown`` once shut down."""
        wait = queue_timeout(block, timeout)
        if self.is_shutdown():
            raise QueueShutDown("put() on a shut-down queue")
        self._put_raw(dumps(item), wait)

    def _put_raw(self, data: Any, wait: float | None) -> None:
        # through workhorse's scheduler extension: a wait that runs out is not an ERROR there
        if not queue_put(self._client, self.name, data, None if wait is None else max(wait, POLL)):
            raise queue.Full

    def put_nowait(self, item: Any) -> None:
        """``put(item, block=False)``."""
        self.put(item, block=False)

    def put_many(
        self, items: Iterable[Any], block: bool = True, timeout: float | None = None
    ) -> None:
        """Put each of ``items`` in order (``timeout`` bounds the whole call)."""
        deadline = Deadline(queue_timeout(block, timeout))
        for item in items:
            self.put(item, True, deadline.remaining())

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The next item; ``queue.Empty`` after ``timeout``; ``QueueShutDown`` once shut
        down and drained."""
        wait = queue_timeout(block, timeout)
        data = queue_get(self._client, self.name, None if wait is None else max(wait, POLL))
        if data is NOTHING:
            raise queue.Empty
        if isinstance(data, str) and data == SHUTDOWN_MARK:
            self._shut = True
            self._queue.put(SHUTDOWN_MARK)  # for the next consumer
            raise QueueShutDown("get() on a shut-down, drained queue")
        return loads(data)

    def get_nowait(self) -> Any:
        """``get(block=False)``."""
        return self.get(block=False)

    def get_many(
        self, max_items: int, block: bool = True, timeout: float | None = None
    ) -> list[Any]:
        """Up to ``max_items`` items: waits (``timeout``) for the first, then takes what is
        there. ``QueueShutDown`` only if the queue is shut down and drained."""
        items = [self.get(block, timeout)]
        while len(items) < max_items:
            try:
                items.append(self.get(block=False))
            except (queue.Empty, QueueShutDown):
                break
        return items

    def qsize(self) -> int:
        """Items in the queue (approximate, as always with queues)."""
        size = int(self._queue.qsize())
        return max(0, size - 1) if self.is_shutdown() else size

    def empty(self) -> bool:
        """Whether the queue holds no item right now."""
        return self.qsize() == 0

    def full(self) -> bool:
        """Whether a bounded queue is at its bound right now."""
        return 0 < self._maxsize <= self.qsize()

    def shutdown(self, immediate: bool = False) -> None:
        """Refuse new items; consumers get ``QueueShutDown`` once the queue is drained
        (``immediate``: the items left are discarded at once)."""
        if self.is_shutdown():
            return
        self._flag.set(True)
        self._shut = True
        if immediate:
            for _ in self._queue.get(batch=True):
                self._dropped()
        self._put_raw(SHUTDOWN_MARK, None)

    def _dropped(self) -> None:
        """Hook for JoinableQueue."""

    def __iter__(self) -> Iterator[Any]:
        """Items until the queue is shut down and drained."""
        return until_shutdown(self.get)


class JoinableQueue(Queue):
    """A :class:`Queue` with ``task_done()`` and ``join()``: a counter under a Dask lock and
    an event set whenever it drops to zero.

    Example::

        q = cluster.JoinableQueue()
        q.put(1)
        item = q.get(); q.task_done()
        q.join(timeout=5)
    """

    kind = "joinable-queue"

    def __init__(self, maxsize: int = 0, *, client: Any = None, name: str | None = None) -> None:
        super().__init__(maxsize, client=client, name=name)
        self._count.set(0)
        self._idle.set()

    def _attach(self, params: tuple[Any, ...]) -> None:
        from distributed import Variable

        super()._attach(params)
        self._count = Variable(f"{self.name}-unfinished", client=self._client)
        self._mutex = Lock(client=self._client, name=f"{self.name}-mutex")
        self._idle = Event(client=self._client, name=f"{self.name}-idle")

    def _add(self, delta: int) -> None:
        with self._mutex:
            count = int(self._count.get()) + delta
            if count < 0:
                raise ValueError("task_done() called too many times")
            self._count.set(count)
            if count == 0:
                self._idle.set()
            elif delta > 0:
                self._idle.clear()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item``; it counts as unfinished until a ``task_done()``."""
        self._add(1)
        try:
            super().put(item, block, timeout)
        except BaseException:
            self._add(-1)
            raise

    def _dropped(self) -> None:
        self._add(-1)

    def task_done(self) -> None:
        """Mark one item taken with ``get`` as processed."""
        self._add(-1)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every item put was marked done; False after ``timeout`` seconds."""
        return self._idle.wait(wait_timeout(timeout))
