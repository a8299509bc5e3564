"""Process-flavour ``Condition``, ``Event`` and ``Barrier``, built on :mod:`workhorse._sync`.

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

``Barrier`` is :class:`threading.Barrier`'s algorithm (3.11 to 3.13 share it) with its state
and count in shared memory and its condition a process :class:`Condition`, as
``multiprocessing.synchronize.Barrier`` does.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

from . import _cancel, _serialize
from ._semlock import SEM_VALUE_MAX, NamedSemaphore
from ._sharing import Shared, pid_alive
from ._shm import Segment
from ._sync import DEAD_HOLDER_CHECK, Lock, RLock, _BaseLock
from ._timeouts import wait_timeout

__all__ = ["Barrier", "Condition", "Event"]

_T = TypeVar("_T")

_TABLE = 32  # pid slots for sleepers (processes waiting at once that survive a crash check)


class Condition(Shared):
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
    otherwise). Ownership is checked as in :mod:`threading` (``RuntimeError``), not with
    ``assert`` as in multiprocessing. ``notify`` waits, holding the lock, until the waiters
    it wakes have left their wait; a waiter killed meanwhile delays it by about
    :data:`DEAD_HOLDER_CHECK` seconds. Which waiters ``notify(n)`` wakes is not FIFO.
    """

    def __init__(self, lock: Lock | RLock | None = None) -> None:
        if lock is None:
            lock = RLock()
        if not isinstance(lock, _BaseLock):
            raise TypeError(f"Condition needs a workhorse Lock or RLock, not {type(lock)!r}")
        seg = Segment.create(8 * (2 + 2 * _TABLE))
        self._setup(lock, NamedSemaphore(0, SEM_VALUE_MAX), NamedSemaphore(0, SEM_VALUE_MAX), seg)
        self._register()

    def _setup(self, lock: Any, wake: NamedSemaphore, ack: NamedSemaphore, seg: Segment) -> None:
        self._lock: Lock | RLock = lock
        self._wake, self._ack, self._seg = wake, ack, seg
        # [0]: sleepers not yet woken; [1]: end of the used (pid, sleepers of that pid) pairs
        # that follow. Read and written under the lock only.
        self._state = seg.buf.cast("q")

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the underlying lock (see :meth:`Lock.acquire`)."""
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        """Release the underlying lock (see :meth:`Lock.release`)."""
        self._lock.release()

    def _shared_state(self) -> Any:
        return (self._lock, self._wake, self._ack, self._seg.name)

    @classmethod
    def _from_shared_state(cls, uid: str, state: Any) -> Self:
        self = cls.__new__(cls)
        self._setup(state[0], state[1], state[2], Segment.attach(state[3]))
        self._register(uid)
        return self

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release()

    def __repr__(self) -> str:
        return f"<workhorse.Condition({self._lock!r}), waiters={self._state[0]}>"

    def _table(self, pid: int, delta: int) -> None:
        # Slots are (pid, count) pairs from index 2; [1] is one past the last slot ever used,
        # so the usual scan (one or a few processes) stops after a pair or two.
        s = self._state
        end = int(s[1]) or 2
        free = 0
        for i in range(2, end, 2):
            if s[i] == pid and s[i + 1] > 0:
                s[i + 1] += delta
                return
            if not free and s[i + 1] <= 0:
                free = i
        if delta <= 0:
            return
        if not free and end < 2 + 2 * _TABLE:
            free, s[1] = end, end + 2
        if free:  # else the table is full: this sleeper goes unchecked
            s[free], s[free + 1] = pid, delta

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait for a notify or the timeout, then re-take the lock.

        The lock is always held again when this returns or raises (also on Cancelled).

        Args:
            timeout: seconds to wait at most; None waits forever.

        Returns:
            False if the timeout expired, True otherwise.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
            Cancelled: the calling thread's cancel scope was cancelled while waiting.
        """
        if not self._lock._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        t = wait_timeout(timeout)
        self._state[0] += 1
        self._table(os.getpid(), 1)
        saved = self._lock._release_save()
        woken = False
        try:
            woken = self._wake.acquire(t)
        finally:
            self._ack.release()
            self._lock._acquire_restore(saved)
            self._table(os.getpid(), -1)
        return woken

    def wait_for(self, predicate: Callable[[], _T], timeout: float | None = None) -> _T:
        """Wait until ``predicate()`` is true or the timeout expires; return its last value.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
        """
        end: float | None = None
        waittime = timeout
        result = predicate()
        while not result:
            if waittime is not None:
                if end is None:
                    end = time.monotonic() + waittime
                else:
                    waittime = end - time.monotonic()
                    if waittime <= 0:
                        break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` of the threads (in any process) waiting on this condition.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
        """
        if not self._lock._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
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
            self._await_acks(k)
        while self._wake.try_acquire():  # tokens of sleepers that timed out meanwhile
            pass

    def _await_acks(self, k: int) -> None:
        s, me = self._state, os.getpid()
        while k > 0:
            if self._ack.acquire(DEAD_HOLDER_CHECK):
                k -= 1
                continue
            dead = 0
            for i in range(2, int(s[1]), 2):
                if s[i + 1] > 0 and s[i] != me and not pid_alive(s[i]):
                    dead += s[i + 1]
                    s[i + 1] = 0
            gone = min(dead, k)  # dead sleepers stand in for the acks they will never send
            k -= gone
            s[0] = max(0, s[0] - (dead - gone))

    def notify_all(self) -> None:
        """Wake every thread waiting on this condition.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
        """
        self.notify(SEM_VALUE_MAX)


class Event(Shared):
    """A flag that threads in any process can set, clear and wait for.

    Example::

        ready = Event()
        Process(target=worker, args=(ready,)).start()
        ready.wait(timeout=10)

    Differences from the stdlib: shared across processes, picklable at any time. ``wait``
    on a set event reads shared memory only (no lock, no system call).
    """

    def __init__(self) -> None:
        self._setup(Condition(Lock()), Segment.create(8))
        self._register()

    def _setup(self, cond: Condition, seg: Segment) -> None:
        self._cond, self._seg = cond, seg
        self._flag = seg.buf.cast("q")

    def _shared_state(self) -> Any:
        return (self._cond, self._seg.name)

    @classmethod
    def _from_shared_state(cls, uid: str, state: Any) -> Self:
        self = cls.__new__(cls)
        self._setup(state[0], Segment.attach(state[1]))
        self._register(uid)
        return self

    def is_set(self) -> bool:
        """Return True if the flag is set."""
        return bool(self._flag[0])

    def set(self) -> None:
        """Set the flag and wake every waiter, in every process."""
        with self._cond:
            self._flag[0] = 1
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
        if self._flag[0]:
            return True
        with self._cond:
            return bool(self._flag[0]) or self._cond.wait(timeout)

    def __repr__(self) -> str:
        return f"<workhorse.Event {'set' if self._flag[0] else 'unset'}>"


class Barrier(Shared, threading.Barrier):
    """A barrier for a fixed number of parties, which may be threads of any processes.

    Args:
        parties: how many ``wait`` calls release the barrier (at least 1).
        action: called by one of the parties once per pass, just before they are released;
            pickled like a task (a lambda or closure works too).
        timeout: default timeout of :meth:`wait`.

    Example::

        barrier = Barrier(3, action=lambda: print("all here"))
        for _ in range(2):
            Process(target=lambda: barrier.wait()).start()
        index = barrier.wait(timeout=10)   # 0, 1 or 2

    Differences from the stdlib: shared across processes, picklable at any time; the action
    is pickled with cloudpickle, so it must be picklable that way (its result is ignored).
    ``wait`` raises :class:`threading.BrokenBarrierError` exactly as :mod:`threading`.
    ``Barrier(0)`` raises ``ValueError`` on every Python version (3.13's behaviour).
    """

    def __init__(
        self, parties: int, action: Callable[[], object] | None = None, timeout: float | None = None
    ) -> None:
        if parties < 1:
            raise ValueError("parties must be > 0")
        action_bytes = None if action is None else _serialize.dumps(action, what="action")
        self._setup(parties, action_bytes, timeout, Condition(Lock()), Segment.create(8))
        self._register()

    def _setup(
        self,
        parties: int,
        action_bytes: bytes | None,
        timeout: float | None,
        cond: Condition,
        seg: Segment,
    ) -> None:
        self._parties, self._timeout, self._cond, self._seg = parties, timeout, cond, seg
        self._action_bytes = action_bytes
        self._action = None if action_bytes is None else _serialize.loads(action_bytes)
        self._array = seg.buf.cast("i")  # [0]: state, [1]: count, as threading.Barrier's

    def _shared_state(self) -> Any:
        return (self._parties, self._action_bytes, self._timeout, self._cond, self._seg.name)

    @classmethod
    def _from_shared_state(cls, uid: str, state: Any) -> Self:
        self = cls.__new__(cls)
        self._setup(state[0], state[1], state[2], state[3], Segment.attach(state[4]))
        self._register(uid)
        return self

    # threading.Barrier reads and writes these two attributes; they live in shared memory.
    @property
    def _state(self) -> int:
        return int(self._array[0])

    @_state.setter
    def _state(self, value: int) -> None:
        self._array[0] = value

    @property
    def _count(self) -> int:
        return int(self._array[1])

    @_count.setter
    def _count(self, value: int) -> None:
        self._array[1] = value

    def wait(self, timeout: float | None = None) -> int:
        """Wait until ``parties`` calls have reached the barrier; return this call's index.

        Args:
            timeout: seconds to wait at most (default: the barrier's ``timeout``); expiry
                breaks the barrier.

        Returns:
            An index from 0 to ``parties - 1``, different for each party of a pass.

        Raises:
            threading.BrokenBarrierError: the barrier is or becomes broken (abort, reset,
                timeout, a failing action).
            Cancelled: the calling thread's cancel scope was cancelled while waiting.
        """
        return super().wait(timeout)

    def reset(self) -> None:
        """Return the barrier to its empty state; current waiters get BrokenBarrierError."""
        super().reset()

    def abort(self) -> None:
        """Break the barrier: current and future ``wait`` calls raise BrokenBarrierError."""
        super().abort()

    def __repr__(self) -> str:
        if self.broken:
            return "<workhorse.Barrier broken>"
        return f"<workhorse.Barrier waiters={self.n_waiting}/{self.parties}>"
