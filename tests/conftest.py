"""Shared fixtures: the leak guard around every test and the start-method parametrisation."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from _thread_helpers import WAIT, Runner

START_METHODS = ("fork", "spawn", "forkserver")

# Helper processes the stdlib keeps for the whole session; they are not leaks.
_PERSISTENT = ("resource_tracker", "forkserver")


def _children() -> set[int]:
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if not any(name in cmdline for name in _PERSISTENT):
            found.add(child.pid)
    return found


def _creator(name: str) -> int | None:
    """The owner pid in a workhorse /dev/shm name (``[sem.]wh-<pid>-<ns>.<start>-<kind>...``)."""
    for token in name.split("-")[1:]:
        if token.isdigit() and len(token) < 20:
            return int(token)
    return None


def _alive_elsewhere(pid: int) -> bool:
    """True for a live process outside this test run (another session's tests, say)."""
    if pid == os.getpid():
        return False
    try:
        process = psutil.Process(pid)
        return os.getpid() not in {p.pid for p in process.parents()}
    except psutil.NoSuchProcess:
        return False


def _shm_entries() -> set[str]:
    try:
        names = [name for name in os.listdir("/dev/shm") if "wh-" in name]
    except FileNotFoundError:
        return set()
    found = set()
    for name in names:
        pid = _creator(name)
        if pid is None or not _alive_elsewhere(pid):
            found.add(name)
    return found


# Threads a library keeps idle for reuse: trio's thread cache (its to_thread workers) lives
# for seconds after its last use, by design.
_CACHED_THREADS = ("Trio thread ",)


def _threads() -> set[threading.Thread]:
    return {
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.name.startswith(_CACHED_THREADS)
    }


def _settle(check: object, deadline: float) -> None:
    """Leaks often vanish a moment after a test (a child being reaped): poll, bounded."""
    while time.monotonic() < deadline:
        if not check():  # type: ignore[operator]
            return
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves child processes, threads or /dev/shm entries behind."""
    if request.node.get_closest_marker("leaks_ok"):
        yield
        return
    children, threads, shm = _children(), _threads(), _shm_entries()
    yield
    import gc

    gc.collect()
    deadline = time.monotonic() + 5.0
    _settle(lambda: _children() - children, deadline)
    _settle(lambda: {t for t in _threads() - threads if t.is_alive()}, deadline)
    _settle(lambda: _shm_entries() - shm, deadline)
    leaked_children = _children() - children
    leaked_threads = {t.name for t in _threads() - threads if t.is_alive()}
    leaked_shm = _shm_entries() - shm
    for pid in leaked_children:  # do not let one leak cascade into every later test
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
    assert not leaked_children, f"test left child processes running: {sorted(leaked_children)}"
    assert not leaked_threads, f"test left threads running: {sorted(leaked_threads)}"
    assert not leaked_shm, f"test left /dev/shm entries: {sorted(leaked_shm)}"


@pytest.fixture(params=START_METHODS)
def start_method(request: pytest.FixtureRequest) -> str:
    """Each start method in turn."""
    method: str = request.param
    return method


@pytest.fixture
def runner() -> Iterator[Runner]:
    """Threads started by a test, joined (bounded) when it ends."""
    run = Runner()
    yield run
    for thread in run.threads:
        thread.join(WAIT)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The Dask tests run last (stable order otherwise).

    They share one embedded cluster for the session, whose scheduler, nannies and IO loop are
    threads of this process until the session ends. A test that ``fork()``s a worker after
    them could hand the child a lock one of those threads held at that instant, and the
    worker would hang at start (seen: "timed out waiting for the worker to start").
    """
    items.sort(key=lambda item: "tests/dask/" in str(item.path).replace(os.sep, "/"))
