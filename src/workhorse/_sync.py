"""Process-flavour locks and semaphores, shareable with any process at any time.

Every class here follows the :mod:`multiprocessing` contract -- ``acquire(block=True,
timeout=None)``, the reprs -- and accepts :mod:`threading`'s too (``blocking=``, ``timeout=-1``);
where the two libraries raise different errors, the error is both (:class:`NotHeldError`,
a ``RuntimeError``, ``ValueError`` and ``AssertionError``). It works across processes: it is
built only from named kernel objects
(:class:`~workhorse._semlock.NamedSemaphore` and :class:`~workhorse._shm.Segment`), pickles to
their names (:class:`~workhorse._sharing.Shared`), and is one object per process. Blocking
waits go through ``NamedSemaphore.acquire``, so they honour timeouts and cancel scopes.

Dead holders. ``Lock`` and ``RLock`` record the pid of the holding process in shared memory
(``holder_pid``). A lock held by a process that dies stays held, as with the stdlib: the
kernel does not undo a POSIX semaphore. ``acquire(timeout=t)`` returns False after ``t``
seconds, as the stdlib's does. Where the stdlib would wait forever -- a blocking ``acquire``
without a timeout -- each ``DEAD_HOLDER_CHECK`` seconds in vain it checks the holder and
raises :class:`~workhorse.BrokenResourceError` naming the dead pid (the protected state may
be half-updated, so the lock is not handed over). The uncontended path never checks. A holder
that dies between taking the semaphore and writing its pid (a few instructions) is not
detected; timeouts still hold.

``Condition``, ``Event`` and ``Barrier`` live in :mod:`workhorse._condition`, built on these.
"""

from __future__ import annotations

import os
import threading
from multiprocessing import current_process
from typing import Any, Self

from . import _cancel
from ._errors import BrokenResourceError, NotHeldError
from ._primitive import LockContext, NonRecursiveLock, SegmentBacked
from ._semlock import RECURSIVE_MUTEX, SEM_VALUE_MAX, SEMAPHORE, NamedSemaphore
from ._sharing import Shared, pid_alive
from ._shm import Segment
from ._timeouts import Deadline, process_lock_timeout

__all__ = ["DEAD_HOLDER_CHECK", "BoundedSemaphore", "Lock", "RLock", "Semaphore", "check_slice"]

#: Seconds a blocking acquire (or a notify awaiting a wake-up) waits before it looks for
#: a dead process.
DEAD_HOLDER_CHECK = 1.0

_pid = os.getpid()  # cached: the fast path writes it on every acquire


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


def check_slice(deadline: Deadline) -> float:
    """The next wait towards ``deadline``: at most :data:`DEAD_HOLDER_CHECK` seconds, so
    that the waiter can look for dead processes in between; 0 once the deadline passed."""
    left = deadline.remaining()
    return DEAD_HOLDER_CHECK if left is None else min(left, DEAD_HOLDER_CHECK)


class _BadValue(ValueError, OSError):
    """A semaphore's initial value out of range: threading says ``ValueError``,
    multiprocessing ``OSError``; this is both."""


class _BaseLock(SegmentBacked, LockContext):
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

    def _setup_args(self) -> tuple[Any, ...]:
        return (self._sem,)

    def acquire(
        self, block: bool = True, timeout: float | None = None, *, blocking: bool | None = None
    ) -> bool:
        """Acquire the lock, blocking or not, with an optional timeout.

        Args:
            block: when False, return at once (``blocking=``, threading's name, works too).
            timeout: seconds to wait at most; ``None`` (or ``-1``) waits forever; ignored
                when not blocking, as by multiprocessing.

        Returns:
            True if the lock was acquired, False if the timeout expired.

        Raises:
            OverflowError: a timeout above ``threading.TIMEOUT_MAX``.
            BrokenResourceError: waiting without a timeout on a lock whose holder died.
            Cancelled: the calling thread's cancel scope was cancelled while waiting.
        """
        if timeout is not None and not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__}")
        if self._raw_acquire(False):
            self._holder[0] = _pid
            return True
        t = process_lock_timeout(block if blocking is None else blocking, timeout)
        if t == 0.0 or not self._wait(t):
            return False
        self._holder[0] = _pid
        return True

    __enter__ = acquire  # the Python frame of LockContext.__enter__ saved

    def _wait(self, timeout: float | None) -> bool:
        if timeout is not None:  # a timed wait returns False on time, as the stdlib's does
            return self._sem.acquire(timeout)
        while True:  # where the stdlib would wait forever, a dead holder is an error
            if self._sem.acquire(DEAD_HOLDER_CHECK):
                return True
            self._check_holder()

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

    def _owner(self) -> str:
        """Who holds it, in multiprocessing's words (its ``repr``)."""
        raw = self._raw
        if raw._is_mine():
            name = current_process().name
            if threading.current_thread() is not threading.main_thread():
                name += "|" + threading.current_thread().name
            return name
        if self._sem.value():
            return "None"
        return "SomeOtherThread" if raw._count() > 0 else "SomeOtherProcess"


class Lock(_BaseLock, NonRecursiveLock):
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
    (``multiprocessing.Lock`` only through inheritance). ``holder_pid``, threading's argument
    names and the dead-holder error are additions.
    """

    def release(self) -> None:
        """Release the lock (from any thread or process).

        Raises:
            NotHeldError: the lock is not locked (a ``ValueError``, as multiprocessing's, and a
                ``RuntimeError``, as threading's).
        """
        self._holder[0] = 0
        try:
            self._raw_release()
        except ValueError:
            raise NotHeldError("semaphore or lock released too many times") from None

    def __repr__(self) -> str:
        return f"<Lock(owner={self._owner()})>"

    def locked(self) -> bool:
        """Return True if the lock is held (by anyone)."""
        return self._sem.value() == 0

    def _is_owned(self) -> bool:
        return self._holder[0] == _pid and self._sem.value() == 0


class RLock(_BaseLock):
    """A reentrant lock: the owning thread may acquire it again; release it as often.

    Ownership is per thread of a process. If the owning process dies, the lock behaves as a
    :class:`Lock` with a dead holder (see there).

    Example::

        rlock = RLock()
        with rlock:
            with rlock:   # same thread: no deadlock
                ...

    Differences from the stdlib: shared across processes and picklable at any time.
    """

    _kind = RECURSIVE_MUTEX

    def release(self) -> None:
        """Release one level of ownership.

        Raises:
            NotHeldError: the calling thread does not own the lock (an ``AssertionError``, as
                multiprocessing's, and a ``RuntimeError``, as threading's).
        """
        raw = self._raw
        if not raw._is_mine():
            raise NotHeldError("attempt to release recursive lock not owned by thread")
        if raw._count() == 1:
            self._holder[0] = 0
        raw.release()

    def _after_fork_in_child(self) -> None:
        self._sem.after_fork()  # the parent's threads own nothing here

    def __repr__(self) -> str:
        owner = self._owner()
        count = self._raw._count() if owner not in ("None", "SomeOtherProcess") else 0
        return f"<RLock({owner}, {count})>"

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


class Semaphore(Shared, LockContext):
    """A counting semaphore shared by every process it is handed to.

    Example::

        slots = Semaphore(4)
        with slots:        # at most 4 holders across all processes
            ...

    Differences from the stdlib: works across processes, picklable at any time. The value is
    capped at ``SEM_VALUE_MAX``; ``release(n)`` (threading's) posts ``n`` times rather than
    atomically.
    """

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise _BadValue("semaphore initial value must be >= 0")
        if value > SEM_VALUE_MAX:
            raise _BadValue(f"semaphore initial value must be <= {SEM_VALUE_MAX}")
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

    def acquire(
        self, block: bool = True, timeout: float | None = None, *, blocking: bool | None = None
    ) -> bool:
        """Decrement the counter, waiting while it is zero; arguments as :meth:`Lock.acquire`.

        Returns:
            True if decremented, False on timeout or a failed non-blocking call.
        """
        if self._raw_acquire(False):
            return True
        t = process_lock_timeout(block if blocking is None else blocking, timeout)
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
        return f"<{type(self).__name__}(value={self._sem.value()})>"


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
        return f"<BoundedSemaphore(value={self._sem.value()}, maxvalue={self._initial})>"
