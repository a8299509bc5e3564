"""Tests of the thread synchronisation primitives (workhorse._thread_sync).

Contract tests run the same checks against :mod:`threading` and workhorse, which proves the
drop-in claim; the rest covers what workhorse adds (cancellation) and fault-matrix §2.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from _thread_helpers import WAIT, Runner, blocked_in, poll
from workhorse import _cancel
from workhorse._errors import Cancelled
from workhorse._thread_sync import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Event,
    Lock,
    RLock,
    Semaphore,
)
from workhorse._timeouts import TIMEOUT_MAX

Factory = Callable[..., Any]

LOCKS = pytest.mark.parametrize(
    "make_lock", [threading.Lock, Lock, threading.RLock, RLock], ids=["std", "wh", "stdR", "whR"]
)
RLOCKS = pytest.mark.parametrize("make_rlock", [threading.RLock, RLock], ids=["std", "wh"])
CONDITIONS = pytest.mark.parametrize(
    "make_cond", [threading.Condition, Condition], ids=["std", "wh"]
)
SEMAPHORES = pytest.mark.parametrize(
    "make_sem",
    [threading.Semaphore, Semaphore, threading.BoundedSemaphore, BoundedSemaphore],
    ids=["std", "wh", "stdB", "whB"],
)
EVENTS = pytest.mark.parametrize("make_event", [threading.Event, Event], ids=["std", "wh"])
BARRIERS = pytest.mark.parametrize("make_barrier", [threading.Barrier, Barrier], ids=["std", "wh"])

# -- helpers ----------------------------------------------------------------------------------


BLOCK_CODE = _cancel.block.__code__


def elapsed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


# -- Lock / RLock -----------------------------------------------------------------------------


@LOCKS
def test_lock_acquire_release_contract(make_lock: Factory) -> None:
    lock = make_lock()
    assert lock.acquire() is True
    lock.release()
    with lock:
        pass
    assert lock.acquire(False) is True
    lock.release()
    assert lock.acquire(True, TIMEOUT_MAX) is True  # accepted, and free: returns at once
    lock.release()


@LOCKS
@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((False, 1), ValueError),
        ((True, -100), ValueError),
        ((True, -1.5), ValueError),
        ((True, 1e100), OverflowError),
    ],
)
def test_lock_acquire_rejects_bad_timeouts(
    make_lock: Factory, args: tuple[bool, float], error: type[Exception]
) -> None:
    lock = make_lock()
    with pytest.raises(error):
        lock.acquire(*args)


@pytest.mark.parametrize("make_lock", [Lock, RLock], ids=["wh", "whR"])
@pytest.mark.parametrize(
    ("args", "error"),
    [((False, 1), ValueError), ((True, -100), ValueError), ((True, 1e100), OverflowError)],
)
def test_lock_acquire_rejects_bad_timeouts_in_scope(
    make_lock: Factory, args: tuple[bool, float], error: type[Exception]
) -> None:
    lock = make_lock()
    with _cancel.entered(_cancel.CancelScope()), pytest.raises(error):
        lock.acquire(*args)


@pytest.mark.parametrize("make_lock", [threading.Lock, Lock], ids=["std", "wh"])
def test_lock_timeout_and_foreign_release(make_lock: Factory, runner: Runner) -> None:
    lock = make_lock()
    lock.acquire()
    assert lock.locked()
    runner.start(lambda: lock.acquire(False))
    runner.start(lambda: elapsed(lambda: lock.acquire(True, 0.05)))
    first, (got, took) = sorted(runner.join(), key=lambda r: isinstance(r, tuple))
    assert first is False
    assert got is False
    assert took >= 0.04
    runner.start(lock.release)  # a plain lock may be released by any thread
    runner.join()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()


@pytest.mark.parametrize("in_scope", [False, True])
@pytest.mark.parametrize("make_lock", [Lock, RLock], ids=["wh", "whR"])
def test_lock_wait_timeout_in_and_out_of_scope(
    make_lock: Factory, in_scope: bool, runner: Runner
) -> None:
    lock = make_lock()
    lock.acquire()
    scope = _cancel.CancelScope() if in_scope else None
    runner.start(lambda: elapsed(lambda: lock.acquire(timeout=0.06)), scope)
    [(got, took)] = runner.join()
    assert got is False
    assert took >= 0.05
    lock.release()


@RLOCKS
def test_rlock_is_reentrant_and_owned(make_rlock: Factory, runner: Runner) -> None:
    lock = make_rlock()
    with pytest.raises(RuntimeError):
        lock.release()  # unowned
    lock.acquire()
    lock.acquire()
    runner.start(lock.release)
    runner.start(lambda: lock.acquire(False))
    results = runner.join()
    assert any(isinstance(r, RuntimeError) for r in results)  # a non-owner cannot release
    assert False in results
    lock.release()
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()


def test_lock_reprs_show_state_in_threading_s_shape() -> None:
    lock, rlock = Lock(), RLock()
    assert re.fullmatch(r"<unlocked workhorse\.threads\.Lock object at 0x[0-9a-f]+>", repr(lock))
    with lock:
        me = threading.get_ident()
        assert repr(lock).startswith(f"<locked workhorse.threads.Lock object owner={me} at")
    with rlock, rlock:
        assert repr(rlock).startswith(f"<locked workhorse.threads.RLock object owner={me}")
        assert "count=2" in repr(rlock)
    assert repr(rlock).startswith("<unlocked workhorse.threads.RLock object owner=0 count=0")


# -- Condition --------------------------------------------------------------------------------


@CONDITIONS
def test_condition_requires_the_lock(make_cond: Factory) -> None:
    cond = make_cond()
    with pytest.raises(RuntimeError):
        cond.wait(0.01)
    with pytest.raises(RuntimeError):
        cond.notify()
    with pytest.raises(RuntimeError):
        cond.notify_all()
    with cond, cond:  # the default lock is reentrant
        assert cond.wait(0) is False
        _, took = elapsed(lambda: cond.wait(0.05))
        assert took >= 0.04
        assert cond.wait_for(lambda: 42, 0) == 42
        assert cond.wait_for(lambda: 0, 0.02) == 0


@CONDITIONS
@pytest.mark.parametrize("make_lock", [threading.Lock, threading.RLock, Lock, RLock])
def test_condition_notify_counts(make_cond: Factory, make_lock: Factory, runner: Runner) -> None:
    cond = make_cond(make_lock())
    state = {"woken": 0}

    def waiter() -> bool:
        with cond:
            result: bool = cond.wait(WAIT)
            state["woken"] += 1
            return result

    for _ in range(5):
        runner.start(waiter)
    poll(lambda: len(cond._waiters) == 5, "five waiters")
    with cond:
        cond.notify(2)
    poll(lambda: state["woken"] == 2, "two woken")
    with cond:
        cond.notify_all()
    assert runner.join() == [True] * 5


@CONDITIONS
def test_condition_wait_for_predicate(make_cond: Factory, runner: Runner) -> None:
    cond = make_cond()
    box: list[int] = []

    def consumer() -> list[int]:
        with cond:
            result: list[int] = cond.wait_for(lambda: box, WAIT)
            return result

    runner.start(consumer)
    poll(lambda: len(cond._waiters) == 1, "a waiter")
    with cond:
        box.append(1)
        cond.notify()
    assert runner.join() == [[1]]


def test_condition_over_lock_checks_the_owner(runner: Runner) -> None:
    lock = Lock()
    cond = Condition(lock)
    lock.acquire()  # held by the main thread: other threads must not wait or notify
    runner.start(lambda: cond.wait(0))
    runner.start(cond.notify)
    assert all(isinstance(r, RuntimeError) for r in runner.join())
    lock.release()


def test_condition_with_rlock_releases_every_level(runner: Runner) -> None:
    cond = Condition(RLock())
    with cond, cond:

        def notifier() -> None:
            with cond:
                cond.notify()

        runner.start(notifier)
        assert cond.wait(WAIT) is True  # the other thread got the lock while we waited
        assert cond._is_owned()
    runner.join()


# -- Semaphore --------------------------------------------------------------------------------


@SEMAPHORES
def test_semaphore_contract(make_sem: Factory, runner: Runner) -> None:
    with pytest.raises(ValueError, match="initial value must be >= 0"):
        make_sem(-1)
    sem = make_sem(1)
    with pytest.raises(ValueError, match="can't specify timeout"):
        sem.acquire(False, 1)
    assert sem.acquire(False) is True
    assert sem.acquire(False) is False
    assert sem.acquire(timeout=0) is False
    assert sem.acquire(timeout=-1) is False
    _, took = elapsed(lambda: sem.acquire(timeout=0.05))
    assert took >= 0.04
    with pytest.raises(ValueError, match="n must be one or more"):
        sem.release(0)
    sem.release()
    with sem:
        assert sem.acquire(False) is False
    assert sem.acquire(True, TIMEOUT_MAX) is True


@pytest.mark.parametrize(
    "make_sem", [threading.BoundedSemaphore, BoundedSemaphore], ids=["std", "wh"]
)
def test_bounded_semaphore_over_release(make_sem: Factory) -> None:
    sem = make_sem(2)
    with pytest.raises(ValueError, match="released too many times"):
        sem.release()
    sem.acquire()
    with pytest.raises(ValueError, match="released too many times"):
        sem.release(2)
    sem.release()


@SEMAPHORES
def test_semaphore_release_n_wakes_n(make_sem: Factory, runner: Runner) -> None:
    sem = make_sem(3)
    for _ in range(3):
        sem.acquire()
    for _ in range(3):
        runner.start(lambda: sem.acquire(timeout=WAIT))
    poll(lambda: len(sem._cond._waiters) == 3, "three waiters")
    sem.release(3)
    assert runner.join() == [True] * 3


@pytest.mark.parametrize("make_sem", [threading.Semaphore, Semaphore], ids=["std", "wh"])
def test_semaphore_high_water_mark(make_sem: Factory, runner: Runner) -> None:
    sem = make_sem(4)
    count = threading.Lock()
    state = {"running": 0, "high": 0}
    gate = threading.Event()

    def worker() -> None:
        with sem:
            with count:
                state["running"] += 1
                state["high"] = max(state["high"], state["running"])
            gate.wait(WAIT)
            with count:
                state["running"] -= 1

    for _ in range(10):
        runner.start(worker)
    poll(lambda: state["running"] == 4, "four holders")
    gate.set()
    runner.join()
    assert state["high"] == 4
    assert state["running"] == 0


def test_semaphore_reprs() -> None:
    assert "workhorse.threads.Semaphore" in repr(Semaphore(2))
    assert repr(Semaphore(2)).endswith("value=2>")
    assert repr(BoundedSemaphore(3)).endswith("value=3/3>")
    assert isinstance(BoundedSemaphore(), threading.BoundedSemaphore)


# -- Event ------------------------------------------------------------------------------------


@EVENTS
def test_event_contract(make_event: Factory, runner: Runner) -> None:
    event = make_event()
    assert not event.is_set()
    assert "unset>" in repr(event)
    result, took = elapsed(lambda: event.wait(0))
    assert result is False
    assert took < 1
    assert event.wait(-1) is False
    _, took = elapsed(lambda: event.wait(0.05))
    assert took >= 0.04
    with pytest.raises(OverflowError):
        event.wait(1e100)
    runner.start(lambda: event.wait(WAIT))
    runner.start(lambda: event.wait(WAIT))
    poll(lambda: len(event._cond._waiters) == 2, "two waiters")
    event.set()
    assert runner.join() == [True, True]
    assert event.is_set()
    assert "set>" in repr(event)
    assert event.wait(0) is True
    event.clear()
    assert event.wait(0) is False


# -- Barrier ----------------------------------------------------------------------------------


@BARRIERS
def test_barrier_passes_cycles_and_runs_action_once(make_barrier: Factory, runner: Runner) -> None:
    if make_barrier is Barrier or sys.version_info >= (3, 13):  # 3.13 added the check
        with pytest.raises(ValueError, match="parties must be > 0"):
            make_barrier(0)
    assert make_barrier(1).wait() == 0  # never blocks
    actions: list[int] = []
    barrier = make_barrier(3, action=lambda: actions.append(1))
    assert (barrier.parties, barrier.n_waiting, barrier.broken) == (3, 0, False)

    def party() -> list[int]:
        return [barrier.wait(WAIT) for _ in range(2)]

    for _ in range(3):
        runner.start(party)
    indices = runner.join()
    assert sorted(i[0] for i in indices) == [0, 1, 2]
    assert sorted(i[1] for i in indices) == [0, 1, 2]
    assert actions == [1, 1]


@BARRIERS
def test_barrier_abort_breaks_it(make_barrier: Factory, runner: Runner) -> None:
    barrier = make_barrier(3)
    runner.start(barrier.wait)
    runner.start(barrier.wait)
    poll(lambda: barrier.n_waiting == 2, "two waiting")
    barrier.abort()
    assert all(isinstance(r, threading.BrokenBarrierError) for r in runner.join())
    assert barrier.broken
    assert "broken" in repr(barrier)
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()
    barrier.reset()
    assert not barrier.broken


@BARRIERS
def test_barrier_reset_frees_waiters(make_barrier: Factory, runner: Runner) -> None:
    barrier = make_barrier(2)
    runner.start(barrier.wait)
    poll(lambda: barrier.n_waiting == 1, "one waiting")
    barrier.reset()
    [result] = runner.join()
    assert isinstance(result, threading.BrokenBarrierError)
    assert not barrier.broken
    runner.start(lambda: barrier.wait(WAIT))
    assert barrier.wait(WAIT) in (0, 1)  # usable again


@BARRIERS
@pytest.mark.parametrize("use_default", [False, True])
def test_barrier_timeout_breaks_it(make_barrier: Factory, use_default: bool) -> None:
    barrier = make_barrier(2, timeout=0.05 if use_default else None)
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait() if use_default else barrier.wait(0.05)
    assert barrier.broken


@BARRIERS
def test_barrier_failing_action_breaks_it(make_barrier: Factory, runner: Runner) -> None:
    def action() -> None:
        raise KeyError("boom")

    barrier = make_barrier(2, action=action)
    runner.start(lambda: barrier.wait(WAIT))
    with pytest.raises(KeyError):
        barrier.wait(WAIT)
    [other] = runner.join()
    assert isinstance(other, threading.BrokenBarrierError)
    assert barrier.broken


def test_stdlib_types_are_kept() -> None:
    assert isinstance(Semaphore(), threading.Semaphore)
    assert isinstance(Event(), threading.Event)
    assert isinstance(Barrier(1), threading.Barrier)
    assert isinstance(Condition(), threading.Condition)
    assert isinstance(Condition(threading.Lock()), threading.Condition)


# -- cancellation -----------------------------------------------------------------------------


def cancel_while_blocked(
    runner: Runner, call: Callable[[], object], after: Callable[[], None] | None = None
) -> object:
    """Run ``call`` in a scoped thread, cancel it once it blocks, return its outcome."""
    scope = _cancel.CancelScope()
    thread = runner.start(call, scope)
    poll(lambda: blocked_in(thread, BLOCK_CODE), "the thread to block")
    scope.cancel()
    thread.join(WAIT)
    assert not thread.is_alive()
    if after is not None:
        after()
    return runner.by_thread[thread]


def test_cancel_lock_acquire(runner: Runner) -> None:
    for lock in (Lock(), RLock()):
        lock.acquire()
        result = cancel_while_blocked(runner, lock.acquire)
        assert isinstance(result, Cancelled)
        lock.release()
        assert lock.acquire(False)
        lock.release()


def test_cancel_condition_wait_reacquires_the_lock(runner: Runner) -> None:
    for lock in (Lock(), RLock(), threading.Lock(), threading.RLock()):
        cond = Condition(lock)
        owned: list[bool] = []

        def waiter(cond: Condition = cond, owned: list[bool] = owned) -> None:
            with cond:
                try:
                    cond.wait()
                finally:
                    owned.append(cond._is_owned())

        result = cancel_while_blocked(runner, waiter)
        assert isinstance(result, Cancelled)
        assert owned == [True]
        assert not cond._waiters
        assert cond.acquire(False)  # released again by the waiter's `with`
        cond.release()


def test_cancel_condition_wait_for(runner: Runner) -> None:
    cond = Condition()

    def waiter() -> object:
        with cond:
            return cond.wait_for(lambda: False)

    assert isinstance(cancel_while_blocked(runner, waiter), Cancelled)


def test_cancelled_waiter_passes_its_notification_on(runner: Runner) -> None:
    lock = Lock()
    cond = Condition(lock)
    scope = _cancel.CancelScope()

    def wait() -> bool:
        with cond:
            result: bool = cond.wait(WAIT)
            return result

    first = runner.start(wait, scope)
    poll(lambda: len(cond._waiters) == 1, "the first waiter")
    runner.start(wait)
    poll(lambda: len(cond._waiters) == 2, "the second waiter")
    with cond:
        scope.cancel()
        # The first waiter notices, and blocks re-acquiring the lock we hold...
        poll(lambda: blocked_in(first, Lock._acquire_restore.__code__), "re-acquire")
        cond.notify(1)  # ...so this notification goes to it, and it must pass it on.
    results = runner.join()
    assert any(isinstance(r, Cancelled) for r in results)
    assert True in results


def test_cancel_semaphore_acquire(runner: Runner) -> None:
    sem = BoundedSemaphore(1)
    sem.acquire()
    assert isinstance(cancel_while_blocked(runner, sem.acquire), Cancelled)
    assert sem._value == 0
    sem.release()
    assert sem.acquire(False)


def test_cancel_event_wait(runner: Runner) -> None:
    event = Event()
    assert isinstance(cancel_while_blocked(runner, event.wait), Cancelled)
    event.set()
    assert event.wait(0)


def test_cancel_barrier_wait_breaks_it_for_the_others(runner: Runner) -> None:
    barrier = Barrier(3)
    runner.start(lambda: barrier.wait(WAIT))
    poll(lambda: barrier.n_waiting == 1, "one waiting")
    result = cancel_while_blocked(runner, barrier.wait)
    assert isinstance(result, Cancelled)
    results = runner.join()
    assert any(isinstance(r, threading.BrokenBarrierError) for r in results)
    assert barrier.broken
    barrier.reset()
    runner.start(lambda: barrier.wait(WAIT))
    runner.start(lambda: barrier.wait(WAIT))
    assert barrier.wait(WAIT) in (0, 1, 2)


@pytest.mark.parametrize(
    "call",
    [
        lambda: Lock().acquire(),
        lambda: RLock().acquire(),
        lambda: Semaphore(1).acquire(),
        lambda: Barrier(1).wait(),
        lambda: Event().wait(0),
        lambda: _set_event().wait(),
    ],
    ids=["lock", "rlock", "semaphore", "barrier", "event", "set-event"],
)
def test_cancelled_scope_raises_on_entry(call: Callable[[], object]) -> None:
    scope = _cancel.CancelScope()
    scope.cancel()
    with _cancel.entered(scope), pytest.raises(Cancelled):
        call()


def _set_event() -> Event:
    event = Event()
    event.set()
    return event


def test_cancelled_scope_allows_non_blocking_calls() -> None:
    scope = _cancel.CancelScope()
    scope.cancel()
    lock, sem, event, cond, barrier = Lock(), BoundedSemaphore(1), Event(), Condition(), Barrier(2)
    with _cancel.entered(scope):
        assert lock.acquire(False)
        lock.release()
        assert sem.acquire(False)
        sem.release()
        event.set()
        event.clear()
        barrier.reset()
        barrier.abort()
    with cond:
        with _cancel.entered(scope):
            cond.notify_all()
        assert cond.wait(0) is False  # outside the scope again


def test_scope_does_not_delay_wake_ups(runner: Runner) -> None:
    """Inside a scope a wake-up by the primitive is immediate, not one slice later."""
    event = Event()
    thread = runner.start(lambda: elapsed(lambda: event.wait(WAIT)), _cancel.CancelScope())
    poll(lambda: blocked_in(thread, BLOCK_CODE), "the waiter")
    event.set()
    [(result, _took)] = runner.join()
    assert result is True
