"""Helpers shared by the thread-flavour tests: run functions in threads and observe them."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import CodeType
from typing import Any

import pytest

from workhorse import _cancel

WAIT = 5.0  # upper bound for anything that should happen "soon"


def poll(predicate: Callable[[], object], what: str = "condition") -> None:
    """Wait until ``predicate()`` is true; it only observes state, and has a deadline."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def blocked_in(thread: threading.Thread, code: CodeType) -> bool:
    """True if ``thread`` is currently executing ``code`` somewhere in its stack."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


class Runner:
    """Start ``fn`` in threads and collect what each returned or raised."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.results: list[Any] = []
        self.by_thread: dict[threading.Thread, Any] = {}
        self._lock = threading.Lock()

    def start(
        self, fn: Callable[[], object], scope: _cancel.CancelScope | None = None
    ) -> threading.Thread:
        def target() -> None:
            try:
                if scope is None:
                    result = fn()
                else:
                    with _cancel.entered(scope):
                        result = fn()
            except BaseException as exc:
                result = exc
            with self._lock:
                self.results.append(result)
                self.by_thread[threading.current_thread()] = result

        thread = threading.Thread(target=target, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def join(self) -> list[Any]:
        for thread in self.threads:
            thread.join(WAIT)
            assert not thread.is_alive(), "thread did not finish"
        return self.results
