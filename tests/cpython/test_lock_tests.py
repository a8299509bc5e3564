"""CPython's ``Lib/test/lock_tests.py``, run against ``workhorse.threads``' primitives.

The classes are the ones ``Lib/test/test_threading.py`` builds from ``lock_tests`` (the same
set on 3.11, 3.12 and 3.13), with each type taken from ``workhorse.threads`` (the stdlib's
if workhorse lacks the name: recorded as a fallback). ``test_threading`` runs
``RLockTests`` twice, for ``threading._PyRLock`` and ``threading._CRLock``; workhorse has one
``RLock``, run once as ``RLockTests``. ``ConditionAsRLockTests.test_recursion_count`` is
skipped exactly as ``test_threading`` skips it.
"""

from __future__ import annotations

import threading

import pytest
from test import lock_tests

import workhorse.threads

from ._leaks import test_left_nothing_behind
from ._substitute import pick

pytestmark = pytest.mark.timeout(30)

__all__ = ["test_left_nothing_behind"]


def _ours(name: str) -> staticmethod[..., object]:
    return staticmethod(pick(threading, workhorse.threads, name))


class LockTests(lock_tests.LockTests):  # type: ignore[misc]
    locktype = _ours("Lock")


class RLockTests(lock_tests.RLockTests):  # type: ignore[misc]
    locktype = _ours("RLock")


class EventTests(lock_tests.EventTests):  # type: ignore[misc]
    eventtype = _ours("Event")


class ConditionAsRLockTests(lock_tests.RLockTests):  # type: ignore[misc]
    # Condition uses an RLock by default and exports its API.
    locktype = _ours("Condition")

    def test_recursion_count(self) -> None:
        self.skipTest("Condition does not expose _recursion_count()")


class ConditionTests(lock_tests.ConditionTests):  # type: ignore[misc]
    condtype = _ours("Condition")


class SemaphoreTests(lock_tests.SemaphoreTests):  # type: ignore[misc]
    semtype = _ours("Semaphore")


class BoundedSemaphoreTests(lock_tests.BoundedSemaphoreTests):  # type: ignore[misc]
    semtype = _ours("BoundedSemaphore")


class BarrierTests(lock_tests.BarrierTests):  # type: ignore[misc]
    barriertype = _ours("Barrier")
