"""Thread synchronisation primitives: :mod:`threading`'s, made cancel-aware.

``Lock``, ``RLock``, ``Condition``, ``Semaphore``, ``BoundedSemaphore``, ``Event`` and
``Barrier`` keep :mod:`threading`'s signatures, exceptions and messages. What they add: every
wait goes through :func:`workhorse._cancel.block`, so a thread inside a cancel scope (a
task-group member) that blocks in, or enters, a blocking call raises
:class:`~workhorse.Cancelled` within one slice of ``scope.cancel()``. Outside a scope the whole
timeout goes to the C lock in one call, as in :mod:`threading`.

Structure: ``Lock`` and ``RLock`` wrap the C locks (which cannot be subclassed) and record
their owner, so ``Condition`` can check ownership. ``Condition`` re-implements
:class:`threading.Condition` on top of them; ``Semaphore``, ``Event`` and ``Barrier`` subclass
their :mod:`threading` twins (``isinstance`` and type annotations keep working) but override
every method, so nothing depends on the stdlib's private attributes. Their internal lock,
``_InternalLock``, is never cancellable: ``release``/``set``/``notify`` must work in a cancelled
thread's ``finally`` block. Blocking calls check the scope explicitly on entry instead.

Speed: the uncontended paths cost about what :mod:`threading`'s do. They read the thread's
scope with one attribute lookup (``_cancel.state.scope``), validate a timeout only when one is
given, and ``Semaphore``/``Event`` update their state under the raw C lock (``_mutex``) with
no ``Condition`` in the way: only a call that must wait goes through the condition.
"""

from __future__ import annotations

import _thread
import re
import threading
from collections import deque
from collections.abc import Callable
from threading import BrokenBarrierError, get_ident
from types import TracebackType
from typing import Any, Protocol, TypeVar

from . import _cancel
from ._errors import Cancelled
from ._timeouts import Deadline, lock_timeout, semaphore_timeout, wait_timeout

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

_T = TypeVar("_T")
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
        owner = self._owner
        if not self._block.locked():
            state = "unlocked"
        else:
            state = "locked" if owner is None else f"locked owner={owner}"
        return f"<{_type_name(self)} {state} at {id(self):#x}>"


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
        return f"<{_type_name(self)} {state} owner={owner} count={count} at {id(self):#x}>"


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
        deadline = Deadline(wait_timeout(timeout))
        result = predicate()
        while not result:
            remaining = deadline.remaining()
            if remaining is not None and remaining <= 0:
                break
            self.wait(remaining)
            result = predicate()
        return result

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
        deadline = Deadline(wait)
        with self._cond:
            while self._value == 0:
                remaining = deadline.remaining()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
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


# Barrier states, as in threading: filling, draining, resetting, broken.
_FILLING, _DRAINING, _RESETTING, _BROKEN = 0, 1, -1, -2


class Barrier(threading.Barrier):
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
        self._state = _FILLING
        self._count = 0

    def __repr__(self) -> str:
        if self.broken:
            return f"<{_type_name(self)} at {id(self):#x}: broken>"
        return f"<{_type_name(self)} at {id(self):#x}: waiters={self.n_waiting}/{self.parties}>"

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
            while self._state in (_DRAINING, _RESETTING):  # the previous cycle still leaves
                self._cond.wait()
            if self._state != _FILLING:
                raise BrokenBarrierError
            index = self._count
            self._count += 1
            try:
                if index + 1 == self._parties:
                    self._trip()
                else:
                    self._wait(wait)
                return index
            finally:
                self._count -= 1
                if self._count == 0 and self._state in (_DRAINING, _RESETTING):
                    self._state = _FILLING  # the last one out lets the next cycle in
                    self._cond.notify_all()

    def _trip(self) -> None:
        try:
            if self._action:
                self._action()
            self._state = _DRAINING
            self._cond.notify_all()
        except BaseException:
            self._break()
            raise

    def _wait(self, wait: float | None) -> None:
        try:
            released = self._cond.wait_for(lambda: self._state != _FILLING, wait)
        except BaseException:  # Cancelled, KeyboardInterrupt: the others must not hang
            self._break()
            raise
        if not released:
            self._break()
            raise BrokenBarrierError
        if self._state < 0:
            raise BrokenBarrierError

    def reset(self) -> None:
        """Return the barrier to its initial state; current waiters get BrokenBarrierError."""
        with self._cond:
            if self._count > 0:
                if self._state in (_FILLING, _BROKEN):
                    self._state = _RESETTING  # cleared by the last waiter to leave
            else:
                self._state = _FILLING
            self._cond.notify_all()

    def abort(self) -> None:
        """Break the barrier: current and future waiters get BrokenBarrierError."""
        with self._cond:
            self._break()

    def _break(self) -> None:
        self._state = _BROKEN
        self._cond.notify_all()

    @property
    def parties(self) -> int:
        """The number of threads needed to pass the barrier."""
        return self._parties

    @property
    def n_waiting(self) -> int:
        """The number of threads waiting in the current cycle."""
        return self._count if self._state == _FILLING else 0

    @property
    def broken(self) -> bool:
        """True if the barrier is broken."""
        return self._state == _BROKEN
