"""Objects that are *the same object* in every process they are handed to.

A shared primitive (lock, queue, event ...) is identified by a ``uid`` and pickles to that
``uid`` plus the names of the kernel objects it is built from (named semaphores, shared-memory
segments), never to file descriptors or memory addresses. So it can be pickled at any time,
under every start method, to a process argument, into a queue, or (later) to a pool task --
no "should only be shared through inheritance" error and no Manager server.

Unpickling looks the ``uid`` up in a per-process registry first, so a primitive that reaches a
process twice, or that the process inherited through ``fork``, is one object there (this
matters for per-process state such as which thread owns an ``RLock``).
"""

from __future__ import annotations

import os
import threading
import uuid
import weakref
from multiprocessing import resource_tracker
from typing import Any, ClassVar, Self

__all__ = [
    "Shared",
    "new_uid",
    "pid_alive",
    "sweep_created_by",
]

_registry: weakref.WeakValueDictionary[str, Shared] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process -- the holder of a shared lock, say.

    A zombie counts as dead: a killed child stays a zombie until its parent reaps it, and it
    will never release what it held.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def sweep_created_by(pid: int) -> int:
    """Unlink the ``/dev/shm`` names that process ``pid`` created and did not remove.

    A process owns the names of the primitives it creates and removes them when it exits;
    one that is killed cannot, and multiprocessing's resource tracker would only remove
    them when the whole program ends. A pool calls this for each worker that died or was
    killed, so a long-running program does not accumulate the leftovers of tasks that
    created pools, queues or locks. Returns how many names were removed.
    """
    try:
        entries = os.listdir("/dev/shm")
    except FileNotFoundError:
        return 0
    removed = 0
    for entry in entries:
        semaphore = entry.startswith("sem.")
        name = entry[4:] if semaphore else entry
        if not name.startswith("wh-") or _creator_of(name) != pid:
            continue
        try:
            os.unlink(f"/dev/shm/{entry}")
        except OSError:
            continue
        removed += 1
        try:  # the tracker would otherwise report it as leaked when the program ends
            resource_tracker.unregister(f"/{name}", "semaphore" if semaphore else "shared_memory")
        except Exception:
            pass
    return removed


def _creator_of(name: str) -> int | None:
    """The creator's pid in a name made by workhorse: ``wh-[kind-]<pid>-<random>``."""
    for token in name.split("-")[1:]:
        if token.isdigit():
            return int(token)
    return None


def new_uid() -> str:
    """A name unique across processes and machines, short enough for ``sem_open``."""
    return uuid.uuid4().hex[:20]


class Shared:
    """Base class of shared primitives: pickles to ``(uid, state)`` and is unique per process.

    Subclasses call :meth:`_register` at the end of ``__init__``, return their picklable
    state from :meth:`_shared_state`, and rebuild themselves in :meth:`_from_shared_state`.
    """

    _uid: str
    _after_fork_hooks: ClassVar[bool] = False

    def _register(self, uid: str | None = None) -> None:
        self._uid = uid or new_uid()
        with _registry_lock:
            _registry[self._uid] = self

    def _shared_state(self) -> Any:
        raise NotImplementedError

    @classmethod
    def _from_shared_state(cls, uid: str, state: Any) -> Self:
        raise NotImplementedError

    def _after_fork_in_child(self) -> None:
        """Reset per-process state (such as lock owners) in a forked child."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._uid, self._shared_state()))


def _rebuild(cls: type[Shared], uid: str, state: Any) -> Shared:
    with _registry_lock:
        existing = _registry.get(uid)
    if existing is not None:
        return existing
    obj = cls._from_shared_state(uid, state)
    with _registry_lock:
        # Another thread may have rebuilt it meanwhile: keep exactly one.
        return _registry.setdefault(uid, obj)


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for obj in list(_registry.values()):
        obj._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
