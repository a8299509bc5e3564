"""Tests of workhorse._taskgroup.TaskGroup over processes and threads."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest

from workhorse._errors import Cancelled, WorkerCrashed
from workhorse._pipe import Pipe
from workhorse._process import Process, process_class
from workhorse._taskgroup import TaskGroup
from workhorse._thread import Thread
from workhorse._thread_sync import Event as BlockingEvent


def _block_forever() -> None:
    """A workhorse blocking call that only a cancellation ends."""
    BlockingEvent().wait()


class Boom(Exception):
    pass


class Fatal(BaseException):
    pass


WORKERS: list[Any] = [Process, Thread]


@pytest.mark.parametrize("worker", WORKERS)
def test_taskgroup_results_in_start_order(worker: Any) -> None:
    with TaskGroup(worker) as g:
        members = [g.start(lambda i: i * i, i) for i in range(4)]
        members.append(g.start(lambda *, k: k, k="kw"))
    assert g.results == [0, 1, 4, 9, "kw"]
    assert [m.result() for m in members] == g.results
    assert g.members == members
    with pytest.raises(RuntimeError):
        g.start(print)


def test_taskgroup_failing_process_terminates_a_blocked_sibling() -> None:
    ready, ready_w = Pipe(duplex=False)
    t0 = time.monotonic()
    with pytest.raises(ExceptionGroup) as info, ready, ready_w, TaskGroup(Process) as g:  # noqa: PT012
        sibling = g.start(lambda w: (w.send("up"), threading.Event().wait()), ready_w)
        assert ready.recv(timeout=30) == "up"
        g.start(lambda: (_ for _ in ()).throw(Boom("member failed")))
        # The body goes on; the group stops the sibling as soon as the member fails.
        sibling.join(timeout=30)
        assert sibling.exitcode == -signal.SIGTERM
    assert time.monotonic() - t0 < 20
    assert [type(e) for e in info.value.exceptions] == [Boom]
    with pytest.raises(WorkerCrashed):
        sibling.result()


def test_taskgroup_failing_thread_cancels_a_blocked_sibling() -> None:
    started = threading.Event()

    def blocked() -> None:
        started.set()
        _block_forever()

    def fail() -> None:
        assert started.wait(10)
        raise Boom("member failed")

    with pytest.raises(ExceptionGroup) as info, TaskGroup(Thread) as g:  # noqa: PT012
        sibling = g.start(blocked)
        g.start(fail)
        assert sibling.exception(timeout=10) is not None  # cancelled while the body runs
    assert [type(e) for e in info.value.exceptions] == [Boom]
    assert sibling.cancelled
    with pytest.raises(Cancelled):
        sibling.result()


def test_taskgroup_failures_are_gathered() -> None:
    barrier = threading.Barrier(2)

    def fail(exc: BaseException) -> None:
        barrier.wait(10)  # both fail before either can be cancelled
        raise exc

    with pytest.raises(BaseExceptionGroup) as info, TaskGroup(Thread) as g:  # noqa: PT012
        g.start(fail, Boom("a"))
        g.start(fail, Fatal("b"))
    assert not isinstance(info.value, ExceptionGroup)  # Fatal is not an Exception
    assert sorted(type(e).__name__ for e in info.value.exceptions) == ["Boom", "Fatal"]


@pytest.mark.parametrize("worker", WORKERS)
def test_taskgroup_body_exception_stops_members(worker: Any) -> None:
    ready, ready_w = Pipe(duplex=False)

    def blocked(w: Any) -> None:
        w.send("up")
        if worker is Process:
            threading.Event().wait()
        _block_forever()

    with pytest.raises(ExceptionGroup) as info, ready, ready_w, TaskGroup(worker) as g:  # noqa: PT012
        member = g.start(blocked, ready_w)
        assert ready.recv(timeout=30) == "up"
        raise Boom("body")
    assert [str(e) for e in info.value.exceptions] == ["body"]
    assert member.exception() is not None
    with pytest.raises(RuntimeError):
        _ = g.results


@pytest.mark.parametrize("worker", WORKERS)
def test_taskgroup_keyboard_interrupt_in_body_propagates(worker: Any) -> None:
    ready, ready_w = Pipe(duplex=False)

    def blocked(w: Any) -> None:
        w.send("up")
        if worker is Process:
            threading.Event().wait()
        _block_forever()

    with pytest.raises(KeyboardInterrupt), ready, ready_w, TaskGroup(worker) as g:  # noqa: PT012
        member = g.start(blocked, ready_w)
        assert ready.recv(timeout=30) == "up"
        raise KeyboardInterrupt
    assert not member.is_alive()


def test_taskgroup_nested_and_started_from_members() -> None:
    def parent_task(g: TaskGroup[Thread]) -> int:
        child = g.start(lambda: 10)
        with TaskGroup(Thread) as inner:
            inner.start(lambda: 1)
            inner.start(lambda: 2)
        total: int = sum(inner.results) + child.result(timeout=10)
        return total

    with TaskGroup(Thread) as g:
        g.start(parent_task, g)
    assert g.results[0] == 13
    assert g.results[1] == 10


def test_taskgroup_cancelled_member_stops_its_nested_group() -> None:
    inner_up = threading.Event()

    def with_inner_group() -> None:
        with TaskGroup(Thread) as inner:
            inner.start(_block_forever)
            inner_up.set()
            _block_forever()

    def fail() -> None:
        assert inner_up.wait(10)
        raise Boom("outer member failed")

    with pytest.raises(ExceptionGroup) as info, TaskGroup(Thread) as g:  # noqa: PT012
        nester = g.start(with_inner_group)
        g.start(fail)
    assert [type(e) for e in info.value.exceptions] == [Boom]
    assert isinstance(nester.exception(), Cancelled)


def test_taskgroup_process_ignoring_sigterm_is_killed() -> None:
    ready, ready_w = Pipe(duplex=False)

    def stubborn(w: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        w.send("up")
        threading.Event().wait()

    g: TaskGroup[Process] = TaskGroup(process_class("fork"))
    g.grace = 0.2
    with pytest.raises(ExceptionGroup), ready, ready_w, g:  # noqa: PT012
        member = g.start(stubborn, ready_w)
        assert ready.recv(timeout=30) == "up"
        g.start(lambda: 1 / 0)
    assert member.exitcode == -signal.SIGKILL


def _wait_then_fail(event: Any) -> None:
    event.wait(30)
    raise Boom("after the event")


def test_taskgroup_under_every_start_method(start_method: str) -> None:
    """Lambdas as members, a primitive handed to members, a failure stopping a sibling."""
    import workhorse

    ctx = workhorse.with_start_method(start_method)
    event = ctx.Event()
    with ctx.group() as g:
        g.start(lambda: 6 * 7)
        g.start(event.set)
    assert g.results == [42, None]
    assert event.is_set()
    started = time.monotonic()
    failing = ctx.group()
    with pytest.raises(ExceptionGroup) as caught, failing as g:  # noqa: PT012
        g.start(_wait_then_fail, event)
        g.start(time.sleep, 60)  # stopped by the group when its sibling fails
    assert caught.group_contains(Boom)
    assert time.monotonic() - started < 30
