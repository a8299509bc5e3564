"""Locks, semaphores, events, conditions and barriers on a Dask cluster.

``Lock``, ``Semaphore``/``BoundedSemaphore`` and ``Event`` are Dask's own
(``distributed.Lock``, ``Semaphore``, ``Event``) behind the threading signatures and timeout
rules. Dask has no ``RLock``, ``Condition`` or ``Barrier``; they are built here from Dask's
primitives and follow the threading contract.

Differences from the local backends, all due to Dask:

* Every call is a round trip to the scheduler (about 1 ms on loopback, see
  ``docs/benchmarks.md``), against microseconds locally.
* Locks and semaphores are *leases*: the holding process refreshes them; if it dies, the
  scheduler frees them after ``distributed.scheduler.locks.lease-timeout`` (10 s on the
  embedded cluster, Dask's default 30 s elsewhere). A lock is thus never lost with its
  holder, but for that long nobody can take it.
* A lease belongs to the process that took it: ``release()`` from another process raises
  ``RuntimeError`` (threading lets any thread release a ``Lock``; here any thread *of the
  holding process* can). A ``Semaphore`` cannot be released beyond what was acquired
  (``ValueError``, like ``BoundedSemaphore``) and its value must be at least 1.

Example::

    with workhorse.dask() as cluster:
        lock = cluster.Lock()
        with lock:
            ...
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from threading import BrokenBarrierError
from typing import Any, TypeVar

from .._primitive import LockContext, wait_for
from .._timeouts import lock_timeout, semaphore_timeout, wait_timeout
from . import _extension
from ._shared import Shared

__all__ = ["Barrier", "BoundedSemaphore", "Condition", "Event", "Lock", "RLock", "Semaphore"]

T = TypeVar("T")
POLL = 0.001  # Dask treats timeout=0 as "already expired": the shortest real try


def _dask_timeout(timeout: float | None) -> float | None:
    return None if timeout is None else max(timeout, POLL)


class Lock(Shared, LockContext):
    """A cluster-wide ``threading.Lock`` (a ``distributed.Lock``: a lease, see the module).

    Example::

        lock = cluster.Lock()
        if lock.acquire(timeout=5):
            try:
                ...
            finally:
                lock.release()
    """

    kind = "lock"

    def __init__(self, *, client: Any = None, name: str | None = None) -> None:
        self._bind(name, client)

    def _attach(self, params: tuple[Any, ...]) -> None:
        from distributed import Lock as DaskLock

        client = self._client
        self._lock = DaskLock(self.name, scheduler_rpc=client.scheduler, loop=client.loop)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock; False if ``timeout`` seconds pass first (``-1``: no limit)."""
        wait = lock_timeout(blocking, timeout)
        return bool(self._lock.acquire(timeout=_dask_timeout(wait)))

    def release(self) -> None:
        """Give the lock back; ``RuntimeError`` if this process does not hold it."""
        try:
            self._lock.release()
        except RuntimeError:
            raise RuntimeError("release unlocked lock") from None

    def locked(self) -> bool:
        """Whether anyone holds the lock."""
        return bool(self._lock.get_value())


class RLock(Shared, LockContext):
    """A cluster-wide ``threading.RLock``: a Dask lock plus the owner thread and depth,
    kept in the (per-process) handle -- only the owner ever reads or changes them.

    Example::

        rlock = cluster.RLock()
        with rlock:
            with rlock:   # re-entered by the same thread
                ...
    """

    kind = "rlock"

    def __init__(self, *, client: Any = None, name: str | None = None) -> None:
        self._bind(name, client)

    def _attach(self, params: tuple[Any, ...]) -> None:
        self._inner = Lock(client=self._client, name=f"{self.name}-lock")
        self._owner: int | None = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock, or enter it once more if this thread holds it."""
        me = threading.get_ident()
        if self._owner == me:
            lock_timeout(blocking, timeout)
            self._count += 1
            return True
        if not self._inner.acquire(blocking, timeout):
            return False
        self._owner, self._count = me, 1
        return True

    def release(self) -> None:
        """Leave once; the lock is free after as many releases as acquires."""
        if self._owner != threading.get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if self._count == 0:
            self._owner = None
            self._inner.release()

    def _is_owned(self) -> bool:
        return self._owner == threading.get_ident()

    def _release_save(self) -> int:
        count, self._count, self._owner = self._count, 0, None
        self._inner.release()
        return count

    def _acquire_restore(self, count: int) -> None:
        self._inner.acquire()
        self._owner, self._count = threading.get_ident(), count


class Semaphore(Shared, LockContext):
    """A cluster-wide semaphore of ``value`` (>= 1) leases (a ``distributed.Semaphore``).

    Example::

        slots = cluster.Semaphore(2)
        with slots:   # at most two holders on the whole cluster
            ...
    """

    kind = "semaphore"

    def __init__(self, value: int = 1, *, client: Any = None, name: str | None = None) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"value must be an int, not {value!r}")
        if value < 1:
            raise ValueError("a Dask semaphore needs a value >= 1 (its leases)")
        self._value = value
        self._bind(name, client)

    def _params(self) -> tuple[Any, ...]:
        return (self._value,)

    def _attach(self, params: tuple[Any, ...]) -> None:
        from distributed import Semaphore as DaskSemaphore

        (self._value,) = params
        client = self._client
        self._sem = DaskSemaphore(
            self._value, self.name, scheduler_rpc=client.scheduler, loop=client.loop
        )

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a lease; False if ``timeout`` seconds pass first."""
        wait = semaphore_timeout(blocking, timeout)
        return bool(self._sem.acquire(timeout=_dask_timeout(wait)))

    def release(self, n: int = 1) -> None:
        """Give back ``n`` leases taken by this process (``ValueError`` beyond them)."""
        if n < 1:
            raise ValueError("n must be one or more")
        for _ in range(n):
            try:
                self._sem.release()
            except RuntimeError:
                raise ValueError("Semaphore released too many times") from None

    def get_value(self) -> int:
        """The number of free leases right now."""
        return self._value - int(self._sem.get_value())


class BoundedSemaphore(Semaphore):
    """A :class:`Semaphore`; on Dask every semaphore is bounded by its leases.

    Example::

        slots = cluster.BoundedSemaphore(3)
    """

    kind = "bounded-semaphore"


class Event(Shared):
    """A cluster-wide ``threading.Event`` (a ``distributed.Event``).

    Example::

        ready = cluster.Event()
        pool.submit(wait_for_it, ready)
        ready.set()
    """

    kind = "event"

    def __init__(self, *, client: Any = None, name: str | None = None) -> None:
        self._bind(name, client)

    def _attach(self, params: tuple[Any, ...]) -> None:
        from distributed import Event as DaskEvent

        self._event = DaskEvent(self.name, client=self._client)

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return bool(self._event.is_set())

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._event.set()

    def clear(self) -> None:
        """Reset the flag."""
        self._event.clear()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set; False if ``timeout`` seconds pass first."""
        wait = wait_timeout(timeout)
        return bool(self._event.wait(timeout=_dask_timeout(wait)))


class Condition(Shared, LockContext):
    """A cluster-wide ``threading.Condition`` over ``lock`` (default: a new :class:`RLock`).

    Built from Dask primitives: a ``Variable`` counts the waiters and a ``Queue`` carries
    wake-up tokens; both change only under the condition's lock, so ``notify(n)`` wakes at
    most ``n`` waiters and a notify with nobody waiting is lost, as with threading.

    Example::

        cond = cluster.Condition()
        with cond:
            cond.wait_for(lambda: state.get() == "ready", timeout=10)
    """

    kind = "condition"

    def __init__(
        self, lock: Lock | RLock | None = None, *, client: Any = None, name: str | None = None
    ) -> None:
        self._lock = lock if lock is not None else RLock(client=client)
        self._bind(name, client)
        self._waiting.set(0)

    def _params(self) -> tuple[Any, ...]:
        return (self._lock,)

    def _attach(self, params: tuple[Any, ...]) -> None:
        from distributed import Queue, Variable

        (self._lock,) = params
        self._waiting = Variable(f"{self.name}-waiting", client=self._client)
        self._tokens = Queue(f"{self.name}-tokens", client=self._client)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the underlying lock."""
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        """Release the underlying lock."""
        self._lock.release()

    def _owned(self) -> bool:
        if isinstance(self._lock, RLock):
            return self._lock._is_owned()
        return self._lock.locked()  # a plain Lock has no owner: the best available check

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait for a notify (or ``timeout``), re-acquire; True if
        notified."""
        if not self._owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        wait = wait_timeout(timeout)
        self._waiting.set(int(self._waiting.get()) + 1)
        if isinstance(self._lock, RLock):
            saved = self._lock._release_save()
        else:
            self._lock.release()
        woken = self._take(wait)
        if isinstance(self._lock, RLock):
            self._lock._acquire_restore(saved)
        else:
            self._lock.acquire()
        if not woken:  # under the lock again: a notify may have picked us meanwhile
            woken = self._take(0.0)
            if not woken:
                self._waiting.set(int(self._waiting.get()) - 1)
        return woken

    def _take(self, timeout: float | None) -> bool:
        # through workhorse's scheduler extension: a wait that runs out is not an ERROR there
        token = _extension.queue_get(self._client, self._tokens.name, _dask_timeout(timeout))
        return token is not _extension.NOTHING

    def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        """Wait until ``predicate()`` is true (or ``timeout``); returns its last value."""
        return wait_for(self.wait, predicate, wait_timeout(timeout))

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters (the lock must be held)."""
        if not self._owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        waiting = int(self._waiting.get())
        woken = min(n, waiting)
        if woken:
            self._waiting.set(waiting - woken)
            for _ in range(woken):
                self._tokens.put(1)

    def notify_all(self) -> None:
        """Wake every waiter (the lock must be held)."""
        self.notify(1 << 30)


class Barrier(Shared):
    """A cluster-wide ``threading.Barrier`` for ``parties`` callers, on a :class:`Condition`.

    Its state (generation, arrivals, broken) is a Dask ``Variable`` changed only under the
    condition's lock. ``action`` runs in the caller that completes a round.

    Example::

        barrier = cluster.Barrier(3, timeout=30)
        # in each of three tasks:
        barrier.wait()
    """

    kind = "barrier"

    def __init__(
        self,
        parties: int,
        action: Callable[[], object] | None = None,
        timeout: float | None = None,
        *,
        client: Any = None,
        name: str | None = None,
    ) -> None:
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._parties, self._action, self._timeout = parties, action, timeout
        self._cond = Condition(Lock(client=client), client=client)
        self._bind(name, client)
        self._state.set((0, 0, False, -1))

    def _params(self) -> tuple[Any, ...]:
        return (self._parties, self._action, self._timeout, self._cond)

    def _attach(self, params: tuple[Any, ...]) -> None:
        from distributed import Variable

        self._parties, self._action, self._timeout, self._cond = params
        self._state = Variable(f"{self.name}-state", client=self._client)

    @property
    def parties(self) -> int:
        """The number of callers a round needs."""
        return int(self._parties)

    @property
    def n_waiting(self) -> int:
        """How many callers wait in the current round."""
        return int(self._state.get()[1])

    @property
    def broken(self) -> bool:
        """Whether the barrier is broken."""
        return bool(self._state.get()[2])

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the round to fill; returns this caller's arrival index (0 to
        ``parties - 1``). ``BrokenBarrierError`` if the barrier breaks or times out."""
        if timeout is None:
            timeout = self._timeout
        with self._cond:
            # (generation, arrivals, broken, last generation released by a full round)
            generation, arrived, broken, released = self._state.get()
            if broken:
                raise BrokenBarrierError
            if arrived + 1 == self._parties:
                try:
                    if self._action is not None:
                        self._action()
                except BaseException:
                    self._break()
                    raise
                self._state.set((generation + 1, 0, False, generation))
                self._cond.notify_all()
                return int(arrived)
            self._state.set((generation, arrived + 1, False, released))

            def moved() -> bool:
                state = self._state.get()
                return bool(state[0] != generation or state[2])

            if not self._cond.wait_for(moved, timeout):
                self._break()
                raise BrokenBarrierError
            if self._state.get()[3] != generation:  # broken or reset, not released
                raise BrokenBarrierError
            return int(arrived)

    def _break(self) -> None:
        generation, _, _, released = self._state.get()
        self._state.set((generation, 0, True, released))
        self._cond.notify_all()

    def abort(self) -> None:
        """Break the barrier: every waiter (and later caller) gets ``BrokenBarrierError``."""
        with self._cond:
            self._break()

    def reset(self) -> None:
        """Back to a fresh round; current waiters get ``BrokenBarrierError``."""
        with self._cond:
            generation, arrived, _, released = self._state.get()
            if arrived:
                self._break()
            self._state.set((generation + 1, 0, False, released))
