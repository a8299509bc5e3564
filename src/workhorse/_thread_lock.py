"""Thread locks: :mod:`threading`'s ``Lock`` and ``RLock``, made cancel-aware.

They wrap the C locks (which cannot be subclassed) and record their owner, so that a
:class:`~workhorse._thread_condition.Condition` can check ownership. Inside a cancel scope a
blocking ``acquire`` goes through :func:`workhorse._cancel.block`; outside one the whole timeout
goes to the C lock in one call, as in :mod:`threading`. See :mod:`workhorse._thread_sync`.
"""

from __future__ import annotations

import _thread
import re
from collections.abc import Callable
from threading import get_ident
from types import TracebackType
from typing import Protocol

from . import _cancel
from ._timeouts import lock_timeout

__all__ = ["Lock", "RLock"]

_state = _cancel.state  # ``_state.scope``: the calling thread's cancel scope, or None


class _LockLike(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...


def _type_name(obj: object) -> str:
    """``workhorse.threads.Lock`` for our classes, the real module for user subclasses."""
    cls = type(obj)
    module = "workhorse.threads" if cls.__module__.startswith("workhorse.") else cls.__module__
    return f"{module}.{cls.__qualname__}"


def _acquire_in_scope(
    acquire: Callable[[bool, float], bool], blocking: bool, timeout: float
) -> bool:
    """Slow path of ``Lock``/``RLock.acquire`` inside a cancel scope."""
    wait = lock_timeout(blocking, timeout)
    if not blocking:  # a non-blocking call is not a cancellation point
        return acquire(False, -1)
    return _cancel.block(lambda step: acquire(True, -1 if step is None else step), wait)


class Lock:
    """A primitive lock, :class:`threading.Lock` with cancellation and a known owner.

    Example::

        lock = Lock()
        with lock:
            shared.append(1)

    Differences from the stdlib: inside a cancel scope, a blocking :meth:`acquire` raises
    :class:`~workhorse.Cancelled` once the scope is cancelled. The lock records the thread
    that acquired it, so a ``Condition`` over it rejects ``wait``/``notify`` from any thread
    but the holder (the stdlib's only checks that *someone* holds it). As in the stdlib, any
    thread may :meth:`release` it.
    """

    __slots__ = ("__weakref__", "_block", "_owner")

    def __init__(self) -> None:
        self._block = _thread.allocate_lock()
        self._owner: int | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock, blocking or not, with an optional timeout.

        Args:
            blocking: wait for the lock if it is held (the default) or return at once.
            timeout: with ``blocking``, seconds to wait at most; ``-1`` waits forever.

        Returns:
            True if the lock was acquired.

        Raises:
            ValueError: a timeout with ``blocking=False``, or a negative timeout but ``-1``.
            OverflowError: ``timeout`` is larger than ``threading.TIMEOUT_MAX``.
            Cancelled: the calling thread's cancel scope was cancelled.
        """
        if _state.scope is None:  # the C lock validates the arguments itself
            got = self._block.acquire(blocking, timeout)
        else:
            got = _acquire_in_scope(self._block.acquire, blocking, timeout)
        if got:
            self._owner = get_ident()
        return got

    def release(self) -> None:
        """Release the lock; any thread may do it.

        Raises:
            RuntimeError: the lock is not locked.
        """
        self._owner = None  # before the release, so a new owner is never overwritten
        self._block.release()

    def locked(self) -> bool:
        """Return True if the lock is held by some thread."""
        return self._block.locked()

    # The C lock's old names (still public in threading).
    acquire_lock = acquire
    release_lock = release
    locked_lock = locked

    def __enter__(self) -> bool:
        # acquire() inlined: ``with lock:`` is the commonest use, one Python frame saved.
        if _state.scope is None:
            self._block.acquire()
        else:
            _acquire_in_scope(self._block.acquire, True, -1)
        self._owner = get_ident()
        return True

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._owner = None
        self._block.release()

    # The protocol threading.Condition uses: ownership check, full release and re-acquire.
    def _is_owned(self) -> bool:
        return self._owner == get_ident() and self._block.locked()

    def _release_save(self) -> None:
        self.release()

    def _acquire_restore(self, _state: None) -> None:
        self._block.acquire()  # never cancellable: a Condition must get its lock back
        self._owner = get_ident()

    def _at_fork_reinit(self) -> None:
        self._block._at_fork_reinit()  # type: ignore[attr-defined]
        self._owner = None

    def __repr__(self) -> str:
        # threading's shape ("<locked _thread.lock object at 0x...>"), with the owner added
        state = "locked" if self._block.locked() else "unlocked"
        owner = "" if self._owner is None else f"owner={self._owner} "
        return f"<{state} {_type_name(self)} object {owner}at {id(self):#x}>"


class _InternalLock(Lock):
    """The lock inside Semaphore/Event/Barrier/Queue: held briefly, never cancellable."""

    __slots__ = ()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._block.acquire(blocking, timeout):
            self._owner = get_ident()
            return True
        return False

    def __enter__(self) -> bool:
        self._block.acquire()
        self._owner = get_ident()
        return True


_RLOCK_STATE = re.compile(r"owner=(\d+) count=(\d+)")


class RLock:
    """A reentrant lock, :class:`threading.RLock` with cancellation.

    Example::

        lock = RLock()
        with lock, lock:  # the owner may acquire it again
            pass

    Differences from the stdlib: inside a cancel scope, a blocking :meth:`acquire` raises
    :class:`~workhorse.Cancelled` once the scope is cancelled.
    """

    __slots__ = ("__weakref__", "_rlock")

    def __init__(self) -> None:
        self._rlock = _thread.RLock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock, or raise its recursion level if this thread holds it already.

        Arguments, result and errors are those of :meth:`Lock.acquire`.
        """
        if _state.scope is None:
            return self._rlock.acquire(blocking, timeout)
        return _acquire_in_scope(self._rlock.acquire, blocking, timeout)

    def release(self) -> None:
        """Lower the recursion level; unlock the lock when it reaches zero.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
        """
        self._rlock.release()

    def __enter__(self) -> bool:
        if _state.scope is None:
            return self._rlock.acquire()
        return _acquire_in_scope(self._rlock.acquire, True, -1)

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._rlock.release()

    def _is_owned(self) -> bool:
        return bool(self._rlock._is_owned())  # type: ignore[attr-defined]

    def _release_save(self) -> tuple[int, int]:
        state: tuple[int, int] = self._rlock._release_save()  # type: ignore[attr-defined]
        return state

    def _acquire_restore(self, state: tuple[int, int]) -> None:
        self._rlock._acquire_restore(state)  # type: ignore[attr-defined]

    def _at_fork_reinit(self) -> None:
        self._rlock._at_fork_reinit()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        inner = repr(self._rlock)  # the C type knows owner and count without locking
        found = _RLOCK_STATE.search(inner)
        owner, count = found.groups() if found else ("?", "?")
        state = "locked" if inner.startswith("<locked") else "unlocked"
        return f"<{state} {_type_name(self)} object owner={owner} count={count} at {id(self):#x}>"
