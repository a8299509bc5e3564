"""Tests of the thread queues (workhorse._thread_queue).

Contract tests run against :mod:`queue` and workhorse alike (shutdown ones against
``queue.Queue`` too on 3.13+, ported from CPython's ``test_queue.py``); the rest covers
batching, iteration, close, join(timeout), cancellation and fault-matrix §2.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _thread_helpers import WAIT, Runner, blocked_in, poll
from workhorse import _cancel
from workhorse._errors import Cancelled, QueueShutDown
from workhorse._thread_queue import JoinableQueue, Queue, SimpleQueue

Factory = Callable[..., Any]

#: What `except` clause catches a shutdown for both implementations.
ShutDown: type[Exception] = getattr(queue, "ShutDown", QueueShutDown)

QUEUES = pytest.mark.parametrize(
    "make_queue", [queue.Queue, Queue, JoinableQueue], ids=["std", "wh", "whJ"]
)
SIMPLE_QUEUES = pytest.mark.parametrize(
    "make_simple", [queue.SimpleQueue, SimpleQueue], ids=["std", "wh"]
)
# Shutdown contract: the stdlib joins in where it has shutdown (3.13+).
_SHUTDOWN_TYPES: list[Factory] = [Queue, JoinableQueue]
if hasattr(queue.Queue, "shutdown"):
    _SHUTDOWN_TYPES.append(queue.Queue)
SHUTDOWN_QUEUES = pytest.mark.parametrize(
    "make_queue",
    _SHUTDOWN_TYPES,
    ids=[t.__module__.split(".")[0] + t.__name__ for t in _SHUTDOWN_TYPES],
)


# -- helpers ----------------------------------------------------------------------------------


def waiters(cond: Any) -> int:
    """Threads waiting on a (threading or workhorse) Condition."""
    return len(cond._waiters)


def took(fn: Callable[[], object]) -> float:
    start = time.monotonic()
    try:
        fn()
    except Exception:
        pass
    return time.monotonic() - start


# -- the stdlib contract ----------------------------------------------------------------------


@QUEUES
def test_queue_fifo_and_sizes(make_queue: Factory) -> None:
    q = make_queue(3)
    assert (q.maxsize, q.qsize(), q.empty(), q.full()) == (3, 0, True, False)
    for i in range(3):
        q.put(i)
    assert (q.qsize(), q.empty(), q.full()) == (3, False, True)
    assert [q.get(), q.get_nowait(), q.get(True, 1.0)] == [0, 1, 2]
    assert isinstance(q, queue.Queue)


@QUEUES
@pytest.mark.parametrize(
    "put",
    [
        lambda q: q.put(9, False),
        lambda q: q.put(9, False, None),
        lambda q: q.put_nowait(9),
        lambda q: q.put(9, False, 2.0),
        lambda q: q.put(9, True, 0),
    ],
    ids=["noblock", "noblock-None", "nowait", "noblock-2s", "timeout-0"],
)
def test_queue_full_at_once(make_queue: Factory, put: Callable[[Any], None]) -> None:
    q = make_queue(1)
    q.put(1)
    with pytest.raises(queue.Full):
        put(q)
    assert took(lambda: put(q)) < 1.0
    assert q.qsize() == 1


@QUEUES
def test_queue_full_after_timeout(make_queue: Factory) -> None:
    q = make_queue(1)
    q.put(1)
    with pytest.raises(queue.Full):
        q.put(2, True, 0.1)
    assert took(lambda: q.put(2, True, 0.1)) >= 0.09


GETS = pytest.mark.parametrize(
    "get",
    [
        lambda q: q.get(False),
        lambda q: q.get(False, None),
        lambda q: q.get_nowait(),
        lambda q: q.get(False, 2.0),
        lambda q: q.get(True, 0),
    ],
    ids=["noblock", "noblock-None", "nowait", "noblock-2s", "timeout-0"],
)


@QUEUES
@GETS
def test_queue_empty_at_once(make_queue: Factory, get: Callable[[Any], None]) -> None:
    q = make_queue()
    with pytest.raises(queue.Empty):
        get(q)
    assert took(lambda: get(q)) < 1.0


@SIMPLE_QUEUES
@GETS
def test_simple_queue_empty_at_once(make_simple: Factory, get: Callable[[Any], None]) -> None:
    q = make_simple()
    with pytest.raises(queue.Empty):
        get(q)
    assert took(lambda: get(q)) < 1.0


@pytest.mark.parametrize(
    "make", [queue.Queue, Queue, queue.SimpleQueue, SimpleQueue], ids=["std", "wh", "stdS", "whS"]
)
def test_queue_empty_after_timeout(make: Factory) -> None:
    q = make()
    with pytest.raises(queue.Empty):
        q.get(True, 0.2)
    assert took(lambda: q.get(True, 0.2)) >= 0.1


@pytest.mark.parametrize(
    "make", [queue.Queue, Queue, queue.SimpleQueue, SimpleQueue], ids=["std", "wh", "stdS", "whS"]
)
def test_queue_negative_timeout(make: Factory) -> None:
    q = make()
    q.put(1)
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        q.get(True, -1)  # even though an item is there
    assert q.get(False, -1) == 1  # a non-blocking call ignores the timeout


@QUEUES
def test_queue_put_negative_timeout(make_queue: Factory) -> None:
    bounded, unbounded = make_queue(1), make_queue()
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        bounded.put(1, True, -1)
    unbounded.put(1, True, -1)  # the stdlib never looks at an unbounded queue's timeout
    assert unbounded.get() == 1


@QUEUES
def test_queue_task_done_and_join(make_queue: Factory, runner: Runner) -> None:
    q = make_queue()
    with pytest.raises(ValueError, match="task_done\\(\\) called too many times"):
        q.task_done()
    for i in range(4):
        q.put(i)

    def worker() -> None:
        while True:
            item = q.get()
            q.task_done()
            if item == 3:
                return

    runner.start(worker)
    q.join()
    assert q.unfinished_tasks == 0
    runner.join()


@QUEUES
def test_queue_shrinking_maxsize(make_queue: Factory) -> None:
    q = make_queue(4)
    for i in range(3):
        q.put(i)
    q.maxsize = 2
    with pytest.raises(queue.Full):
        q.put_nowait(4)


@SIMPLE_QUEUES
def test_simple_queue_contract(make_simple: Factory) -> None:
    q = make_simple()
    assert q.empty()
    for i in range(100):
        q.put(i, True, 0.0)  # block/timeout are accepted and ignored
    q.put_nowait(100)
    assert q.qsize() == 101
    assert [q.get() for _ in range(50)] + [q.get_nowait() for _ in range(51)] == list(range(101))


# -- shutdown (3.13's semantics) --------------------------------------------------------------


@SHUTDOWN_QUEUES
def test_queue_shutdown_empty(make_queue: Factory) -> None:
    q = make_queue()
    q.shutdown()
    with pytest.raises(ShutDown):
        q.put("data")
    with pytest.raises(ShutDown):
        q.get()


@SHUTDOWN_QUEUES
def test_queue_shutdown_drains_then_raises(make_queue: Factory) -> None:
    q = make_queue()
    q.put("data")
    q.shutdown()
    assert q.get() == "data"
    with pytest.raises(ShutDown):
        q.get()


@SHUTDOWN_QUEUES
def test_queue_shutdown_immediate_drops(make_queue: Factory) -> None:
    q = make_queue()
    q.put("data")
    q.shutdown(immediate=True)
    with pytest.raises(ShutDown):
        q.get()


@SHUTDOWN_QUEUES
def test_queue_shutdown_allowed_transitions(make_queue: Factory) -> None:
    q = make_queue()
    assert not q.is_shutdown
    q.shutdown()
    assert q.is_shutdown
    q.shutdown(immediate=True)
    assert q.is_shutdown
    q.shutdown(immediate=False)
    assert q.is_shutdown


def test_queue_shutdown_state_never_moves_back() -> None:
    q: Queue[int] = Queue()
    assert "alive" in repr(q)
    q.shutdown(immediate=True)
    q.shutdown()
    assert "shutdown(immediate)" in repr(q)


@SHUTDOWN_QUEUES
@pytest.mark.parametrize("immediate", [False, True])
def test_queue_shutdown_all_methods_in_one_thread(make_queue: Factory, immediate: bool) -> None:
    q = make_queue(2)
    q.put("L")
    q.put_nowait("O")
    q.shutdown(immediate)
    with pytest.raises(ShutDown):
        q.put("E")
    with pytest.raises(ShutDown):
        q.put_nowait("W")
    if immediate:
        with pytest.raises(ShutDown):
            q.get()
        with pytest.raises(ShutDown):
            q.get_nowait()
        with pytest.raises(ValueError):
            q.task_done()
        q.join()
    else:
        assert q.get() in "LO"
        q.task_done()
        assert q.get() in "LO"
        q.task_done()
        q.join()
        with pytest.raises(ShutDown):
            q.get()
        with pytest.raises(ShutDown):
            q.get_nowait()
        with pytest.raises(ShutDown):
            q.get(True, 1.0)


@SHUTDOWN_QUEUES
@pytest.mark.parametrize("immediate", [False, True])
def test_queue_shutdown_wakes_blocked_getters(
    make_queue: Factory, immediate: bool, runner: Runner
) -> None:
    q = make_queue()
    for _ in range(6):
        runner.start(q.get)
    poll(lambda: waiters(q.not_empty) == 6, "six getters")
    q.shutdown(immediate)
    assert all(isinstance(r, ShutDown) for r in runner.join())


@SHUTDOWN_QUEUES
@pytest.mark.parametrize("immediate", [False, True])
def test_queue_shutdown_wakes_blocked_putters(
    make_queue: Factory, immediate: bool, runner: Runner
) -> None:
    q = make_queue(1)
    q.put(0)
    for i in range(6):
        runner.start(lambda i=i: q.put(i))  # type: ignore[misc]
    poll(lambda: waiters(q.not_full) == 6, "six putters")
    q.shutdown(immediate)
    assert all(isinstance(r, ShutDown) for r in runner.join())
    assert q.qsize() == (0 if immediate else 1)


@SHUTDOWN_QUEUES
def test_queue_shutdown_immediate_wakes_blocked_joiners(
    make_queue: Factory, runner: Runner
) -> None:
    q = make_queue()
    q.put("Y")
    q.put("D")
    for _ in range(4):
        runner.start(q.join)
    poll(lambda: waiters(q.all_tasks_done) == 4, "four joiners")
    q.shutdown(immediate=True)
    assert runner.join() == [None if make_queue is queue.Queue else True] * 4
    assert q.unfinished_tasks == 0


@SHUTDOWN_QUEUES
def test_queue_shutdown_immediate_keeps_tasks_taken(make_queue: Factory, runner: Runner) -> None:
    """Only dropped items count as done: a task taken before the shutdown still holds join."""
    q = make_queue()
    q.put("taken")
    q.put("dropped")
    assert q.get() == "taken"
    runner.start(q.join)
    poll(lambda: waiters(q.all_tasks_done) == 1, "a joiner")
    q.shutdown(immediate=True)
    assert q.unfinished_tasks == 1
    q.task_done()
    runner.join()
    with pytest.raises(ValueError):
        q.task_done()


@SHUTDOWN_QUEUES
def test_queue_shutdown_get_task_done_join(make_queue: Factory, runner: Runner) -> None:
    q = make_queue(2)
    q.put("Y")
    q.put("D")

    def get_task_done() -> bool:
        q.get()
        q.task_done()
        return True

    for fn in (get_task_done, get_task_done, q.join, q.join):
        runner.start(fn)
    q.shutdown(False)
    results = runner.join()
    assert results.count(True) >= 2  # our join() returns True too, the stdlib's None
    assert len(results) == 4
    assert not any(isinstance(r, BaseException) for r in results)


@SHUTDOWN_QUEUES
def test_queue_shutdown_put_join(make_queue: Factory, runner: Runner) -> None:
    q = make_queue(1)
    q.put("Y")
    runner.start(lambda: q.put("E"))
    runner.start(q.join)
    poll(lambda: waiters(q.not_full) == 1 and waiters(q.all_tasks_done) == 1, "both blocked")
    q.shutdown()
    assert q.get() == "Y"
    q.task_done()
    results = runner.join()
    assert any(isinstance(r, ShutDown) for r in results)
    assert not any(isinstance(r, BaseException) and not isinstance(r, ShutDown) for r in results)


@SHUTDOWN_QUEUES
def test_queue_shutdown_many_threads(make_queue: Factory, runner: Runner) -> None:
    """Producers, consumers and joiners all end once the queue is shut down and drained."""
    q = make_queue(8)
    received: list[int] = []
    lock = threading.Lock()

    def produce(base: int) -> None:
        try:
            for i in range(10_000):
                q.put(base + i)
        except ShutDown:
            pass

    def consume() -> None:
        try:
            while True:
                item = q.get()
                with lock:
                    received.append(item)
                q.task_done()
        except ShutDown:
            pass

    for n in range(4):
        runner.start(lambda n=n: produce(n * 100_000))  # type: ignore[misc]
    for _ in range(4):
        runner.start(consume)
    poll(lambda: len(received) >= 1000, "some traffic")
    q.shutdown()
    for _ in range(2):
        runner.start(q.join)
    results = runner.join()
    assert not any(isinstance(r, BaseException) for r in results), results
    assert len(set(received)) == len(received)
    assert q.unfinished_tasks == 0


def test_queue_shutdown_error_types() -> None:
    q: Queue[int] = Queue()
    q.shutdown()
    with pytest.raises(QueueShutDown, match="shut-down"):
        q.put(1)
    if sys.version_info >= (3, 13):
        assert issubclass(QueueShutDown, queue.ShutDown)  # type: ignore[attr-defined,unused-ignore]


# -- iteration --------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [Queue, SimpleQueue])
def test_queue_iteration_ends_after_shutdown_and_drain(make: Factory, runner: Runner) -> None:
    q = make()

    def consume() -> list[int]:
        return list(q)

    runner.start(consume)
    q.put_many(range(5))
    q.put(5)
    q.shutdown()
    assert runner.join() == [list(range(6))]
    assert list(q) == []


def test_queue_iteration_immediate_shutdown_drops() -> None:
    q: Queue[int] = Queue()
    q.put_many([1, 2, 3])
    q.shutdown(immediate=True)
    assert list(q) == []


# -- batches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [Queue, SimpleQueue])
def test_queue_put_many_get_many(make: Factory) -> None:
    q = make()
    q.put_many([1, 2, 3])
    q.put_many(iter([4, 5]))
    q.put_many([])
    assert q.get_many(2) == [1, 2]
    assert q.get_many(10) == [3, 4, 5]  # what is there; no waiting for more
    with pytest.raises(queue.Empty):
        q.get_many(3, False)
    with pytest.raises(queue.Empty):
        q.get_many(3, timeout=0.02)
    with pytest.raises(ValueError, match="max_items"):
        q.get_many(0)
    q.put(6)
    q.shutdown()
    with pytest.raises(QueueShutDown):
        q.put_many([7])
    assert q.get_many(5) == [6]
    with pytest.raises(QueueShutDown):
        q.get_many(5)


def test_queue_put_many_is_all_or_nothing() -> None:
    q: Queue[int] = Queue(3)
    with pytest.raises(ValueError, match="maxsize"):
        q.put_many([1, 2, 3, 4])
    q.put(0)
    q.put(1)
    with pytest.raises(queue.Full):
        q.put_many([2, 3], False)
    with pytest.raises(queue.Full):
        q.put_many([2, 3], timeout=0.02)
    assert q.qsize() == 2
    assert q.unfinished_tasks == 2
    q.put_many([2])
    assert q.get_many(3) == [0, 1, 2]


def test_queue_put_many_waits_for_room_for_all(runner: Runner) -> None:
    q: Queue[int] = Queue(3)
    q.put_many([0, 1])
    runner.start(lambda: q.put_many([2, 3], timeout=WAIT))
    poll(lambda: waiters(q.not_full) == 1, "the batch putter")
    assert q.get() == 0  # now there is room for both
    assert runner.join() == [None]
    assert q.get_many(5) == [1, 2, 3]


def test_queue_batch_putter_does_not_starve_a_single_putter(runner: Runner) -> None:
    """One freed slot must reach the single putter even when a batch putter waits first."""
    q: Queue[str] = Queue(2)
    q.put_many(["a", "b"])
    batch = runner.start(lambda: q.put_many(["c", "d"], timeout=WAIT))
    poll(lambda: waiters(q.not_full) == 1, "the batch putter")
    single = runner.start(lambda: q.put("e", timeout=WAIT))
    poll(lambda: waiters(q.not_full) == 2, "the single putter")
    assert q.get() == "a"
    single.join(WAIT)
    assert runner.by_thread[single] is None
    assert q.get_many(2) == ["b", "e"]
    batch.join(WAIT)
    assert q.get_many(2) == ["c", "d"]
    runner.join()


def test_get_many_wakes_getters_for_a_batch(runner: Runner) -> None:
    q: Queue[int] = Queue()
    for _ in range(3):
        runner.start(lambda: q.get(timeout=WAIT))
    poll(lambda: waiters(q.not_empty) == 3, "three getters")
    q.put_many([1, 2, 3])
    assert sorted(runner.join()) == [1, 2, 3]


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers()),
        st.tuples(st.just("put_many"), st.lists(st.integers(), max_size=5)),
        st.tuples(st.just("get"), st.just(0)),
        st.tuples(st.just("get_many"), st.integers(min_value=1, max_value=6)),
    ),
    max_size=40,
)


@pytest.mark.parametrize("make", [Queue, SimpleQueue])
@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_queue_keeps_fifo_order(make: Factory, ops: list[tuple[str, Any]]) -> None:
    q = make()
    model: deque[int] = deque()
    for op, arg in ops:
        if op == "put":
            q.put(arg)
            model.append(arg)
        elif op == "put_many":
            q.put_many(arg)
            model.extend(arg)
        elif op == "get":
            if model:
                assert q.get_nowait() == model.popleft()
            else:
                with pytest.raises(queue.Empty):
                    q.get_nowait()
        elif model:
            expected = [model.popleft() for _ in range(min(arg, len(model)))]
            assert q.get_many(arg, block=False) == expected
        else:
            with pytest.raises(queue.Empty):
                q.get_many(arg, block=False)
        assert q.qsize() == len(model)
    q.shutdown()
    assert list(q) == list(model)


# -- join(timeout), close ---------------------------------------------------------------------


def test_queue_join_timeout() -> None:
    q: JoinableQueue[int] = JoinableQueue()
    assert q.join(0) is True
    q.put(1)
    assert q.join(0.02) is False
    assert q.join(-1) is False
    q.get()
    q.task_done()
    assert q.join(0) is True


@pytest.mark.parametrize("make", [Queue, SimpleQueue])
def test_queue_close(make: Factory, runner: Runner) -> None:
    q = make()
    runner.start(lambda: q.get(timeout=WAIT))
    poll(lambda: waiters(q.not_empty) == 1, "a getter")
    q.close()
    q.close()  # twice is fine
    [blocked] = runner.join()
    assert isinstance(blocked, ValueError)
    with pytest.raises(ValueError, match="Queue is closed"):
        q.put(1)
    with pytest.raises(ValueError, match="Queue is closed"):
        q.get()
    assert "closed" in repr(q)


def test_queue_close_wakes_putters(runner: Runner) -> None:
    q: Queue[int] = Queue(1)
    q.put(1)
    runner.start(lambda: q.put(2))
    poll(lambda: waiters(q.not_full) == 1, "a putter")
    q.close()
    [blocked] = runner.join()
    assert isinstance(blocked, ValueError)
    q.join_thread()
    q.cancel_join_thread()


def test_queue_reprs() -> None:
    q: Queue[int] = Queue(4)
    q.put(1)
    assert repr(q).startswith("<workhorse.threads.Queue at 0x")
    assert repr(q).endswith("size=1/4 alive unfinished=1>")
    assert "workhorse.threads.SimpleQueue" in repr(SimpleQueue())
    assert "workhorse.threads.JoinableQueue" in repr(JoinableQueue())


def test_queue_mutex_is_usable_like_the_stdlib() -> None:
    q: Queue[int] = Queue()
    q.put_many([1, 2])
    with q.mutex:
        q.queue.clear()  # a known stdlib idiom
    assert q.empty()


# -- cancellation -----------------------------------------------------------------------------


def cancel_while_blocked(runner: Runner, call: Callable[[], object]) -> object:
    scope = _cancel.CancelScope()
    thread = runner.start(call, scope)
    poll(lambda: blocked_in(thread, _cancel.block.__code__), "the thread to block")
    scope.cancel()
    thread.join(WAIT)
    assert not thread.is_alive()
    return runner.by_thread[thread]


@pytest.mark.parametrize("make", [Queue, SimpleQueue])
@pytest.mark.parametrize("call", ["get", "get_many"])
def test_cancel_get(make: Factory, call: str, runner: Runner) -> None:
    q = make()
    fn = q.get if call == "get" else lambda: q.get_many(3)
    assert isinstance(cancel_while_blocked(runner, fn), Cancelled)
    q.put(1)
    assert q.get_many(2, timeout=WAIT) == [1]


@pytest.mark.parametrize("call", ["put", "put_many"])
def test_cancel_put(call: str, runner: Runner) -> None:
    q: Queue[int] = Queue(2)
    q.put(0)
    q.put(1)
    fn = (lambda: q.put(2)) if call == "put" else lambda: q.put_many([2, 3])
    assert isinstance(cancel_while_blocked(runner, fn), Cancelled)
    assert q.get_many(5) == [0, 1]
    assert q.unfinished_tasks == 2
    q.put_many([4, 5], timeout=WAIT)
    assert q._batch_putters == 0


def test_cancel_join(runner: Runner) -> None:
    q: Queue[int] = Queue()
    q.put(1)
    assert isinstance(cancel_while_blocked(runner, q.join), Cancelled)
    q.get()
    q.task_done()
    assert q.join(WAIT) is True


def test_cancelled_scope_raises_on_entry_but_not_for_nowait() -> None:
    q: Queue[int] = Queue(1)
    unbounded: Queue[int] = Queue()
    scope = _cancel.CancelScope()
    scope.cancel()
    with _cancel.entered(scope):
        q.put_nowait(1)  # non-blocking calls are not cancellation points
        assert q.get_nowait() == 1
        q.put(1, block=False)
        q.task_done()
        assert q.qsize() == 1
        with pytest.raises(Cancelled):
            q.get()
        with pytest.raises(Cancelled):
            q.put(2)
        with pytest.raises(Cancelled):
            q.join()
        unbounded.put(1)  # can never block: no cancellation point either
        q.shutdown()
    assert q.get() == 1
    assert unbounded.get_nowait() == 1


def test_cancelled_getter_does_not_lose_an_item(runner: Runner) -> None:
    """A getter chosen by put() but cancelled before it takes the item wakes the next one."""
    q: Queue[int] = Queue()
    scope = _cancel.CancelScope()
    first = runner.start(lambda: q.get(timeout=WAIT), scope)
    poll(lambda: waiters(q.not_empty) == 1, "the first getter")
    runner.start(lambda: q.get(timeout=WAIT))
    poll(lambda: waiters(q.not_empty) == 2, "the second getter")
    from workhorse._thread_sync import Lock

    with q.mutex:
        scope.cancel()
        poll(lambda: blocked_in(first, Lock._acquire_restore.__code__), "re-acquire")
        q.queue.append(7)  # what put() does under the mutex: append, then notify one
        q.unfinished_tasks += 1
        q.not_empty.notify()
    results = runner.join()
    assert 7 in results
    assert any(isinstance(r, Cancelled) for r in results)
