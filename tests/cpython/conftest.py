"""CPython's own suites against workhorse: when they run, what is skipped, leaks, the report.

**When.** All of it takes ~8 minutes per Python against the stdlib on 2 cores (longer
against today's workhorse), which CI's 15-minute budget cannot hold next to the rest of the
suite on three Pythons. So plain ``pytest`` runs the *CI tier*: ``lock_tests`` on every
Python, and on :data:`DEFAULT_PYTHON` (the one whose ``test`` package has every suite)
also ``_test_multiprocessing`` under ``fork`` and ``test_concurrent_futures`` with threads
and ``forkserver`` processes (:data:`CI_TIER`, ~2 minutes). Everything -- every suite
under every start method -- runs with ``WORKHORSE_CPYTHON=all`` (``0``: nothing; ``ci``:
the CI tier even where paths are named), with
``-m cpython``, or when ``tests/cpython`` or a file in it is named on the command line;
``python tests/cpython/run_all.py`` does that on every Python pyenv has.

**Exclusions and known failures.** ``exclusions.toml`` is the one list of tests that are
not run, each with its category and reason: ``private`` (reaches into private attributes
of the stdlib's objects, quoted), ``deliberate`` (a difference the README or a module
docstring documents, quoted in ``documented``), ``stdlib-fails`` (fails with the stdlib
itself on this machine: the stdlib's error). They become skips whose reason names the
category. ``known_failures.toml`` lists what workhorse fails today, as strict xfails: the
branch stays green, and a fix turns its entry into an XPASS failure until the entry is
deleted. Keys are test ids relative to this directory; ``*`` patterns cover the start
methods; ``python = ["3.13"]`` limits an entry to some versions. Neither list applies to
the baseline run (``WORKHORSE_CPYTHON_BASELINE=stdlib``), which runs the same suites
against the stdlib to find the ``stdlib-fails``.

**Leaks.** workhorse's per-test ``no_leaks`` guard is replaced here by a per-module check
(``_leaks.test_left_nothing_behind``, moved to the end of each module). CPython's classes
own processes for a whole class: ``ManagerMixin``'s manager, and ``_TestPool``'s
``Pool(4)`` made in ``setUpClass``, whose workhorse workers start at its first task -- the
per-test guard failed that first test (5 such errors in ``test_mp_fork`` on 3.13, none with
the stdlib). ``_test_multiprocessing`` also leaves daemon children to exit after the test
that started them (its own ``tearDownClass``/``tearDownModule`` only warn), and lock_tests'
helper threads end a moment after their test: per test, the guard blames whichever test
runs when such a straggler is seen, and waits up to 5 s for each (the stdlib's run took
70 s instead of 53). What would hurt a user -- anything that outlives a whole suite -- is
caught per module, with the root guard's own helpers.

**Hangs.** Every module sets a ``timeout`` mark (pytest-timeout's signal method: the hung
test fails with a stack dump and the run goes on); it applies to unittest-style tests too.
A few CPython tests arm ``signal.alarm()`` themselves, which disarms pytest-timeout's timer:
``_timeout_backstop`` re-delivers SIGALRM 2 s after the budget if the test still runs.
"""

from __future__ import annotations

import fnmatch
import gc
import json
import os
import re
import signal
import sys
import threading
import time
import tomllib
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from ._substitute import BASELINE, FALLBACKS

HERE = Path(__file__).parent
DEFAULT_PYTHON = (3, 13)
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
CATEGORIES = ("private", "deliberate", "stdlib-fails")
LEAK_CHECK = "test_left_nothing_behind"
BACKSTOP = "cpython-timeout-backstop"
# CPython 3.12+ warns when a SemLock's finalizer runs inside the resource tracker's own lock
# (gc at a random moment): seen once against the stdlib, on an unrelated test. Under the
# project's "error" filter it would fail whichever test was running.
REENTRANT_TRACKER = "ignore:ResourceTracker called reentrantly:UserWarning"


# file -> classes left out (fnmatch) of the CI tier, on DEFAULT_PYTHON / on every Python
CI_TIER: dict[str, tuple[tuple[str, ...], bool]] = {
    "test_lock_tests.py": ((), True),
    "test_mp_fork.py": ((), False),
    "test_cf_*.py": (("ProcessPoolFork[A-Z]*", "ProcessPoolSpawn*"), False),
}


def _tier(config: pytest.Config) -> str:
    """``"all"``, ``"ci"`` or ``"none"`` (see the docstring)."""
    setting = os.environ.get("WORKHORSE_CPYTHON", "")
    if setting:
        return {"0": "none", "ci": "ci"}.get(setting, "all")
    if re.search(r"(?<!not )\bcpython\b", config.option.markexpr or ""):
        return "all"
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return "all"
    return "ci"


def _ci_rule(name: str) -> tuple[tuple[str, ...], bool] | None:
    for pattern, rule in CI_TIER.items():
        if fnmatch.fnmatchcase(name, pattern):
            return rule
    return None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave out (not even import) the modules the tier does not run."""
    if not collection_path.name.startswith("test_"):
        return None
    tier = _tier(config)
    if tier == "none":
        return True
    if tier == "ci":
        rule = _ci_rule(collection_path.name)
        if rule is None or not (rule[1] or sys.version_info[:2] == DEFAULT_PYTHON):
            return True
    return None


def _ci_deselect(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _tier(config) != "ci":
        return
    kept, dropped = [], []
    for item in items:
        rule = _ci_rule(item.path.name) if HERE in item.path.parents else None
        cls = item.cls.__name__ if isinstance(item, pytest.Function) and item.cls else ""
        if rule and cls and any(fnmatch.fnmatchcase(cls, p) for p in rule[0]):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# -- exclusions and known failures ----------------------------------------------------


def _entries(name: str) -> dict[str, dict[str, Any]]:
    with open(HERE / name, "rb") as f:
        tests: dict[str, dict[str, Any]] = tomllib.load(f).get("tests", {})
    return {key: entry for key, entry in tests.items() if VERSION in entry.get("python", [VERSION])}


def _check_exclusion(key: str, entry: dict[str, Any]) -> None:
    if entry.get("category") not in CATEGORIES or not entry.get("reason"):
        raise pytest.UsageError(
            f"exclusions.toml: {key}: needs a category {CATEGORIES} and a reason"
        )
    if entry["category"] == "deliberate" and not entry.get("documented"):
        raise pytest.UsageError(
            f"exclusions.toml: {key}: a deliberate difference quotes its docs (`documented`)"
        )


def _match(entries: dict[str, dict[str, Any]], key: str) -> tuple[str, dict[str, Any]] | None:
    for pattern, entry in entries.items():
        if fnmatch.fnmatchcase(key, pattern):
            return pattern, entry
    return None


def test_key(item: pytest.Item) -> str:
    """``test_mp_fork.py::WithProcessesTestQueue::test_get``: the id the lists use."""
    return f"{item.path.name}::{item.nodeid.split('::', 1)[1]}"


@dataclass
class _Lists:
    exclusions: dict[str, dict[str, Any]] = field(default_factory=dict)
    known: dict[str, dict[str, Any]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)


_LISTS = _Lists()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the suites ``cpython``, apply the two lists, put each leak check last."""
    _ci_deselect(config, items)
    ours = [item for item in items if HERE in item.path.parents]
    if not ours:
        return
    if not BASELINE:
        _LISTS.exclusions, _LISTS.known = (
            _entries("exclusions.toml"),
            _entries("known_failures.toml"),
        )
        for key, entry in _LISTS.exclusions.items():
            _check_exclusion(key, entry)
    for item in ours:
        item.add_marker(pytest.mark.cpython)
        item.add_marker(pytest.mark.filterwarnings(REENTRANT_TRACKER))
        key = test_key(item)
        if found := _match(_LISTS.exclusions, key):
            _LISTS.used.add(found[0])
            entry = found[1]
            item.add_marker(
                pytest.mark.skip(reason=f"excluded ({entry['category']}): {entry['reason']}")
            )
        elif found := _match(_LISTS.known, key):
            _LISTS.used.add(found[0])
            reason = f"known workhorse failure: {found[1]['summary']}"
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
    _LISTS.files = {item.path.name for item in ours}
    _move_leak_checks_last(items)


def _move_leak_checks_last(items: list[pytest.Item]) -> None:
    checks = {item.path: item for item in items if item.name == LEAK_CHECK}
    rest = [item for item in items if item.name != LEAK_CHECK]
    last_of_module = {item.path: i for i, item in enumerate(rest)}
    ordered: list[pytest.Item] = []
    for i, item in enumerate(rest):
        ordered.append(item)
        if last_of_module.get(item.path) == i and item.path in checks:
            ordered.append(checks.pop(item.path))
    items[:] = ordered + list(checks.values())


# -- leaks ---------------------------------------------------------------------------


# Our processes, sampled around every test: a /dev/shm entry counts as this run's only if
# its creator is one of them (other sessions on a shared machine use /dev/shm too).
_OURS: set[int] = {os.getpid()}


def _sample_ours() -> None:
    _OURS.update(child.pid for child in psutil.Process().children(recursive=True))


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """The root per-test guard, replaced by the per-module check (see the docstring)."""
    _sample_ours()
    yield
    _sample_ours()


def _root_conftest(config: pytest.Config) -> types.ModuleType:
    path = HERE.parent / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, types.ModuleType) and getattr(plugin, "__file__", None) == str(path):
            return plugin
    raise RuntimeError(f"{path} is not loaded")


def _sharer(thread: threading.Thread) -> bool:
    """multiprocessing's resource sharer: the stdlib's reducers start it the first time a
    ``Connection`` or socket is pickled outside a process start (through a queue, say), with
    the stdlib as with workhorse, and it serves until the interpreter exits by design."""
    target = getattr(thread, "_target", None)
    return getattr(target, "__qualname__", "") == "_ResourceSharer._serve"


class Snapshot:
    """Child processes, threads and /dev/shm entries before a module's first test."""

    def __init__(self, helpers: types.ModuleType) -> None:
        self.helpers = helpers
        self.children: set[int] = helpers._children()
        self.threads: set[threading.Thread] = set()
        self.threads = self._threads()
        self.shm: set[str] = self._shm()

    def _threads(self) -> set[threading.Thread]:
        threads: set[threading.Thread] = self.helpers._threads()
        return {t for t in threads if t.is_alive() and t.name != BACKSTOP and not _sharer(t)}

    def _shm(self) -> set[str]:
        _sample_ours()
        return {
            name for name in self.helpers._shm_entries() if self.helpers._creator(name) in _OURS
        }

    def leaks(self, grace: float = 10.0) -> list[str]:
        """What is left now (stragglers get ``grace`` seconds); leaked children are killed."""
        h = self.helpers
        gc.collect()
        deadline = time.monotonic() + grace
        h._settle(lambda: h._children() - self.children, deadline)
        h._settle(lambda: self._threads() - self.threads, deadline)
        h._settle(lambda: self._shm() - self.shm, deadline)
        found = []
        for pid in sorted(h._children() - self.children):
            try:
                child = psutil.Process(pid)
                found.append(f"child process {pid}: {' '.join(child.cmdline())[:200]}")
                child.kill()  # one module's leak must not fail the next module
            except psutil.Error:
                pass
        found += [f"thread {t.name!r}" for t in self._threads() - self.threads]
        found += [f"/dev/shm/{name}" for name in sorted(self._shm() - self.shm)]
        return found


@pytest.fixture(scope="module", autouse=True)
def cpython_module_snapshot(request: pytest.FixtureRequest) -> Snapshot:
    """The state before the module's first test (and before its ``setUpModule``)."""
    return Snapshot(_root_conftest(request.config))


# -- hangs ---------------------------------------------------------------------------


def _budget(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 0)


@pytest.fixture(autouse=True)
def _timeout_backstop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Re-deliver SIGALRM if the test is still running 2 s after its timeout.

    pytest-timeout's signal method arms the process's one ``ITIMER_REAL``; a few CPython
    tests arm their own ``signal.alarm()`` (up to 300 s) and cancel it with ``alarm(0)``,
    which disarms pytest-timeout's too. This timer thread fires SIGALRM anyway, so whichever
    handler is in place -- pytest-timeout's, or the test's own, which raises -- ends it.
    """
    budget = _budget(request.node)
    if not budget:
        yield
        return
    timer = threading.Timer(budget + 2.0, signal.setitimer, (signal.ITIMER_REAL, 0.001))
    timer.name, timer.daemon = BACKSTOP, True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


# -- report --------------------------------------------------------------------------


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Stdlib names used for lack of workhorse ones; list entries that matched nothing."""
    if not _LISTS.exclusions and not _LISTS.known and not FALLBACKS:
        return
    write = terminalreporter.write_line
    for module, names in sorted(FALLBACKS.items()):
        write(f"cpython suites: stdlib names used (workhorse lacks them): {module}.{sorted(names)}")
    # Entries for a module that ran (not skipped whole) but that matched none of its tests.
    stale = [
        key
        for key in (*_LISTS.exclusions, *_LISTS.known)
        if key not in _LISTS.used
        and any(fnmatch.fnmatchcase(name, key.split("::")[0]) for name in _LISTS.files)
    ]
    if stale and _tier(config) == "all" and not config.option.keyword:
        write(f"cpython suites: list entries that matched no collected test: {stale}")
    if path := os.environ.get("WORKHORSE_CPYTHON_REPORT"):
        data = {"python": VERSION, "fallbacks": {m: sorted(n) for m, n in FALLBACKS.items()}}
        Path(path).write_text(json.dumps(data))
