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

import _posixshmem
import os
import threading
import weakref
from multiprocessing import resource_tracker
from typing import Any, ClassVar, Self

__all__ = [
    "Shared",
    "family",
    "forget",
    "forget_surely",
    "new_name",
    "new_uid",
    "owner_of",
    "owner_prefix",
    "pid_alive",
    "register",
    "remove",
    "sweep_created_by",
    "unlink_shm",
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


# -- names of kernel objects: who owns them, who may remove them ------------------------------
#
# Every /dev/shm name workhorse makes is ``wh-<pid>-<ns>.<start>-<kind>...-f<family>``:
#
# * ``<pid>-<ns>.<start>``: the *owner* -- the process whose death ends the object's life
#   (for an out-of-band queue item or a spill segment: the queue's creator, never the putter).
#   ``<ns>`` is the owner's pid-namespace inode and ``<start>`` its start time in clock ticks
#   since boot, so the triple names one process across pid namespaces (containers sharing
#   /dev/shm) and across pid reuse. Clean-up removes a name only if its owner is in this
#   pid namespace and dead: it never touches another program's names.
# * ``f<family>``: the resource tracker the name was registered with (the inode of its pipe,
#   shared by a process and every child it starts). The name is registered *before* it is
#   created; whoever removes it (its ``shm_unlink`` succeeded: exactly one process) then
#   unregisters it, if the name is of its own family. So the tracker is never asked to forget
#   a name it was not given (the ``KeyError`` tracebacks of old), and it removes what is still
#   registered once the whole family is gone, whatever killed it. A process killed between
#   those steps costs at worst one warning of the tracker at exit, never a leaked name.

_identity: tuple[int, str] | None = None


def _own_identity() -> tuple[int, str]:
    """``(pid, "<ns>.<start>")`` of this process (recomputed in a forked child)."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        _identity = (pid, f"{_namespace():x}.{_start_time(pid) or 0:x}")
    return _identity


def _namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot; None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == b"Z" else int(fields[19])


_family: tuple[int, int, int] = (0, -1, 0)  # (pid, tracker fd, its pipe's inode)


def family() -> int:
    """The id of this process's resource tracker (shared with the children it starts)."""
    global _family
    fd = getattr(resource_tracker._resource_tracker, "_fd", None)
    pid = os.getpid()
    if fd is not None and _family[:2] == (pid, fd):
        return _family[2]
    try:
        fd = resource_tracker.getfd()
        _family = (pid, -1, 0) if fd is None else (pid, fd, os.fstat(fd).st_ino)
    except Exception:  # no tracker can be had: names are then registered nowhere
        return 0
    return _family[2]


def register(name: str, rtype: str = "shared_memory") -> int:
    """Register ``name`` with this process's tracker; return the family id (0: nowhere)."""
    fam = family()
    if fam:
        _send("REGISTER", name, rtype)
    return fam


def _send(cmd: str, name: str, rtype: str) -> None:
    # One write straight to the tracker's pipe (atomic below PIPE_BUF): the public calls
    # first probe the pipe, which would widen the windows in which a kill leaves the
    # tracker a name that does not exist (a warning at exit, never a leak).
    try:
        os.write(_family[1], f"{cmd}:{name}:{rtype}\n".encode("ascii"))
    except (OSError, UnicodeError):
        try:
            getattr(resource_tracker, cmd.lower())(name, rtype)
        except Exception:
            pass


def owner_prefix(kind: str) -> str:
    """``wh-<pid>-<ns>.<start>-<kind>``: the start of the names this process owns."""
    pid, token = _own_identity()
    return f"wh-{pid}-{token}-{kind}"


def new_name(prefix: str, rtype: str = "shared_memory") -> str:
    """A fresh ``/<prefix>-<random>-f<family>``, registered with this process's tracker.

    Register first, create second: a process killed in between leaves the tracker a name to
    ignore, never an object nobody will remove. Hand the name to :func:`forget` when it is
    removed (or was never created).
    """
    fam = family()
    name = f"/{prefix}-{os.urandom(6).hex()}-f{fam:x}"
    if fam:
        _send("REGISTER", name, rtype)
    return name


def create_shm(prefix: str) -> tuple[str, int]:
    """A new shared-memory segment named by :func:`new_name`, created exclusively (a name is
    never reused): its name and a read-write descriptor, which the caller closes. If it
    cannot be created, its registration is dropped and the error raised."""
    name = new_name(prefix)
    try:
        fd = _posixshmem.shm_open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode=0o600)
    except BaseException:
        forget(name)
        raise
    return name, fd


def forget(name: str, rtype: str = "shared_memory", fam: int | None = None) -> None:
    """Tell the tracker ``name`` is gone; call it only after *this* process removed it.

    ``fam``: the family the name was registered with, when the name does not end with it.
    """
    try:
        if fam is None:
            fam = int(name.rpartition("-f")[2], 16)
        if fam and fam == family():
            _send("UNREGISTER", name, rtype)
    except Exception:  # a foreign name, or the tracker is gone at interpreter exit
        pass


def unlink_shm(name: str) -> bool:
    """``shm_unlink`` a segment and :func:`forget` it; False if it was already gone.

    The tracker's message is ready before the unlink, so that a kill between the two (a
    name the tracker still has, and warns about at exit) is as unlikely as can be.
    """
    msg = None
    try:
        fam = int(name.rpartition("-f")[2], 16)
        if fam and fam == family():
            msg = f"UNREGISTER:{name}:shared_memory\n".encode("ascii")
    except (ValueError, UnicodeError):
        pass
    try:
        _posixshmem.shm_unlink(name)
    except OSError:
        return False
    if msg is not None:
        try:
            os.write(_family[1], msg)
        except OSError:
            forget(name)
    return True


def forget_surely(name: str, rtype: str = "shared_memory") -> None:
    """Like :func:`forget`, for a name whose registration is unknown (a leftover of a
    process killed while creating it): registering first makes the unregister safe."""
    if family():
        _send("REGISTER", name, rtype)
        _send("UNREGISTER", name, rtype)


def remove(entry: str) -> bool:
    """Unlink the /dev/shm ``entry`` (``sem.`` prefix for semaphores) and forget it."""
    try:
        os.unlink(f"/dev/shm/{entry}")
    except OSError:
        return False
    semaphore = entry.startswith("sem.")
    forget("/" + entry.removeprefix("sem."), "semaphore" if semaphore else "shared_memory")
    return True


def owner_of(entry: str) -> tuple[int, int, int] | None:
    """``(pid, namespace, start)`` of a workhorse /dev/shm entry; None for other names."""
    parts = entry.removeprefix("sem.").split("-")
    if len(parts) < 3 or parts[0] != "wh" or not parts[1].isdigit():
        return None
    ns, _, start = parts[2].partition(".")
    try:
        return int(parts[1]), int(ns, 16), int(start, 16)
    except ValueError:
        return None


def sweep_created_by(pid: int) -> int:
    """Unlink the ``/dev/shm`` names owned by process ``pid``, now dead, and not removed.

    A process owns the names of the primitives and queues it creates and removes them when
    it exits; one that is killed cannot, and multiprocessing's resource tracker would only
    remove them when the whole program ends. A pool calls this for each worker that died or
    was killed, so a long-running program does not accumulate the leftovers of tasks that
    created pools, queues or locks. Items a dead process *put* into a queue it did not create
    belong to that queue and are kept. Only names of this pid namespace whose owner is no
    longer running are touched. Returns how many names were removed.

    Example::

        sweep_created_by(worker_pid)  # after the worker exited
    """
    try:
        entries = os.listdir("/dev/shm")
    except FileNotFoundError:
        return 0
    here, live_start = _namespace(), _start_time(pid)
    removed = 0
    for entry in entries:
        owner = owner_of(entry)
        if owner is None or owner[0] != pid or owner[1] != here or owner[2] == live_start:
            continue
        removed += remove(entry)
    return removed


def new_uid() -> str:
    """A name unique across processes and machines, short enough for ``sem_open``."""
    return os.urandom(10).hex()  # 80 random bits, as uuid4().hex[:20] was (no uuid import)


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
    global _registry_lock, _family
    _registry_lock = threading.Lock()
    # The child shares its parent's tracker: same pipe, same family (no call into the
    # tracker here: its lock may have been held by another thread at the fork).
    _family = (os.getpid(), *_family[1:])
    for obj in list(_registry.values()):
        obj._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
