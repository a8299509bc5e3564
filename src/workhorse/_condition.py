"""Process-flavour ``Condition`` and ``Event``, built on :mod:`workhorse._sync`.

Condition algorithm. Prior art: ``multiprocessing.synchronize.Condition`` (sleeper and
woken counts plus a wake semaphore), with the counts in shared memory under the condition's
lock. A waiter, holding the lock, bumps the sleeper count and its process's entry in a pid
table, releases the lock and waits on ``wake``; however it leaves (woken, timeout,
Cancelled) it posts ``ack`` and then re-takes the lock. ``notify(n)``, lock held, first
retires the acks of sleepers that left by timeout, posts ``k = min(n, sleepers)`` wake
tokens and waits for ``k`` acks, so a token cannot be stolen by a thread that starts waiting
after the notify; then it takes back tokens nobody took (their sleepers timed out). A
sleeper killed mid-wait never acks: after each :data:`~workhorse._sync.DEAD_HOLDER_CHECK`
seconds without an ack, the notifier retires the table entries of dead pids in its place.

``Event`` is a flag in shared memory and a ``Condition`` on a :class:`RobustLock`, so that a
process killed inside it leaves it working.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from . import _cancel
from ._errors import NotHeldError
from ._pid_table import PidTable
from ._primitive import SegmentBacked, wait_for
from ._robust_lock import RobustLock
from ._semlock import SEM_VALUE_MAX, NamedSemaphore
from ._shm import Segment
from ._sync import DEAD_HOLDER_CHECK, Lock, RLock, _BaseLock, check_slice
from ._timeouts import Deadline, wait_timeout

__all__ = ["Condition", "Event"]

_T = TypeVar("_T")

_TABLE = 32  # pid slots for sleepers (processes waiting at once that survive a crash check)
# notify() stops awaiting acks after this many DEAD_HOLDER_CHECK slices with no ack and no
# dead sleeper found (a woken live sleeper acks within microseconds unless starved).
_IDLE_SLICES = 3


class Condition(SegmentBacked):
    """A condition variable whose waiters and notifiers may live in different processes.

    Args:
        lock: a workhorse :class:`Lock` or :class:`RLock` (default: a new ``RLock``).

    Example::

        cond = Condition()
        with cond:                       # consumer, in any process
            cond.wait_for(lambda: ready(), timeout=5)
        with cond:                       # producer
            make_ready(); cond.notify_all()

    Differences from the stdlib: the lock must be a workhorse process lock (``TypeError``
    otherwise). Ownership is checked even under ``python -O`` (multiprocessing uses
    ``assert``): the :class:`~workhorse.NotHeldError` raised is an ``AssertionError``, as
    multiprocessing's, and a ``RuntimeError``, as threading's. ``notify`` waits, holding the
    lock, until the waiters it wakes have left their wait; a waiter killed meanwhile delays
    it by about :data:`DEAD_HOLDER_CHECK` seconds. Which waiters ``notify(n)`` wakes is not FIFO.
    """

    def __init__(self, lock: Lock | RLock | RobustLock | None = None) -> None:
        if lock is None:
            lock = RLock()
        if not isinstance(lock, (_BaseLock, RobustLock)):
            raise TypeError(f"Condition needs a workhorse Lock or RLock, not {type(lock)!r}")
        seg = Segment.create(8 * (1 + PidTable.words(_TABLE)))
        self._setup(lock, NamedSemaphore(0, SEM_VALUE_MAX), NamedSemaphore(0, SEM_VALUE_MAX), seg)
        self._register()

    def _setup(self, lock: Any, wake: NamedSemaphore, ack: NamedSemaphore, seg: Segment) -> None:
        self._lock: Lock | RLock | RobustLock = lock
        self._wake, self._ack, self._seg = wake, ack, seg
        # [0]: sleepers not yet woken, then their processes (pid, sleepers of that pid).
        # Read and written under the lock only.
        self._state = seg.buf.cast("q")
        self._sleepers = PidTable(self._state, 1, _TABLE)

    def acquire(
        self, block: bool = True, timeout: float | None = None, *, blocking: bool | None = None
    ) -> bool:
        """Acquire the underlying lock (see :meth:`Lock.acquire`)."""
        return self._lock.acquire(block, timeout, blocking=blocking)

    def release(self) -> None:
        """Release the underlying lock (see :meth:`Lock.release`)."""
        self._lock.release()

    def _setup_args(self) -> tuple[Any, ...]:
        return (self._lock, self._wake, self._ack)

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        if t is not None and not self._lock._is_owned():
            # wait() could not take the lock back (its holder died: BrokenResourceError):
            # releasing it here would hand the dead holder's half-updated state on.
            return
        self._lock.release()

    def __repr__(self) -> str:
        return f"<Condition({self._lock!r}, {self._state[0]})>"

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait for a notify or the timeout, then re-take the lock.

        The lock is always held again when this returns or raises (also on Cancelled).

        Args:
            timeout: seconds to wait at most; None waits forever.

        Returns:
            False if the timeout expired, True otherwise.

        Raises:
            NotHeldError: the calling thread does not hold the lock.
            Cancelled: the calling thread's cancel scope was cancelled while waiting.
        """
        if not self._lock._is_owned():
            raise NotHeldError("must acquire() condition before using wait()")
        t = wait_timeout(timeout)
        self._state[0] += 1
        self._sleepers.add(os.getpid(), 1)
        saved = self._lock._release_save()
        woken = False
        try:
            woken = self._wake.acquire(t)
        finally:
            self._ack.release()
            self._lock._acquire_restore(saved)
            self._sleepers.add(os.getpid(), -1)
        return woken

    def wait_for(self, predicate: Callable[[], _T], timeout: float | None = None) -> _T:
        """Wait until ``predicate()`` is true or the timeout expires; return its last value.

        Raises:
            NotHeldError: the calling thread does not hold the lock.
        """
        return wait_for(self.wait, predicate, wait_timeout(timeout))

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` of the threads (in any process) waiting on this condition.

        Raises:
            NotHeldError: the calling thread does not hold the lock.
        """
        if not self._lock._is_owned():
            raise NotHeldError("lock is not owned")
        s = self._state
        while self._ack.try_acquire():  # sleepers that left by timeout since the last notify
            s[0] = max(0, s[0] - 1)
        k = min(n, s[0])
        if k <= 0:
            return
        s[0] -= k
        for _ in range(k):
            self._wake.release()
        with _cancel.shielded():
            exact = self._await_acks(k)
        # Tokens of sleepers that timed out meanwhile: taken back, so that no later wait()
        # wakes for nothing. Not when a sleeper died: the count is then an estimate, and a
        # token taken back could be a live sleeper's (a lost wake-up; a spare one is only a
        # spurious wake-up, which the Condition contract allows).
        while exact and self._wake.try_acquire():
            pass

    def _await_acks(self, k: int) -> bool:
        """Wait for ``k`` acks; False if a sleeper died or no live one could send them."""
        s = self._state
        exact, idle = True, 0
        while k > 0:
            if self._ack.acquire(DEAD_HOLDER_CHECK):
                k, idle = k - 1, 0
                continue
            dead = self._sleepers.retire_dead(os.getpid())
            if dead:
                exact = False
                gone = min(dead, k)  # dead sleepers stand in for the acks they will never send
                k -= gone
                s[0] = max(0, s[0] - (dead - gone))
                continue
            # Nobody may be able to send the acks still awaited: a process killed inside
            # wait() between counting itself and entering the table (holding the lock, so
            # the next holder recovers it), or live sleepers that all timed out and now
            # wait for the lock this notifier holds. Waiting on would never end.
            idle += 1
            live = self._sleepers.total()
            if live == 0:  # no sleeper at all: every token left is stale
                s[0] = 0
                return True
            if idle >= _IDLE_SLICES:
                s[0] = min(s[0], live)
                return False
        return exact

    def notify_all(self) -> None:
        """Wake every thread waiting on this condition.

        Raises:
            NotHeldError: the calling thread does not hold the lock.
        """
        self.notify(SEM_VALUE_MAX)


class Event(SegmentBacked):
    """A flag that threads in any process can set, clear and wait for.

    Example::

        ready = Event()
        Process(target=worker, args=(ready,)).start()
        ready.wait(timeout=10)

    Differences from the stdlib: shared across processes, picklable at any time. ``wait``
    on a set event reads shared memory only (no lock, no system call). A process killed
    inside any of its methods leaves it working: its internal lock is a robust mutex (see
    :mod:`workhorse._robust_lock`), and ``wait(timeout)`` returns within its timeout.
    """

    def __init__(self) -> None:
        self._setup(Condition(RobustLock()), Segment.create(16))
        self._register()

    def _setup(self, cond: Condition, seg: Segment) -> None:
        self._cond, self._seg = cond, seg
        # [0]: the flag; [1]: how many times set() has run, so that a waiter woken by a
        # set() returns True even if clear() came first (threading's contract), and a stray
        # wake-up (a notifier killed mid-notify leaves one) does not count as a set().
        self._flag = seg.buf.cast("q")

    def _setup_args(self) -> tuple[Any, ...]:
        return (self._cond,)

    def is_set(self) -> bool:
        """Return True if the flag is set."""
        return bool(self._flag[0])

    def set(self) -> None:
        """Set the flag and wake every waiter, in every process."""
        with self._cond:
            self._flag[0] = 1
            self._flag[1] += 1
            self._cond.notify_all()

    def clear(self) -> None:
        """Reset the flag; later ``wait`` calls block until ``set`` is called again."""
        with self._cond:
            self._flag[0] = 0

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set or the timeout expires.

        Args:
            timeout: seconds to wait at most; None waits forever, 0 polls.

        Returns:
            True if the flag was set (or ``set`` was called while waiting), else False.

        Raises:
            Cancelled: the calling thread's cancel scope was cancelled while waiting.
        """
        flag = self._flag
        if flag[0]:
            return True
        t = wait_timeout(timeout)
        deadline = Deadline(t)
        if not self._cond.acquire(True, t):
            return bool(flag[0])
        try:
            sets = flag[1]
            while not flag[0] and flag[1] == sets:
                # Slices: a wake-up lost to a process killed inside set() costs at most one.
                step = check_slice(deadline)
                if step <= 0:
                    return False
                self._cond.wait(step)
            return True
        finally:
            self._cond.release()

    def __repr__(self) -> str:
        return f"<Event at {id(self):#x} {'set' if self._flag[0] else 'unset'}>"
