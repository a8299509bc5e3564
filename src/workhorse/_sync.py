"""Process-flavour locks and semaphores, shareable with any process at any time.

Every class here follows the :mod:`threading` contract -- signatures, exceptions and messages
-- and works across processes: it is built only from named kernel objects
(:class:`~workhorse._semlock.NamedSemaphore` and :class:`~workhorse._shm.Segment`), pickles to
their names (:class:`~workhorse._sharing.Shared`), and is one object per process. Blocking
waits go through ``NamedSemaphore.acquire``, so they honour timeouts and cancel scopes.

Dead holders. ``Lock`` and ``RLock`` record the pid of the holding process in shared memory
(``repr`` shows it). A lock held by a process that dies stays held: the kernel does not undo
a POSIX semaphore. A waiter never hangs because of it: ``acquire(timeout=t)`` returns False
after ``t`` seconds, and each time a blocking ``acquire`` has waited ``DEAD_HOLDER_CHECK``
seconds in vain it checks the holder, raising :class:`~workhorse.BrokenResourceError` naming
the dead pid (the protected state may be half-updated, so the lock is not handed over).
The uncontended path never checks. A holder that dies between taking the semaphore and
writing its pid (a few instructions) is not detected; timeouts still hold.

``Condition``, ``Event`` and ``Barrier`` live in :mod:`workhorse._condition`, built on these.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Any, Self

from . import _cancel
from ._errors import BrokenResourceError
from ._semlock import RECURSIVE_MUTEX, SEM_VALUE_MAX, SEMAPHORE, NamedSemaphore
from ._sharing import Shared, pid_alive
from ._shm import Segment
from ._timeouts import lock_timeout, semaphore_timeout

__all__ = ["DEAD_HOLDER_CHECK", "BoundedSemaphore", "Lock", "RLock", "Semaphore"]

#: Seconds a blocking acquire (or a notify awaiting a wake-up) waits before it looks for
#: a dead process.
DEAD_HOLDER_CHECK = 1.0

_pid = os.getpid()  # cached: the fast path writes it on every acquire


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


class _ContextManager:
    def acquire(self, blocking: bool = True, timeout: Any = -1) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class _BaseLock(Shared, _ContextManager):
    """A named semaphore plus the holder's pid in shared memory."""

    _kind = SEMAPHORE

    def __init__(self) -> None:
        self._setup(NamedSemaphore(1, 1, kind=self._kind), Segment.create(8))
        self._register()

    def _setup(self, sem: NamedSemaphore, seg: Segment) -> None:
        self._sem, self._seg = sem, seg
        self._holder = seg.buf.cast("q")  # [0]: pid of the holding process, 0 if none
        # The C SemLock's bound methods: the uncontended path is one C call each way.
        self._raw = sem._sem
        self._raw_acquire, self._raw_release = sem._sem.acquire, sem._sem.release

    def _shared_state(self) -> Any:
        return (self._sem, self._seg.name)

    @classmethod
    def _from_shared_state(cls, uid: str, state: Any) -> Self:
        self = cls.__new__(cls)
        self._setup(state[0], Segment.attach(state[1]))
        self._register(uid)
        return self

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock, blocking or not, with an optional timeout.

        Args:
            blocking: when False, return at once.
            timeout: seconds to wait at most; ``-1`` (the default) waits forever.

        Returns:
            True if the lock was acquired, False if the timeout expired.

        Raises:
            ValueError: a timeout with ``blocking=False``, or a negative timeout other than -1.
            OverflowError: a timeout above ``threading.TIMEOUT_MAX``.
            BrokenResourceError: the lock is held by a process that has died.
            Cancelled: the calling thread's cancel scope was cancelled while waiting.
        """
        if timeout == -1:  # the default: nothing to validate
            if self._raw_acquire(False):
                self._holder[0] = _pid
                return True
            if not blocking:
                return False
            t = None
        else:  # validate before trying: acquire(False, 1) is an error even on a free lock
            t = lock_timeout(blocking, timeout)
            if self._raw_acquire(False):
                self._holder[0] = _pid
                return True
            if t == 0.0:
                return False
        if not self._wait(t):
            return False
        self._holder[0] = _pid
        return True

    def _wait(self, timeout: float | None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if end is None else max(0.0, end - time.monotonic())
            step = DEAD_HOLDER_CHECK if left is None else min(DEAD_HOLDER_CHECK, left)
            if self._sem.acquire(step):
                return True
            if step >= DEAD_HOLDER_CHECK:
                self._check_holder()
            if left is not None and left <= step:
                return False

    def _check_holder(self) -> None:
        pid = self._holder[0]
        if pid and pid != _pid and not pid_alive(pid):
            raise BrokenResourceError(
                f"{self!r}: the process holding it (pid {pid}) has died; the state it protects "
                f"may be half-updated, so it cannot be acquired again"
            )

    @property
    def holder_pid(self) -> int | None:
        """The pid of the process holding the lock, or None (a snapshot, for diagnostics)."""
        pid = self._holder[0]
        return int(pid) if pid and self._sem.value() == 0 else None

    def _describe(self) -> str:
        if self._sem.value():
            return "unlocked"
        pid = self._holder[0]
        return f"locked by pid {pid}" if pid else "locked"

    def __repr__(self) -> str:
        return f"<workhorse.{type(self).__name__} {self._describe()}>"


class Lock(_BaseLock):
    """A mutual-exclusion lock shared by every process it is handed to.

    Any thread of any process may release it, as with :class:`threading.Lock`.
    If the holding process dies, the lock stays held; blocking ``acquire`` calls find the
    dead holder after :data:`DEAD_HOLDER_CHECK` seconds and raise
    :class:`~workhorse.BrokenResourceError`, and ``acquire(timeout=t)`` never waits longer
    than ``t``.

    Example::

        lock = Lock()
        Process(target=work, args=(lock,)).start()   # or q.put(lock), at any time
        with lock:
            ...

    Differences from the stdlib: it works across processes and can be pickled at any time
    (``multiprocessing.Lock`` only through inheritance); errors are :mod:`threading`'s
    (``RuntimeError`` on releasing an unlocked lock, where multiprocessing raises
    ``ValueError``; ``ValueError`` for ``acquire(False, 1)``, which multiprocessing accepts).
    ``holder_pid`` and the dead-holder error are additions.
    """

    def release(self) -> None:
        """Release the lock (from any thread or process).

        Raises:
            RuntimeError: the lock is not locked.
        """
        self._holder[0] = 0
        try:
            self._raw_release()
        except ValueError:
            raise RuntimeError("release unlocked lock") from None

    __enter__ = _BaseLock.acquire

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._holder[0] = 0
        try:
            self._raw_release()
        except ValueError:
            raise RuntimeError("release unlocked lock") from None

    def locked(self) -> bool:
        """Return True if the lock is held (by anyone)."""
        return self._sem.value() == 0

    # Condition protocol (the names threading.Condition uses).
    def _is_owned(self) -> bool:
        return self._holder[0] == _pid and self._sem.value() == 0

    def _release_save(self) -> int:
        self.release()
        return 1

    def _acquire_restore(self, state: int) -> None:
        with _cancel.shielded():
            self.acquire()


class RLock(_BaseLock):
    """A reentrant lock: the owning thread may acquire it again; release it as often.

    Ownership is per thread of a process. If the owning process dies, the lock behaves as a
    :class:`Lock` with a dead holder (see there).

    Example::

        rlock = RLock()
        with rlock:
            with rlock:   # same thread: no deadlock
                ...

    Differences from the stdlib: shared across processes and picklable at any time;
    releasing a lock the calling thread does not own raises ``RuntimeError`` as in
    :mod:`threading` (multiprocessing raises ``AssertionError``).
    """

    _kind = RECURSIVE_MUTEX

    def release(self) -> None:
        """Release one level of ownership.

        Raises:
            RuntimeError: the calling thread does not own the lock.
        """
        raw = self._raw
        if not raw._is_mine():
            raise RuntimeError("cannot release un-acquired lock")
        if raw._count() == 1:
            self._holder[0] = 0
        raw.release()

    __enter__ = _BaseLock.acquire

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _after_fork_in_child(self) -> None:
        self._sem.after_fork()  # the parent's threads own nothing here

    def _describe(self) -> str:
        text = super()._describe()
        return text + f" count={self._sem.count()}" if self._sem.is_mine() else text

    def _is_owned(self) -> bool:
        return self._sem.is_mine()

    def _release_save(self) -> int:
        count = self._sem.count()
        self._holder[0] = 0
        for _ in range(count):
            self._sem.release()
        return count

    def _acquire_restore(self, state: int) -> None:
        with _cancel.shielded():
            for _ in range(state):
                self.acquire()


class Semaphore(Shared, _ContextManager):
    """A counting semaphore shared by every process it is handed to.

    Example::

        slots = Semaphore(4)
        with slots:        # at most 4 holders across all processes
            ...

    Differences from the stdlib: works across processes, picklable at any time. The value is
    capped at ``SEM_VALUE_MAX`` (a ``ValueError`` beyond), and ``release(n)`` posts ``n``
    times rather than atomically. Errors follow :mod:`threading` (``ValueError`` for
    ``Semaphore(-1)``, where multiprocessing raises ``OSError``).
    """

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        if value > SEM_VALUE_MAX:
            raise ValueError(f"semaphore initial value must be <= {SEM_VALUE_MAX}")
        self._setup(NamedSemaphore(value, self._maxvalue(value)), value)
        self._register()

    def _maxvalue(self, value: int) -> int:
        return SEM_VALUE_MAX

    def _setup(self, sem: NamedSemaphore, initial: int) -> None:
        self._sem, self._initial = sem, initial
        self._raw_acquire, self._raw_release = sem._sem.acquire, sem._sem.release

    def _shared_state(self) -> Any:
        return (self._sem, self._initial)

    @classmethod
    def _from_shared_state(cls, uid: str, state: Any) -> Self:
        self = cls.__new__(cls)
        self._setup(*state)
        self._register(uid)
        return self

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Decrement the counter, waiting while it is zero.

        Args:
            blocking: when False, return at once.
            timeout: seconds to wait at most; None (the default) waits forever.

        Returns:
            True if decremented, False on timeout or a failed non-blocking call.

        Raises:
            ValueError: a timeout with ``blocking=False``.
            Cancelled: the calling thread's cancel scope was cancelled while waiting.
        """
        if not blocking and timeout is not None:
            semaphore_timeout(blocking, timeout)  # raises, as threading does before trying
        if self._raw_acquire(False):
            return True  # threading validates the timeout only when it has to wait
        t = semaphore_timeout(blocking, timeout)
        return t != 0.0 and self._sem.acquire(t)

    def release(self, n: int = 1) -> None:
        """Increment the counter by ``n``, waking up to ``n`` waiters.

        Raises:
            ValueError: ``n < 1``, or the value would pass its maximum.
        """
        if n == 1:
            self._raw_release()
            return
        if n < 1:
            raise ValueError("n must be one or more")
        for _ in range(n):
            self._raw_release()

    def get_value(self) -> int:
        """The current counter (a snapshot), as ``multiprocessing.Semaphore.get_value``."""
        return self._sem.value()

    def __repr__(self) -> str:
        return f"<workhorse.{type(self).__name__} value={self._sem.value()}>"


class BoundedSemaphore(Semaphore):
    """A semaphore whose value may never exceed its initial value.

    Example::

        sem = BoundedSemaphore(2)
        sem.release()   # ValueError: Semaphore released too many times

    Differences from the stdlib: as :class:`Semaphore`. The bound is checked by the kernel
    semaphore before each post; two processes over-releasing at the same instant can both
    pass the check (as in multiprocessing).
    """

    def _maxvalue(self, value: int) -> int:
        return value

    def release(self, n: int = 1) -> None:
        """Increment the counter by ``n``.

        Raises:
            ValueError: ``n < 1``, or the counter would exceed its initial value.
        """
        if n < 1:
            raise ValueError("n must be one or more")
        if self._sem.value() + n > self._initial:
            raise ValueError("Semaphore released too many times")
        try:
            for _ in range(n):
                self._sem.release()
        except ValueError:
            raise ValueError("Semaphore released too many times") from None

    def __repr__(self) -> str:
        return f"<workhorse.BoundedSemaphore value={self._sem.value()}/{self._initial}>"
