"""Thread synchronisation primitives: :mod:`threading`'s, made cancel-aware.

``Lock``, ``RLock``, ``Condition``, ``Semaphore``, ``BoundedSemaphore``, ``Event`` and
``Barrier`` keep :mod:`threading`'s signatures, exceptions and messages. What they add: every
wait goes through :func:`workhorse._cancel.block`, so a thread inside a cancel scope (a
task-group member) that blocks in, or enters, a blocking call raises
:class:`~workhorse.Cancelled` within one slice of ``scope.cancel()``. Outside a scope the whole
timeout goes to the C lock in one call, as in :mod:`threading`.

Structure: ``Lock`` and ``RLock`` (:mod:`._thread_lock`) wrap the C locks (which cannot be
subclassed) and record their owner, so ``Condition`` (:mod:`._thread_condition`) can check
ownership; it re-implements :class:`threading.Condition` on top of them. ``Semaphore``,
``Event`` and ``Barrier`` (here; the barrier's pass logic is :mod:`._barrier_cycle`, shared
with the process barrier) subclass their :mod:`threading` twins (``isinstance`` and type
annotations keep working) but override every method, so nothing depends on the stdlib's
private attributes. This module exports all seven. Their internal lock,
``_InternalLock``, is never cancellable: ``release``/``set``/``notify`` must work in a cancelled
thread's ``finally`` block. Blocking calls check the scope explicitly on entry instead.

Speed: the uncontended paths cost about what :mod:`threading`'s do. They read the thread's
scope with one attribute lookup (``_cancel.state.scope``), validate a timeout only when one is
given, and ``Semaphore``/``Event`` update their state under the raw C lock (``_mutex``) with
no ``Condition`` in the way: only a call that must wait goes through the condition.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from threading import BrokenBarrierError
from types import TracebackType

from . import _cancel
from ._barrier_cycle import DRAINING, FILLING, RESETTING, BarrierCycle
from ._errors import Cancelled
from ._primitive import wait_for
from ._thread_condition import Condition
from ._thread_lock import Lock, RLock, _InternalLock, _state, _type_name
from ._timeouts import semaphore_timeout, wait_timeout

__all__ = [
    "Barrier",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "Condition",
    "Event",
    "Lock",
    "RLock",
    "Semaphore",
]


class Semaphore(threading.Semaphore):
    """A counting semaphore, :class:`threading.Semaphore` with cancellation.

    Example::

        slots = Semaphore(4)
        with slots:  # at most four threads at a time in here
            download(url)

    Differences from the stdlib: inside a cancel scope, a blocking :meth:`acquire` raises
    :class:`~workhorse.Cancelled` once the scope is cancelled. Timeouts are validated on entry
    (``OverflowError`` above ``threading.TIMEOUT_MAX`` even if the semaphore is free).
    """

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        lock = _InternalLock()
        self._cond = Condition(lock)
        self._mutex = lock._block  # the same lock, raw: for the paths that never wait
        self._value = value

    def __repr__(self) -> str:
        return f"<{_type_name(self)} at {id(self):#x}: value={self._value}>"

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Decrement the counter, waiting while it is zero.

        Args:
            blocking: wait if the counter is zero (the default), or return False at once.
            timeout: with ``blocking``, seconds to wait at most; ``None`` waits forever.

        Returns:
            True if the counter was decremented.

        Raises:
            ValueError: a timeout with ``blocking=False``.
            Cancelled: the calling thread's cancel scope was cancelled.
        """
        if timeout is None and blocking is True:  # the defaults: nothing to validate
            wait = None
        else:
            wait = semaphore_timeout(blocking, timeout)
        if blocking:
            scope = _state.scope
            if scope is not None and scope.cancelled:
                raise Cancelled(scope.reason)
        with self._mutex:
            if self._value:
                self._value -= 1
                return True
        if wait == 0:
            return False
        with self._cond:
            if not wait_for(self._cond.wait, lambda: self._value, wait):
                return False
            self._value -= 1
            return True

    def __enter__(self, blocking: bool = True, timeout: float | None = None) -> bool:
        return self.acquire(blocking, timeout)

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def release(self, n: int = 1) -> None:
        """Increment the counter by ``n`` and wake up to ``n`` waiting threads.

        Raises:
            ValueError: ``n`` is less than one (or, for a ``BoundedSemaphore``, the counter
                would exceed its initial value).
        """
        if n < 1:
            raise ValueError("n must be one or more")
        with self._mutex:
            self._check_release(n)
            self._value += n
            if self._cond._waiters:
                self._cond._wake(n)

    def _check_release(self, n: int) -> None:
        """Refuse to release ``n`` (called with the lock held); a hook for the bounded kind."""


class BoundedSemaphore(Semaphore, threading.BoundedSemaphore):
    """A semaphore that refuses to be released above its initial value.

    Example::

        pool = BoundedSemaphore(2)
        pool.acquire()
        pool.release()
        pool.release()  # ValueError: Semaphore released too many times

    Differences from the stdlib: those of :class:`Semaphore`.
    """

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._initial_value = value

    def __repr__(self) -> str:
        return f"<{_type_name(self)} at {id(self):#x}: value={self._value}/{self._initial_value}>"

    def _check_release(self, n: int) -> None:
        if self._value + n > self._initial_value:
            raise ValueError("Semaphore released too many times")


class Event(threading.Event):
    """A flag threads can wait for, :class:`threading.Event` with cancellation.

    Example::

        ready = Event()
        # in a worker: ready.set()
        if not ready.wait(timeout=5):
            raise TimeoutError("worker did not start")

    Differences from the stdlib: inside a cancel scope, :meth:`wait` raises
    :class:`~workhorse.Cancelled` once the scope is cancelled, even if the flag is set.
    """

    def __init__(self) -> None:
        lock = _InternalLock()
        self._cond = Condition(lock)
        self._mutex = lock._block  # the same lock, raw: for the paths that never wait
        self._flag = False

    def __repr__(self) -> str:
        status = "set" if self._flag else "unset"
        return f"<{_type_name(self)} at {id(self):#x}: {status}>"

    def is_set(self) -> bool:
        """Return True if the flag is set."""
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiting thread."""
        with self._mutex:
            self._flag = True
            waiters = self._cond._waiters
            if waiters:
                self._cond._wake(len(waiters))

    def clear(self) -> None:
        """Reset the flag, so that :meth:`wait` blocks again."""
        with self._mutex:
            self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set, or ``timeout`` seconds have passed.

        Args:
            timeout: seconds to wait at most; ``None`` waits forever, negative is zero.

        Returns:
            True if the flag was set (always, unless the timeout passed).

        Raises:
            OverflowError: ``timeout`` is larger than ``threading.TIMEOUT_MAX``.
            Cancelled: the calling thread's cancel scope was cancelled.
        """
        wait = None if timeout is None else wait_timeout(timeout)
        scope = _state.scope
        if scope is not None and scope.cancelled:
            raise Cancelled(scope.reason)
        if self._flag:
            return True
        with self._cond:
            return self._flag or self._cond.wait(wait)


class Barrier(BarrierCycle, threading.Barrier):
    """A cyclic barrier for a fixed number of threads, :class:`threading.Barrier` with
    cancellation.

    Example::

        start = Barrier(3)
        # in each of three threads:
        index = start.wait(timeout=10)  # 0, 1 or 2; BrokenBarrierError if one gave up

    Differences from the stdlib: inside a cancel scope, :meth:`wait` raises
    :class:`~workhorse.Cancelled` once the scope is cancelled, and the barrier is broken for
    the other parties exactly as if the wait had timed out (so is any other exception, such
    as ``KeyboardInterrupt``, that interrupts a waiting party). ``parties < 1`` is a
    ``ValueError`` on every Python, as on 3.13.
    """

    def __init__(
        self, parties: int, action: Callable[[], None] | None = None, timeout: float | None = None
    ) -> None:
        if parties < 1:
            raise ValueError("parties must be > 0")
        self._cond = Condition(_InternalLock())
        self._action = action
        self._timeout = timeout
        self._parties = parties
        self._state = FILLING
        self._count = 0

    def _repr_name(self) -> str:
        return _type_name(self)

    def wait(self, timeout: float | None = None) -> int:
        """Wait until ``parties`` threads have called ``wait``, then release them all.

        Args:
            timeout: seconds to wait at most; ``None`` uses the barrier's default timeout.

        Returns:
            An index from 0 to ``parties - 1``, different for each thread of a cycle.

        Raises:
            BrokenBarrierError: the barrier is or became broken (timeout, abort, reset, or
                another party cancelled), or the action raised.
            Cancelled: the calling thread's cancel scope was cancelled (barrier broken).
        """
        wait = wait_timeout(self._timeout if timeout is None else timeout)
        _cancel.checkpoint()
        with self._cond:
            while self._state in (DRAINING, RESETTING):  # the previous cycle still leaves
                self._cond.wait()
            if self._state != FILLING:
                raise BrokenBarrierError
            return self._take_part(wait)

    def _arrive(self, delta: int) -> None:
        self._count += delta

    def _wait(self, wait: float | None) -> None:
        try:
            released = self._cond.wait_for(lambda: self._state != FILLING, wait)
        except BaseException:  # Cancelled, KeyboardInterrupt: the others must not hang
            self._break()
            raise
        if not released:
            self._break()
            raise BrokenBarrierError
        if self._state < 0:
            raise BrokenBarrierError
