"""Deadlines of running units, enforced by one thread: the thread backend's timeouts.

A thread cannot be interrupted, so the thread backend watches the deadline of each running
item with a timeout and, once it passes, gives up on that item (see
:meth:`~._engine.ThreadEngine._expire`). One heap and one thread per pool, started on the
first timed item; the thread shares the pool's lock (and so needs no lock of its own) and
exits once ``finished()`` says the pool is done.

Example::

    deadlines = Deadlines(lock, "pool-deadlines", expire=give_up, finished=done, closing=closing)
    deadlines.watch(unit, timeout=5.0)
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from ..._scheduler._units import Unit
from ..._signals import start_quietly

__all__ = ["Deadlines"]


class Deadlines:
    """Calls ``expire(unit)`` (without the lock) once a watched unit's deadline passes."""

    def __init__(
        self, lock: threading.Lock, name: str, *, expire: Callable[[Unit], None],
        finished: Callable[[], bool], closing: Callable[[], bool],
    ) -> None:  # fmt: skip
        self._lock, self._name = lock, name
        self._expire, self._finished, self._closing = expire, finished, closing
        self._cond = threading.Condition(lock)
        self._heap: list[tuple[float, int, Unit]] = []
        self._seq = itertools.count()  # ties: the heap never compares units
        self._thread: threading.Thread | None = None

    def watch(self, unit: Unit, timeout: float) -> None:
        """Expire ``unit`` ``timeout`` seconds from now (lock not held)."""
        with self._lock:
            heapq.heappush(self._heap, (time.monotonic() + timeout, next(self._seq), unit))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                start_quietly(self._thread)
            self._cond.notify()

    def wake(self) -> None:
        """Have the thread look at ``finished()`` again (lock held)."""
        self._cond.notify_all()

    def join(self) -> None:
        """Wait for the thread to exit (unless called from it)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        with self._lock:
            while not self._finished():
                if not self._heap:  # a closing pool is polled: its last thread may be stuck
                    self._cond.wait(0.5 if self._closing() else None)
                    continue
                at, _, unit = self._heap[0]
                left = at - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                self._lock.release()
                try:
                    self._expire(unit)
                finally:
                    self._lock.acquire()
