"""Named POSIX semaphores, and the robust mutex under the queues' rings.

``_multiprocessing.SemLock`` is the stdlib's C wrapper of ``sem_open``. The stdlib unlinks the
name at once under ``fork`` and refuses to pickle a SemLock outside of process start-up; here
the name stays linked for as long as the creating process holds the object, so any process
can open it by name at any time (that is what makes the primitives first-class).

Lifetime: the creator unlinks the name when its object is garbage collected or the process
exits normally. The name is also registered with multiprocessing's resource tracker (before
the semaphore is created), which unlinks it if the creator is killed; the name says who owns
it (see :mod:`._sharing`). Processes that opened the semaphore keep using it after
the name is unlinked; only *new* openers need the name, so a primitive must be handed to
another process while its creator still holds it.
"""

from __future__ import annotations

import _multiprocessing
import ctypes
import os
import time
import weakref
from typing import Any

from . import _cancel
from ._sharing import forget, new_name, owner_prefix

__all__ = [
    "EOWNERDEAD",
    "MUTEX_BYTES",
    "RECURSIVE_MUTEX",
    "SEMAPHORE",
    "SEM_VALUE_MAX",
    "NamedSemaphore",
    "RobustMutex",
]

RECURSIVE_MUTEX, SEMAPHORE = 0, 1
SEM_VALUE_MAX: int = _multiprocessing.SemLock.SEM_VALUE_MAX


def _unlink(name: str, creator: int) -> None:
    if os.getpid() != creator:
        return  # a forked child's copy: the name belongs to the creator
    try:
        _multiprocessing.sem_unlink(name)
    except OSError:
        return
    forget(name, "semaphore")


class NamedSemaphore:
    """A counting semaphore (or recursive mutex) that any process can open by name.

    ``acquire`` honours the calling thread's cancel scope (see :mod:`workhorse._cancel`).

    Example::

        sem = NamedSemaphore(1, 1)
        child_copy = pickle.loads(pickle.dumps(sem))  # opens the same kernel semaphore
    """

    __slots__ = ("__weakref__", "_sem", "kind", "maxvalue", "name")

    def __init__(self, value: int, maxvalue: int, *, kind: int = SEMAPHORE) -> None:
        self.kind, self.maxvalue = kind, maxvalue
        self.name = new_name(owner_prefix("l"), "semaphore")
        try:
            self._sem = _multiprocessing.SemLock(kind, value, maxvalue, self.name, False)
        except BaseException:
            forget(self.name, "semaphore")
            raise
        weakref.finalize(self, _unlink, self.name, os.getpid())

    @classmethod
    def open(cls, name: str, kind: int, maxvalue: int) -> NamedSemaphore:
        """Open an existing semaphore by name (raises ``FileNotFoundError`` if it is gone)."""
        self = cls.__new__(cls)
        self.kind, self.maxvalue, self.name = kind, maxvalue, name
        self._sem = _multiprocessing.SemLock._rebuild(0, kind, maxvalue, name)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (NamedSemaphore.open, (self.name, self.kind, self.maxvalue))

    def acquire(self, timeout: float | None = None) -> bool:
        """Decrement, waiting up to ``timeout`` seconds (``None``: forever)."""
        if self._sem.acquire(False):
            return True
        if timeout is not None and timeout <= 0:
            return False
        sem = self._sem
        return _cancel.block(lambda t: bool(sem.acquire(True, t)), timeout)

    def try_acquire(self) -> bool:
        """Decrement if that does not block."""
        return bool(self._sem.acquire(False))

    def release(self) -> None:
        """Increment; ``ValueError`` if that would pass ``maxvalue``."""
        self._sem.release()

    def value(self) -> int:
        """The current count (a snapshot)."""
        return int(self._sem._get_value())

    def is_mine(self) -> bool:
        """For a recursive mutex: held by the calling thread of this process."""
        return bool(self._sem._is_mine())

    def count(self) -> int:
        """For a recursive mutex: recursion depth held by the calling thread."""
        return int(self._sem._count())

    def after_fork(self) -> None:
        """Forget the recursive-mutex owner inherited from the parent."""
        self._sem._after_fork()


# -- a robust process-shared mutex in shared memory --------------------------------------------
#
# A POSIX semaphore cannot say who holds it, and writing the holder's pid next to it is not
# atomic with taking it: a process killed in between leaves it taken by nobody, for good. A
# glibc *robust* mutex records its owner's thread id in the lock word with the acquisition
# itself, and the kernel marks it when that thread dies (the robust list), so the next
# ``lock`` returns ``EOWNERDEAD``: the mutex is then held by the caller, who repairs the data
# it protects and calls ``pthread_mutex_consistent``. Driven through ctypes, no C extension.
# ``trylock``/``unlock`` go through ``PyDLL`` (no GIL release: they never block, and that
# halves the call's cost); the timed wait goes through ``CDLL``, which releases the GIL.

EOWNERDEAD, ENOTRECOVERABLE, EBUSY, ETIMEDOUT = 130, 131, 16, 110
#: Bytes reserved for a ``pthread_mutex_t`` (40 on x86-64 glibc, 48 on aarch64).
MUTEX_BYTES = 64
_PTHREAD_PROCESS_SHARED, _PTHREAD_MUTEX_ROBUST = 1, 1
_SLICE = 0.05  # a blocked lock wakes this often to run signal handlers (Ctrl-C)


_Timespec = ctypes.c_long * 2  # struct timespec: seconds, nanoseconds
_Mutex = ctypes.c_char * MUTEX_BYTES


_fast = ctypes.PyDLL(None)
_slow = ctypes.CDLL(None)
_trylock_fn = _fast.pthread_mutex_trylock
_unlock_fn = _fast.pthread_mutex_unlock
_consistent_fn = _fast.pthread_mutex_consistent
_clocklock_fn = getattr(_slow, "pthread_mutex_clocklock", None)  # glibc >= 2.30
_timedlock_fn = _slow.pthread_mutex_timedlock


class RobustMutex:
    """A process-shared robust mutex living in a shared buffer (``MUTEX_BYTES`` bytes).

    :meth:`trylock` and :meth:`timedlock` return 0, ``EOWNERDEAD`` (acquired; the previous
    owner died holding it: repair, then :meth:`consistent`), ``EBUSY``/``ETIMEDOUT`` (not
    acquired) or ``ENOTRECOVERABLE``. Only the thread that locked it may unlock it.

    Example::

        mutex = RobustMutex(segment.buf[:MUTEX_BYTES], create=True)
        if mutex.trylock() in (0, EOWNERDEAD):
            mutex.unlock()
    """

    __slots__ = ("_obj", "ref", "trylock_fn", "unlock_fn")

    def __init__(self, buffer: memoryview, *, create: bool) -> None:
        # The ctypes object exports the buffer, so the mapping cannot be closed under us.
        self._obj = _Mutex.from_buffer(buffer)
        self.ref = ctypes.byref(self._obj)
        self.trylock_fn, self.unlock_fn = _trylock_fn, _unlock_fn
        if create:
            attr = ctypes.create_string_buffer(64)
            _slow.pthread_mutexattr_init(attr)
            _slow.pthread_mutexattr_setpshared(attr, _PTHREAD_PROCESS_SHARED)
            _slow.pthread_mutexattr_setrobust(attr, _PTHREAD_MUTEX_ROBUST)
            if _slow.pthread_mutex_init(self.ref, attr):
                raise OSError("pthread_mutex_init failed")
            _slow.pthread_mutexattr_destroy(attr)

    def trylock(self) -> int:
        return int(self.trylock_fn(self.ref))

    def unlock(self) -> None:
        self.unlock_fn(self.ref)

    def consistent(self) -> None:
        _consistent_fn(self.ref)

    def timedlock(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds (in slices, so that signal handlers run)."""
        deadline = time.monotonic() + timeout
        while True:
            step = min(_SLICE, max(0.0, deadline - time.monotonic()))
            if _clocklock_fn is not None:
                clock, at = time.CLOCK_MONOTONIC, time.monotonic() + step
                call = _clocklock_fn
                ts = _Timespec(int(at), int((at % 1) * 1e9))
                rc = int(call(self.ref, clock, ctypes.byref(ts)))
            else:
                at = time.time() + step
                ts = _Timespec(int(at), int((at % 1) * 1e9))
                rc = int(_timedlock_fn(self.ref, ctypes.byref(ts)))
            if rc != ETIMEDOUT or time.monotonic() >= deadline:
                return rc
