"""Thread ``Condition``: :class:`threading.Condition` re-implemented, made cancel-aware.

Its waits go through :func:`workhorse._cancel.block` inside a cancel scope; over a workhorse
lock it calls the lock's ownership protocol directly. See :mod:`workhorse._thread_sync`.
"""

from __future__ import annotations

import _thread
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from . import _cancel
from ._errors import Cancelled
from ._primitive import wait_for
from ._thread_lock import RLock, _LockLike, _state, _type_name
from ._timeouts import wait_timeout

__all__ = ["Condition"]

_T = TypeVar("_T")


class Condition(threading.Condition):
    """A condition variable, :class:`threading.Condition` with cancellation.

    Example::

        cond = Condition()
        with cond:
            cond.wait_for(lambda: ready, timeout=5)

    Differences from the stdlib: inside a cancel scope, :meth:`wait` raises
    :class:`~workhorse.Cancelled` once the scope is cancelled, *after* re-acquiring the lock
    (so ``with cond:`` releases it as usual). A waiter that leaves without using a
    notification it was chosen for (cancelled, or timed out at the same moment) does not
    swallow it: a timed-out waiter returns True, a cancelled one passes the wake-up on.
    Over a workhorse ``Lock``, only the thread holding the lock may ``wait``/``notify``.
    """

    def __init__(self, lock: _LockLike | None = None) -> None:
        # super().__init__ is not called: it would allocate an unused threading.RLock.
        self._lock: _LockLike = RLock() if lock is None else lock
        self._waiters: deque[_thread.LockType] = deque()
        # Locks that know their owner (ours and threading's RLock) say so; others get
        # the stdlib's fallbacks.
        self._owned: Callable[[], bool] = getattr(self._lock, "_is_owned", self._guess_owned)
        self._save: Callable[[], object] = getattr(self._lock, "_release_save", self._lock.release)
        self._restore: Callable[[object], None] = getattr(
            self._lock, "_acquire_restore", self._default_restore
        )
        self._enter: Callable[[], object] = getattr(self._lock, "__enter__", self._lock.acquire)
        self._exit: Callable[[], None] = self._lock.release
        if type(self._lock) is RLock:  # its methods only forward: call the C lock's
            inner: Any = self._lock._rlock  # the C RLock's private methods are untyped
            self._owned, self._save = inner._is_owned, inner._release_save
            self._restore, self._exit = inner._acquire_restore, inner.release

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the underlying lock (see :meth:`Lock.acquire`)."""
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        """Release the underlying lock."""
        self._lock.release()

    def __enter__(self) -> bool:
        return bool(self._enter())

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit()

    def __repr__(self) -> str:
        return f"<{_type_name(self)}({self._lock!r}, {len(self._waiters)})>"

    def _default_restore(self, _state: object) -> None:
        self._lock.acquire()

    def _guess_owned(self) -> bool:
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def _is_owned(self) -> bool:
        return self._owned()

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait until notified or ``timeout`` passes, and re-acquire it.

        Args:
            timeout: seconds to wait at most; ``None`` waits forever, negative is zero.

        Returns:
            False if the timeout passed, True otherwise.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
            OverflowError: ``timeout`` is larger than ``threading.TIMEOUT_MAX``.
            Cancelled: the calling thread's cancel scope was cancelled (lock re-acquired).
        """
        if not self._owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        wait = None if timeout is None else wait_timeout(timeout)
        scope = _state.scope
        if scope is not None and scope.cancelled:
            raise Cancelled(scope.reason)
        waiter = _thread.allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        saved = self._save()
        try:
            if scope is None:  # what block() would do, without its frames
                gotit = waiter.acquire(True, -1 if wait is None else wait)
            else:
                gotit = _cancel.block(
                    lambda step: waiter.acquire(True, -1 if step is None else step), wait
                )
        except BaseException:
            self._restore(saved)
            if not self._forget(waiter):
                self.notify(1)  # we were chosen but will not act on it: pass it on
            raise
        self._restore(saved)
        return gotit or not self._forget(waiter)

    def _forget(self, waiter: _thread.LockType) -> bool:
        """Drop an unwoken waiter; False if ``notify`` had already chosen it."""
        try:
            self._waiters.remove(waiter)
        except ValueError:
            return False
        return True

    def wait_for(self, predicate: Callable[[], _T], timeout: float | None = None) -> _T:
        """Wait until ``predicate()`` is true, or ``timeout`` seconds have passed.

        Returns:
            The last value of ``predicate()`` (falsy on timeout).

        Raises:
            RuntimeError: the calling thread does not hold the lock.
            Cancelled: the calling thread's cancel scope was cancelled (lock re-acquired).
        """
        return wait_for(self.wait, predicate, wait_timeout(timeout))

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiting threads; a no-op if none waits.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
        """
        if not self._owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        if self._waiters:
            self._wake(n)

    def _wake(self, n: int) -> None:
        """``notify(n)`` without the ownership check, for callers that hold the lock."""
        waiters = self._waiters
        while waiters and n > 0:
            waiter = waiters[0]
            try:
                waiter.release()
            except RuntimeError:
                pass  # gh-92530: released by an interrupted notify() that did not remove it
            else:
                n -= 1
            try:
                waiters.remove(waiter)
            except ValueError:
                pass

    def notify_all(self) -> None:
        """Wake up every waiting thread.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
        """
        self.notify(len(self._waiters))
