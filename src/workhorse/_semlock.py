"""Named POSIX semaphores: the kernel object under every process-flavour primitive.

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
import os
import weakref
from typing import Any

from . import _cancel
from ._sharing import forget, new_name, owner_prefix

__all__ = ["RECURSIVE_MUTEX", "SEMAPHORE", "SEM_VALUE_MAX", "NamedSemaphore"]

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
