"""Crash objects, tasks and fixtures shared by the fault tests.

Every fault is real: a segfault reads address 0 through ctypes, ``os._exit`` and SIGKILL end
the process at once, ``sys.exit`` raises ``SystemExit``. ``FaultAtPickle`` fires while the
parent pickles a task (or a worker pickles a result); ``FaultAtUnpickle`` fires in whichever
process unpickles it.
"""

from __future__ import annotations

import ctypes
import faulthandler
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

EXIT_CODE = 42
FAULTS = ("segfault", "os_exit", "sys_exit", "raise", "sigkill")
FORK = multiprocessing.get_context("fork")
BOUND = 20.0  # seconds any single wait in these tests may take before it is a failure


class CrashError(Exception):
    """The ordinary exception our crash objects raise."""


def fault(kind: str) -> None:
    """Fail the current process in the way ``kind`` names."""
    if kind == "segfault":
        faulthandler.disable()  # a real crash, without a stack dump in the test output
        ctypes.string_at(0)
    elif kind == "os_exit":
        os._exit(EXIT_CODE)
    elif kind == "sys_exit":
        sys.exit(EXIT_CODE)
    elif kind == "raise":
        raise CrashError(f"message raised on purpose in pid {os.getpid()}")
    elif kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        raise ValueError(kind)


class FaultAtPickle:
    """Fires ``fault(kind)`` in the process that pickles it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __reduce__(self) -> Any:
        fault(self.kind)
        raise AssertionError("unreachable")

    def __repr__(self) -> str:
        return f"FaultAtPickle({self.kind!r})"


class FaultAtUnpickle:
    """Pickles fine; fires ``fault(kind)`` in the process that unpickles it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __reduce__(self) -> Any:
        return (fault, (self.kind,))

    def __repr__(self) -> str:
        return f"FaultAtUnpickle({self.kind!r})"


class ExitAtPickle(FaultAtPickle):
    def __init__(self) -> None:
        super().__init__("sys_exit")


class SegfaultAtUnpickle(FaultAtUnpickle):
    def __init__(self) -> None:
        super().__init__("segfault")


class ExitAtUnpickle(FaultAtUnpickle):
    def __init__(self) -> None:
        super().__init__("os_exit")


# -- tasks (module level, so they pickle by reference under every start method) -------------


def identity(x: Any) -> Any:
    return x


def double(x: int) -> int:
    return 2 * x


def pid_of_worker(_: object = None) -> int:
    return os.getpid()


def run_fault(kind: str) -> None:
    fault(kind)


def return_fault_at_pickle(kind: str) -> FaultAtPickle:
    return FaultAtPickle(kind)


def return_fault_at_unpickle(kind: str) -> FaultAtUnpickle:
    return FaultAtUnpickle(kind)


def crash_on(x: int, bad: int, kind: str = "os_exit") -> int:
    if x == bad:
        fault(kind)
    return 2 * x


def crash_once(marker: str, kind: str = "os_exit") -> int:
    """Crash the first time (creating ``marker``), succeed after: for retries."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return os.getpid()
    os.close(fd)
    fault(kind)
    return -1


def wait_then(gate: Any, started: Any = None, value: Any = None, seconds: float = BOUND) -> Any:
    """Signal ``started`` (a workhorse Event), wait for ``gate`` (bounded), return ``value``."""
    if started is not None:
        started.set()
    gate.wait(seconds)
    return value


def record(path: str, x: int) -> int:
    with open(path, "a") as f:
        f.write(f"{x}\n")
    return x


# -- waiting and observing -----------------------------------------------------------------


def wait_until(check: Callable[[], object], what: str, timeout: float = BOUND) -> None:
    """Poll an observation (never to order events) until it holds, bounded."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def shm_of(pid: int) -> list[str]:
    """The workhorse /dev/shm entries created by process ``pid``."""
    return [n for n in os.listdir("/dev/shm") if "wh-" in n and f"-{pid}-" in n]


def read_lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) - _persistent_fds()


def _persistent_fds() -> set[str]:
    """The resource tracker's and forkserver's pipes: kept for the whole session."""
    from multiprocessing import forkserver, resource_tracker

    fds = {
        getattr(resource_tracker._resource_tracker, "_fd", None),
        getattr(forkserver._forkserver, "_forkserver_alive_fd", None),
    }
    return {str(fd) for fd in fds if fd is not None}


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    """Fail a test that leaves file descriptors open (checked after the conftest guard)."""
    before = _fds()
    yield
    deadline = time.monotonic() + 5.0
    while True:
        gc.collect()
        leaked = {fd: _target(fd) for fd in _fds() - before if _target(fd) is not None}
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"test left file descriptors open: {leaked}"


def _target(fd: str) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None  # closed meanwhile (the listing's own fd, say)


def threads_named(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]
