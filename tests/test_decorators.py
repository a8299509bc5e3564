"""``@workhorse.process`` / ``@workhorse.thread``: calls that return futures, run on a shared
pool with the function's own options, under every start method."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

import workhorse
from workhorse._decorators import Decorated, shutdown_pools

BOUND = 30


@pytest.fixture(autouse=True)
def _shared_pools_closed() -> Iterator[None]:
    yield
    shutdown_pools()  # before the leak guard looks for child processes


@workhorse.process
def where(x: int) -> tuple[int, int]:
    return os.getpid(), x * 2


@workhorse.process(timeout=0.5)
def sleepy(event: Any) -> bool:
    return bool(event.wait(BOUND))


@workhorse.process(retries=2, retry_on=KeyError)
def flaky(path: str) -> int:
    with open(path, "a+") as f:
        f.write("x")
        f.seek(0)
        tries = len(f.read())
    if tries < 3:
        raise KeyError(tries)
    return tries


@workhorse.thread
def in_thread(x: int) -> str:
    return f"{threading.current_thread().name}:{x}"


@workhorse.process
def fails(x: int) -> int:
    raise ValueError(f"bad {x}")


class Shape:
    def __init__(self, side: int) -> None:
        self.side = side

    @workhorse.process
    def area(self, scale: int) -> int:
        return self.side * self.side * scale


def test_a_call_returns_a_future_and_runs_in_a_worker() -> None:
    future = where(21)
    assert isinstance(future, Future)
    pid, value = future.result(timeout=BOUND)
    assert value == 42
    assert pid != os.getpid()
    assert where.__wrapped__(2) == (os.getpid(), 4)  # the function itself, here
    assert where.__name__ == "where"
    assert "where" in repr(where)


def test_errors_come_back_with_their_type() -> None:
    with pytest.raises(ValueError, match="bad 3"):
        fails(3).result(timeout=BOUND)


def test_a_call_past_its_timeout_is_stopped_and_named() -> None:
    event = workhorse.Event()
    with pytest.raises(workhorse.TaskTimeout, match=r"task sleepy\("):
        sleepy(event).result(timeout=BOUND)
    assert where(1).result(timeout=BOUND)[1] == 2  # the pool goes on


def test_retries_are_the_function_s_own(tmp_path: Any) -> None:
    assert flaky(str(tmp_path / "tries")).result(timeout=BOUND) == 3


def test_cancel_stops_a_running_call_by_default() -> None:
    event = workhorse.Event()
    release = workhorse.Event()

    @workhorse.process
    def hold(started: Any, gate: Any) -> bool:
        started.set()
        return bool(gate.wait(BOUND))

    future = hold(event, release)
    assert event.wait(BOUND)
    assert future.cancel()
    assert future.cancelled()
    assert where(5).result(timeout=BOUND)[1] == 10


def test_thread_decorator_runs_in_a_pool_thread() -> None:
    name = in_thread(7).result(timeout=BOUND)
    assert name.startswith("workhorse.thread")
    assert name.endswith(":7")


def test_methods_lambdas_and_closures() -> None:
    assert Shape(3).area(2).result(timeout=BOUND) == 18
    offset = 10
    add = workhorse.process(lambda v: v + offset)
    assert add(5).result(timeout=BOUND) == 15


def test_functions_of_a_kind_share_one_pool() -> None:
    pids = {where(i).result(timeout=BOUND)[0] for i in range(20)}
    other = workhorse.process(os.getpid)
    pids |= {other().result(timeout=BOUND) for _ in range(20)}
    assert len(pids) <= (os.cpu_count() or 1)


def test_every_start_method(start_method: str) -> None:
    context = workhorse.get_context(start_method)
    remote = workhorse.process(where.__wrapped__, mp_context=context)
    assert remote(4).result(timeout=BOUND)[1] == 8
    assert isinstance(remote, Decorated)


def test_bad_arguments_are_refused_when_decorating() -> None:
    with pytest.raises(TypeError, match="needs a callable, not int"):
        workhorse.process(3)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="max_workers"):
        workhorse.thread(max_workers=0)
    with pytest.raises(ValueError, match="timeout"):
        workhorse.process(timeout=-1)
    with pytest.raises(TypeError, match="retry_on"):
        workhorse.thread(retry_on="KeyError")  # type: ignore[call-overload]
