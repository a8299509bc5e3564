"""The internal lock of ``Event`` and ``Barrier``: a robust mutex that no dead process keeps.

The user-facing :class:`~workhorse._sync.Lock` is a semaphore (any thread may release it,
as with the stdlib), so a holder that dies stays the holder, and one killed between taking
the semaphore and writing its pid cannot even be named. That is the right contract for a
user's lock, whose protected state only the user can judge, but not for the few words an
``Event`` or a ``Barrier`` keeps: their own code can repair those. So their lock is a glibc
robust mutex (:class:`~workhorse._semlock.RobustMutex`): the kernel records the owner with
the acquisition itself and hands the mutex on when the owner dies, to a locker told so
(``EOWNERDEAD``), which runs the primitive's ``on_owner_dead`` repair while holding it.
Only the thread that locked it may unlock it, which is how those primitives use it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from . import _cancel
from ._errors import BrokenResourceError, NotHeldError
from ._primitive import NonRecursiveLock, SegmentBacked
from ._semlock import EOWNERDEAD, ETIMEDOUT, MUTEX_BYTES, RobustMutex
from ._shm import Segment
from ._timeouts import process_lock_timeout

__all__ = ["RobustLock"]

_FOREVER = 1e9  # seconds: RobustMutex.timedlock waits in slices, so this only bounds a loop


class RobustLock(SegmentBacked, NonRecursiveLock):
    """A process-shared, non-recursive lock whose dead owner hands it on.

    ``on_owner_dead`` (set per process by the primitive using it) is called, lock held, by
    whichever acquire finds that the previous owner died holding it.

    Example::

        lock = RobustLock()
        with lock:
            ...   # a process killed here leaves the lock to the next acquirer
    """

    def __init__(self) -> None:
        seg = Segment.create(MUTEX_BYTES + 16)
        self._setup(seg, create=True)
        self._register()

    def _setup(self, seg: Segment, *, create: bool = False) -> None:
        self._seg = seg
        self._mutex = RobustMutex(seg.buf[:MUTEX_BYTES], create=create)
        # [0]: pid of the holder, [1]: its native thread id (0, 0 when free). Written by the
        # holder only; for ownership checks and diagnostics.
        self._holder = seg.buf[MUTEX_BYTES : MUTEX_BYTES + 16].cast("q")
        self.on_owner_dead: Callable[[], None] | None = None

    def acquire(
        self, block: bool = True, timeout: float | None = None, *, blocking: bool | None = None
    ) -> bool:
        """Take the lock; False if not blocking or the timeout expired first.

        Raises:
            Cancelled: the calling thread's cancel scope was cancelled while waiting.
        """
        mutex = self._mutex
        rc = mutex.trylock()
        if rc not in (0, EOWNERDEAD):
            t = process_lock_timeout(block if blocking is None else blocking, timeout)
            if t == 0.0:
                return False
            got = [rc]

            def attempt(step: float | None) -> bool:
                got[0] = mutex.timedlock(_FOREVER if step is None else step)
                return got[0] != ETIMEDOUT

            if not _cancel.block(attempt, t):
                return False
            rc = got[0]
        if rc == EOWNERDEAD:
            mutex.consistent()
        elif rc:
            raise BrokenResourceError(f"{self!r}: pthread_mutex_lock failed (error {rc})")
        self._holder[0], self._holder[1] = os.getpid(), threading.get_native_id()
        if rc == EOWNERDEAD and self.on_owner_dead is not None:
            self.on_owner_dead()
        return True

    def release(self) -> None:
        """Release the lock (the thread holding it only).

        Raises:
            NotHeldError: the calling thread does not hold it.
        """
        if not self._is_owned():
            raise NotHeldError("release of a lock not held by this thread")
        self._holder[0] = self._holder[1] = 0
        self._mutex.unlock()

    def __repr__(self) -> str:
        pid = int(self._holder[0])
        return f"<RobustLock({'free' if not pid else f'held by pid {pid}'})>"

    def _is_owned(self) -> bool:
        return self._holder[1] == threading.get_native_id() and self._holder[0] == os.getpid()
