"""Tests of workhorse._thread.Thread: results, exceptions and cooperative cancellation."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from workhorse._errors import Cancelled
from workhorse._semlock import NamedSemaphore
from workhorse._thread import Thread


@pytest.fixture
def hooked() -> Iterator[list[threading.ExceptHookArgs]]:
    """Collect what reaches threading.excepthook (instead of pytest's warning)."""
    seen: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook
    threading.excepthook = seen.append
    try:
        yield seen
    finally:
        threading.excepthook = previous


class Doubler(Thread):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def run(self) -> int:  # type: ignore[override]  # typeshed: Thread.run -> None
        return 2 * self.n


def test_thread_result_of_target_and_subclass() -> None:
    t = Thread(target=lambda a, b=0: a + b, args=(1,), kwargs={"b": 2})
    d = Doubler(21)
    for w in (t, d):
        w.start()
    assert t.result(timeout=10) == 3
    assert d.result(timeout=10) == 42
    assert t.exception() is None
    for w in (t, d):
        w.join()
        assert not w.is_alive()


def test_thread_exception_is_returned_and_reported(
    hooked: list[threading.ExceptHookArgs],
) -> None:
    def fail() -> None:
        raise KeyError("k")

    t = Thread(target=fail)
    t.start()
    exc = t.exception(timeout=10)
    assert isinstance(exc, KeyError)
    with pytest.raises(KeyError):
        t.result()
    t.join()
    assert [h.exc_type for h in hooked] == [KeyError]  # as the stdlib: excepthook sees it


def test_thread_result_timeout_and_not_started() -> None:
    gate = threading.Event()
    t = Thread(target=gate.wait)
    with pytest.raises(RuntimeError):
        t.result()
    t.start()
    with pytest.raises(TimeoutError):
        t.result(timeout=0.05)
    gate.set()
    assert t.result(timeout=10) is True
    t.join()


def test_thread_non_callable_target_is_type_error() -> None:
    with pytest.raises(TypeError, match="str"):
        Thread(target="run")  # type: ignore[arg-type]


def test_thread_cancel_wakes_a_blocked_workhorse_call(
    hooked: list[threading.ExceptHookArgs],
) -> None:
    sem = NamedSemaphore(0, 1)
    entered = threading.Event()

    def wait_forever() -> None:
        entered.set()
        sem.acquire()

    t = Thread(target=wait_forever)
    t.start()
    assert entered.wait(10)
    assert not t.cancelled
    t.cancel()
    assert t.cancelled
    assert isinstance(t.exception(timeout=10), Cancelled)
    with pytest.raises(Cancelled):
        t.result()
    t.join()
    assert hooked == []  # a requested stop is not reported as an error


def test_thread_cancel_before_start_and_join_is_cancel_aware() -> None:
    inner_gate = threading.Event()
    inner = Thread(target=inner_gate.wait)
    inner.start()
    outer = Thread(target=inner.join)  # join() goes through the cancel loop
    outer.cancel()
    outer.start()
    assert isinstance(outer.exception(timeout=10), Cancelled)
    inner_gate.set()
    inner.join()
    outer.join()
