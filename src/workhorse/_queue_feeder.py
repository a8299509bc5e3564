"""The per-process feeder of an unbounded process queue (see :mod:`._queue`).

An unbounded ``put`` never blocks: what does not fit the ring goes to this process's
backlog, and a daemon thread moves it into the ring as room appears. As with
:class:`multiprocessing.Queue`, the thread is flushed at exit unless
``cancel_join_thread()`` was called.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque

from ._ring import Backlog, Ring, discard_frames

__all__ = ["Feeder", "feed", "finalize_close", "finalize_join"]


class Feeder:
    """This process's backlog of an unbounded queue and the daemon thread draining it."""

    __slots__ = ("__weakref__", "backlog", "cancelled", "closed", "cond", "ring", "thread")

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        self.backlog: Backlog = deque()
        self.cond = threading.Condition(threading.Lock())
        self.thread: threading.Thread | None = None
        self.closed = self.cancelled = False


def feed(feeder: Feeder) -> None:
    """The feeder thread: flush the backlog into the ring until closed and empty."""
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
            discard_frames(backlog)
            backlog.clear()


def finalize_close(feeder: Feeder) -> None:
    """Let the feeder thread end once its backlog is flushed."""
    with feeder.cond:
        feeder.closed = True
        feeder.cond.notify()


def finalize_join(feeder_ref: weakref.ref[Feeder]) -> None:
    """At exit: wait for the feeder, or after ``cancel_join_thread()`` drop its backlog."""
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
