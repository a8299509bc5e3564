"""What the soak saw: counts per kind of trial, problems, and this process's resources.

Problems fall in five categories, all of which must stay empty: ``wrong`` (a value, an
order, a count or an exception type that breaks a documented guarantee), ``missing`` (an
accepted item never delivered), ``duplicated`` (delivered twice), ``hung`` (a call that took
longer than its bound plus :data:`SLACK`; the text says which call) and ``leaked`` (a file
descriptor, thread, child process or ``/dev/shm`` name a trial left behind).

Outcomes that the guarantees allow -- a task failed with ``WorkerCrashed``, the message a
killed reader was in the middle of, a lock whose dead holder makes ``acquire()`` raise --
are counted per kind as *notes*, so the figures show what the kills did.

Resources are those of this process: open descriptors, threads, child processes (zombies
included), ``/dev/shm`` names of this process tree -- every workhorse name ends with
``-f<family>``, the inode of the resource tracker's pipe that this process and all its
children share (``workhorse._sharing``), so names of other programs on the machine are not
counted -- and RSS.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import psutil

from workhorse._sharing import family

T = TypeVar("T")

#: A call with a timeout ``t`` must return within ``t + SLACK`` seconds (a loaded 2-core
#: machine deschedules a process for hundreds of milliseconds at times).
SLACK = 3.0
#: Bound of an operation that has no timeout of its own (a whole map, a pool's shutdown).
BOUND = 60.0
CATEGORIES = ("wrong", "missing", "duplicated", "hung", "leaked")
#: Helper processes the stdlib keeps for the whole run: not leaks.
PERSISTENT = ("resource_tracker", "forkserver")


@dataclass
class Kind:
    """Counts of one kind of trial."""

    trials: int = 0
    kills: int = 0
    items: int = 0
    seconds: float = 0.0
    notes: Counter[str] = field(default_factory=Counter)

    def line(self, name: str) -> str:
        notes = ", ".join(f"{k} {v}" for k, v in sorted(self.notes.items()))
        return (
            f"{name:6} {self.trials:6} trials {self.kills:7} kills {self.items:9} items "
            f"({self.seconds:6.0f} s){'; ' + notes if notes else ''}"
        )


@dataclass
class Ledger:
    """Counts per kind and problems per category."""

    kinds: dict[str, Kind] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CATEGORIES})

    def kind(self, name: str) -> Kind:
        return self.kinds.setdefault(name, Kind())

    def note(self, kind: str, what: str, n: int = 1) -> None:
        if n:
            self.kind(kind).notes[what] += n

    def problem(self, category: str, kind: str, text: str) -> None:
        assert category in CATEGORIES, category
        self.problems[category].append(f"{kind}: {text}")

    def count(self) -> int:
        return sum(len(v) for v in self.problems.values())

    def outcomes(self) -> str:
        return ", ".join(f"{c} {len(self.problems[c])}" for c in CATEGORIES)

    def report(self) -> list[str]:
        lines = [self.kinds[name].line(name) for name in sorted(self.kinds)]
        return [*lines, f"outcomes: {self.outcomes()}"]


def timed(ledger: Ledger, kind: str, what: str, bound: float, fn: Callable[[], T]) -> T:
    """``fn()``, recording it as hung if it took longer than ``bound + SLACK`` seconds.

    For calls that take their own timeout (``bound``): the bound is what makes them return;
    this only checks that they did so on time. Exceptions pass through.
    """
    started = time.monotonic()
    try:
        return fn()
    finally:
        took = time.monotonic() - started
        if took > bound + SLACK:
            ledger.problem("hung", kind, f"{what} took {took:.2f} s (bound {bound:.2f} s)")


# -- resources ----------------------------------------------------------------------------


def shm_names() -> set[str]:
    """The ``/dev/shm`` names of this process tree (see the module docstring)."""
    suffix = f"-f{family():x}"
    try:
        return {n for n in os.listdir("/dev/shm") if "wh-" in n and n.endswith(suffix)}
    except FileNotFoundError:
        return set()


def fds() -> dict[int, str]:
    """Open descriptors and what they point at, but the resource tracker's and the
    forkserver's pipes (opened by their first use, kept for the whole run)."""
    from multiprocessing import forkserver, resource_tracker

    persistent = {
        getattr(resource_tracker._resource_tracker, "_fd", None),
        getattr(forkserver._forkserver, "_forkserver_alive_fd", None),
    }
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            if int(name) not in persistent:
                found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the listing's own descriptor, closed meanwhile
    return found


def threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


def children() -> dict[int, str]:
    """Child processes (recursive, zombies included) but the stdlib's persistent helpers."""
    found = {}
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                found[child.pid] = "zombie"
                continue
            cmdline = " ".join(child.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if not any(name in cmdline for name in PERSISTENT):
            found[child.pid] = cmdline[-80:]
    return found


def resources() -> dict[str, int]:
    """This process's resources, after a full collection (so that garbage is not counted)."""
    gc.collect()
    pid = f"wh-{os.getpid()}-"
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    tree = shm_names()
    return {
        "fds": len(fds()),
        "threads": len(threads()),
        "children": len(children()),
        "shm": len(tree),
        "shm_own": sum(1 for n in tree if pid in n),
        "rss_mib": rss_pages * os.sysconf("SC_PAGE_SIZE") >> 20,
    }


@dataclass
class _Snapshot:
    fds: dict[int, str]
    threads: set[threading.Thread]
    children: dict[int, str]
    shm: set[str]

    @classmethod
    def take(cls) -> _Snapshot:
        return cls(fds(), threads(), children(), shm_names())

    def left_since(self, before: _Snapshot) -> list[str]:
        left = [f"fd {fd} -> {target}" for fd, target in self.fds.items() if fd not in before.fds]
        left += [f"thread {t.name}" for t in self.threads - before.threads]
        left += [f"child {pid} ({what})" for pid, what in self.children.items()
                 if pid not in before.children]  # fmt: skip
        left += [f"/dev/shm/{name}" for name in sorted(self.shm - before.shm)]
        return left


@contextmanager
def trial(ledger: Ledger, kind: str, settle: float = 5.0) -> Iterator[None]:
    """Count one trial of ``kind`` and its time; afterwards, report what it left behind.

    Leftovers often vanish a moment later (a worker being reaped, a thread finishing): poll,
    with a full collection, for up to ``settle`` seconds before calling them leaks.
    """
    before = _Snapshot.take()
    started = time.monotonic()
    try:
        yield
    finally:
        stats = ledger.kind(kind)
        stats.trials += 1
        left = _Snapshot.take().left_since(before)
        deadline = time.monotonic() + settle
        while left and time.monotonic() < deadline:
            gc.collect()
            left = _Snapshot.take().left_since(before)
            if left:
                time.sleep(0.02)
        stats.seconds += time.monotonic() - started
        if left:
            ledger.problem("leaked", kind, f"trial left {left[:8]}")
            _kill_children(_Snapshot.take().children.keys() - before.children.keys())


def _kill_children(pids: set[int]) -> None:
    """A leaked child may run forever (a victim looping): kill it, so that one leak does
    not cascade into every later trial."""
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
