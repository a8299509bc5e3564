"""The leak check of the CPython suites, imported into every module of ``tests/cpython``.

The conftest snapshots child processes, threads and ``/dev/shm`` entries before a module's
first test (``cpython_module_snapshot``) and moves this test to the end of the module; see
the conftest's docstring for why the check is per module rather than per test.
"""

from __future__ import annotations

from typing import Protocol


class _Snapshot(Protocol):
    def leaks(self) -> list[str]: ...


def test_left_nothing_behind(cpython_module_snapshot: _Snapshot) -> None:
    """No child process, thread or /dev/shm entry outlives the module's tests."""
    leaks = cpython_module_snapshot.leaks()
    assert not leaks, "the module's tests left behind:\n" + "\n".join(leaks)
