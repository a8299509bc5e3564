"""Tests of the process-flavour queues (``workhorse._queue`` on ``workhorse._ring``)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workhorse import _cancel
from workhorse._errors import Cancelled, QueueShutDown, SerializationError
from workhorse._queue import JoinableQueue, Queue, SimpleQueue
from workhorse._ring import DONE, GETTERS, JOINERS, PUTS, PUTTERS

AnyQueue = Queue | SimpleQueue


def _waiters(q: AnyQueue, channel: int) -> int:
    return int(q._ring.hq[channel])


def _context(method: str) -> Any:
    """The stdlib context (workhorse's own Process is tested elsewhere)."""
    return multiprocessing.get_context(method)


def _poll(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Observe state until ``check()`` holds (bounded); never used to order events."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "state not reached in time"
        time.sleep(0.001)


class Unpicklable:
    def __reduce__(self) -> Any:
        raise AttributeError("no pickling for you")


# -- across processes, under every start method ----------------------------------------------


def _echo(inbox: Queue, outbox: Queue) -> None:
    """Forward every item; answer a queue received after start; end when inbox shuts down."""
    for item in inbox:
        if isinstance(item, (Queue, SimpleQueue)):
            item.put(("late", os.getpid()))
        else:
            outbox.put(item)
    outbox.put("iteration ended")


def test_queue_across_processes_delivers_in_order_then_ends_on_shutdown(start_method: str) -> None:
    ctx = _context(start_method)
    inbox, outbox, late = Queue(ring_size=4096), Queue(), SimpleQueue()
    child = ctx.Process(target=_echo, args=(inbox, outbox))
    child.start()
    try:
        big = os.urandom(300_000)  # out of band (> ring / 4) and wraps the small ring
        inbox.put_many(range(500))
        inbox.put(late)  # a queue passed after the child started
        inbox.put(big)
        assert late.get(timeout=30) == ("late", child.pid)
        got: list[Any] = []
        while len(got) < 501:
            got += outbox.get_many(600, timeout=30)
        assert got[:500] == list(range(500))
        assert got[500] == big
        # The child now blocks in get() (inside iteration); shutdown must wake it promptly.
        _poll(lambda: _waiters(inbox, GETTERS) == 1)
        started = time.monotonic()
        inbox.shutdown()
        assert outbox.get(timeout=10) == "iteration ended"
        assert time.monotonic() - started < 2.0
        child.join(10)
        assert child.exitcode == 0
    finally:
        if child.is_alive():
            child.kill()
            child.join()


def _produce(q: Queue, start: int, n: int, batch: bool) -> None:
    if batch:
        for i in range(start, start + n, 20):
            q.put_many(range(i, min(i + 20, start + n)))
    else:
        for i in range(start, start + n):
            q.put(i)


def _consume(q: Queue, results: Queue, batch: bool) -> None:
    got: list[int] = []
    try:
        while True:
            if batch:
                got += q.get_many(37)
            else:
                got.append(q.get())
    except QueueShutDown:
        results.put(got)


@pytest.mark.parametrize("maxsize", [0, 40])
def test_queue_many_producers_many_consumers_totals_exact(maxsize: int) -> None:
    ctx = _context("fork")
    q, results = Queue(maxsize, ring_size=1024), Queue()
    n = 3000
    producers = [ctx.Process(target=_produce, args=(q, k * n, n, k % 2 == 0)) for k in range(3)]
    consumers = [ctx.Process(target=_consume, args=(q, results, k % 2 == 0)) for k in range(3)]
    for p in producers + consumers:
        p.start()
    for p in producers:
        p.join(30)  # an unbounded producer flushes its feeder backlog at exit
        assert p.exitcode == 0
    q.shutdown()
    got: list[int] = []
    for _ in consumers:
        part = results.get(timeout=30)
        for k in range(3):  # FIFO per producer: each producer's items arrive increasing
            mine = [x for x in part if k * n <= x < (k + 1) * n]
            assert mine == sorted(mine)
        got += part
    for p in consumers:
        p.join(10)
    assert sorted(got) == list(range(3 * n))


def _put_three_and_exit(q: Queue) -> None:
    q.put(1)
    q.put_many([b"x" * 600, b"y" * 600])  # the ring of 1024 bytes is full: a backlog forms


def _work(q: JoinableQueue, done: Queue) -> None:
    count = 0
    for _ in q:
        count += 1
        q.task_done()
    done.put(count)


def test_queue_qsize_empty_and_join_across_processes() -> None:
    ctx = _context("fork")
    q = Queue(ring_size=1024)
    assert q.empty()
    child = ctx.Process(target=_put_three_and_exit, args=(q,))
    child.start()
    child.join(30)  # the child's feeder flushed its backlog before exit
    assert q.qsize() == 3
    assert not q.empty()
    assert [len(str(q.get(timeout=5))) for _ in range(3)] == [1, 603, 603]
    assert q.empty()

    jq, done = JoinableQueue(), Queue()
    workers = [ctx.Process(target=_work, args=(jq, done)) for _ in range(3)]
    for w in workers:
        w.start()
    jq.put_many(range(300))
    assert jq.join(timeout=30) is True
    assert jq.qsize() == 0
    jq.shutdown()
    assert sum(done.get(timeout=10) for _ in workers) == 300
    for w in workers:
        w.join(10)


def test_queue_sixteen_mib_item_across_processes() -> None:
    ctx = _context("fork")
    inbox, outbox = Queue(), Queue()
    child = ctx.Process(target=_echo, args=(inbox, outbox))
    child.start()
    payload = os.urandom(16 * 1024 * 1024)
    inbox.put(payload)
    assert outbox.get(timeout=30) == payload
    inbox.shutdown()
    assert outbox.get(timeout=10) == "iteration ended"
    child.join(10)


# -- the stdlib's Full/Empty/closed rules (fault-matrix §2) ----------------------------------


@pytest.mark.parametrize("batched", [False, True])
def test_bounded_queue_counts_items_not_bytes(batched: bool) -> None:
    """``Queue(6)`` takes six items at once without a consumer, as the stdlib's does, even
    when they fill its ring: the rest spill (the fifth 200-byte put used to wait, then raise
    ``Full``). The seventh waits; everything comes out whole and in order."""
    q = Queue(6, ring_size=1024)
    items = [bytes([k]) * 200 for k in range(6)]
    if batched:
        q.put_many(items[:3], timeout=1)
        q.put_many(items[3:], timeout=1)
    else:
        for item in items:
            q.put(item, timeout=1)
    assert q.qsize() == 6
    assert q.full()
    with pytest.raises(queue.Full):
        q.put(b"x", timeout=0.05)
    assert [q.get(timeout=5) for _ in range(6)] == items
    assert q.empty()
    assert not q.full()


def test_queue_full_and_empty_matrix_with_timing() -> None:
    q = Queue(1)
    q.put(1)
    assert q.full()
    puts: list[Callable[[], object]] = [
        lambda: q.put(2, False),
        lambda: q.put(2, False, None),
        lambda: q.put_nowait(2),
        lambda: q.put(2, False, 2.0),
    ]
    for call in puts:
        started = time.monotonic()
        with pytest.raises(queue.Full):
            call()
        assert time.monotonic() - started < 0.5
    started = time.monotonic()
    with pytest.raises(queue.Full):
        q.put(2, True, 0.1)
    assert 0.09 <= time.monotonic() - started < 1.0
    with pytest.raises(ValueError, match="non-negative"):
        q.put(2, True, -1)
    assert q.get() == 1
    gets: list[Callable[[], object]] = [
        lambda: q.get(False),
        lambda: q.get(False, None),
        q.get_nowait,
        lambda: q.get(False, 2.0),
    ]
    for call in gets:
        started = time.monotonic()
        with pytest.raises(queue.Empty):
            call()
        assert time.monotonic() - started < 0.5
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(True, 0.2)
    assert 0.1 <= time.monotonic() - started < 1.0
    with pytest.raises(ValueError, match="non-negative"):
        q.get(True, -1)


def test_queue_closed_raises_value_error() -> None:
    q = Queue()
    q.put(1)
    q.close()
    with pytest.raises(ValueError, match="is closed"):
        q.put(2)
    with pytest.raises(ValueError, match="is closed"):
        q.get()
    q.join_thread()
    s = SimpleQueue()
    s.close()
    s.close()
    with pytest.raises(ValueError, match="is closed"):
        s.get()
    with pytest.raises(ValueError, match="close"):
        Queue().join_thread()


def test_queue_unpicklable_item_raises_in_put_and_queue_keeps_working() -> None:
    q = Queue()
    with pytest.raises(SerializationError, match="Unpicklable"):
        q.put(Unpicklable())
    with pytest.raises(SerializationError):
        q.put_many([1, Unpicklable()])  # all or nothing
    q.put(True)
    assert q.qsize() == 1
    assert q.get(timeout=1) is True
    assert q.empty()


def test_queue_batch_argument_errors() -> None:
    q = Queue(2)
    with pytest.raises(ValueError, match="maxsize"):
        q.put_many([1, 2, 3])
    with pytest.raises(ValueError, match="max_items"):
        q.get_many(0)
    q.put_many([1, 2])
    with pytest.raises(queue.Full):
        q.put_many([3], timeout=0.05)
    assert q.get_many(10) == [1, 2]
    with pytest.raises(queue.Empty):
        q.get_many(10, timeout=0.05)


# -- 3.13 shutdown semantics ------------------------------------------------------------------


@pytest.mark.parametrize("immediate", [False, True])
def test_queue_shutdown_all_methods_in_one_thread(immediate: bool) -> None:
    q = JoinableQueue(2)
    q.put("L")
    q.put_nowait("O")
    assert not q.is_shutdown
    q.shutdown(immediate)
    assert q.is_shutdown
    with pytest.raises(QueueShutDown):
        q.put("E")
    with pytest.raises(QueueShutDown):
        q.put_nowait("W")
    if immediate:
        with pytest.raises(QueueShutDown):
            q.get()
        with pytest.raises(QueueShutDown):
            q.get_nowait()
        with pytest.raises(ValueError, match="too many"):
            q.task_done()
        assert q.join(timeout=1) is True
    else:
        assert [q.get(), q.get()] == ["L", "O"]
        q.task_done()
        q.task_done()
        assert q.join(timeout=1) is True
        for call in (q.get, q.get_nowait, lambda: q.get(True, 1.0), lambda: q.get_many(3)):
            with pytest.raises(QueueShutDown):
                call()
    q.shutdown(immediate=False)  # allowed: the state never moves back
    assert q.is_shutdown
    if hasattr(queue, "ShutDown"):
        assert issubclass(QueueShutDown, queue.ShutDown)


def test_queue_shutdown_wakes_blocked_getters_putters_and_joiners() -> None:
    q, empty_q = JoinableQueue(1), Queue()
    q.put(0)
    errors: list[str] = []

    def call(f: Callable[[], object]) -> None:
        try:
            f()
            errors.append("returned")
        except QueueShutDown:
            errors.append("shutdown")

    threads = [threading.Thread(target=call, args=(lambda: q.put(1),)) for _ in range(2)]
    threads += [threading.Thread(target=call, args=(empty_q.get,)) for _ in range(2)]
    threads += [threading.Thread(target=call, args=(q.join,)) for _ in range(2)]
    for t in threads:
        t.start()
    _poll(lambda: _waiters(q, PUTTERS) == 2 and _waiters(q, JOINERS) == 2)
    _poll(lambda: _waiters(empty_q, GETTERS) == 2)
    empty_q.shutdown()
    q.shutdown(immediate=True)  # drops the item: join() returns
    for t in threads:
        t.join(5)
    assert sorted(errors) == ["returned"] * 2 + ["shutdown"] * 4
    assert q._ring.hq[PUTS] == q._ring.hq[DONE]  # nothing unfinished


def _get_forever(q: Queue, ready: Any) -> None:
    ready.set()
    try:
        q.get()
    except QueueShutDown:
        sys.exit(7)


def test_queue_immediate_shutdown_across_processes_drops_items() -> None:
    ctx = _context("fork")
    q = JoinableQueue(ring_size=1024)
    q.put_many([b"x" * 500] * 5)  # one out of band, some in this process's backlog
    q.shutdown(immediate=True)
    assert q.join(timeout=5) is True
    child = ctx.Process(target=_get_forever, args=(q, ctx.Event()))
    child.start()
    child.join(10)
    assert child.exitcode == 7  # QueueShutDown at once, not a hang
    with pytest.raises(QueueShutDown):
        q.get(timeout=1)


# -- faults -----------------------------------------------------------------------------------


def test_queue_consumer_killed_while_blocked_in_get() -> None:
    ctx = _context("fork")
    q = Queue(2)
    ready = ctx.Event()
    child = ctx.Process(target=_get_forever, args=(q, ready))
    child.start()
    _poll(lambda: _waiters(q, GETTERS) == 1)
    os.kill(child.pid or 0, signal.SIGKILL)
    child.join(10)
    q.put(1, timeout=1)
    q.put(2, timeout=1)
    started = time.monotonic()
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.1)
    assert time.monotonic() - started < 1.0
    assert q.get_many(5, timeout=1) == [1, 2]
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.1)
    assert time.monotonic() - started < 1.0


def _die_holding_the_lock(q: Queue, how: str, ready: Any) -> None:
    """Test-only: take the internal lock, leave an update half done, never give it back."""
    ring = q._ring
    if how == "journaled":  # a slow path: the journal undoes it
        ring.lock(None)
        ring.read()  # took the oldest item, did not count it
    else:  # the bare hot path of put: the frame is published, not counted
        assert ring.trylock(ring.mref) == 0
        data = pickle.dumps(3)
        ring.write(data, len(data))
    ready.set()
    threading.Event().wait()


@pytest.mark.parametrize("how", ["journaled", "bare"])
def test_queue_process_killed_holding_the_lock_mid_update_leaves_it_working(how: str) -> None:
    """Before the robust mutex, this raised BrokenResourceError, or hung for good when the
    process died between taking the semaphore and recording its pid."""
    ctx = _context("fork")
    q = Queue()
    q.put_many([1, 2])
    ready = ctx.Event()
    child = ctx.Process(target=_die_holding_the_lock, args=(q, how, ready))
    child.start()
    assert ready.wait(10)
    os.kill(child.pid or 0, signal.SIGKILL)
    child.join(10)
    started = time.monotonic()
    assert q.get(timeout=5) == 1  # the dead holder's get never happened
    assert time.monotonic() - started < 1.0
    expected = [2] if how == "journaled" else [2, 3]  # a published put is delivered
    assert q.qsize() == len(expected)
    assert q.get_many(10, timeout=1) == expected
    q.put(4)
    q.shutdown()
    assert list(q) == [4]
    assert q.empty()
    assert q.qsize() == 0


def _items(kind: str) -> list[Any]:
    if kind == "big":  # out of band (the 4 KiB ring's threshold is 1 KiB)
        return [(k, bytes([k]) * 3000) for k in range(40)]
    return [(k, bytes(50)) for k in range(1600)]


def _put_then_wait(q: Queue, kind: str, ready: Any) -> None:
    items = _items(kind)
    if kind == "put_many":
        for start in range(0, len(items), 200):
            q.put_many(items[start : start + 200])
    else:
        for item in items:
            q.put(item)
    ready.set()  # every put returned: all of it was accepted
    threading.Event().wait()


@pytest.mark.parametrize("kind", ["put", "put_many", "big"])
def test_queue_items_accepted_before_the_producer_was_killed_are_delivered(kind: str) -> None:
    """Before the spill segments, what did not fit the ring died with the producer's feeder
    thread, qsize() stayed above zero for good and ``for item in q`` never ended."""
    ctx = _context("fork")
    q = Queue(ring_size=4096)  # far smaller than what is put: most of it waits
    ready = ctx.Event()
    child = ctx.Process(target=_put_then_wait, args=(q, kind, ready))
    child.start()
    assert ready.wait(30)
    os.kill(child.pid or 0, signal.SIGKILL)
    child.join(10)
    expected = _items(kind)
    assert q.qsize() == len(expected)
    q.shutdown()
    got: list[Any] = []
    with contextlib.suppress(QueueShutDown, queue.Empty):
        while True:
            got.append(q.get(timeout=2))  # before: Empty with items missing
    assert got == expected
    assert q.empty()
    assert q.qsize() == 0


def test_queue_cancel_scope_wakes_blocked_get() -> None:
    q = Queue()
    scope = _cancel.CancelScope()
    outcome: list[BaseException] = []

    def body() -> None:
        with _cancel.entered(scope):
            try:
                q.get()
            except Cancelled as exc:
                outcome.append(exc)

    t = threading.Thread(target=body)
    t.start()
    _poll(lambda: _waiters(q, GETTERS) == 1)
    scope.cancel()
    t.join(5)
    assert len(outcome) == 1
    assert _waiters(q, GETTERS) == 0
    q.put(1)
    assert q.get(timeout=1) == 1


def test_queue_unread_out_of_band_items_are_unlinked_with_the_queue() -> None:
    q = Queue(ring_size=1024)
    q.put_many([os.urandom(2000) for _ in range(3)])
    assert any(f"-q{q._uid}-" in name for name in os.listdir("/dev/shm"))
    del q  # the leak guard checks /dev/shm afterwards


# -- FIFO order and content for any sizes -----------------------------------------------------

_op = st.tuples(st.sampled_from(["put", "put_many", "get", "get_many"]), st.integers(0, 3000))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_op, max_size=25), bounded=st.booleans())
def test_queue_fifo_order_and_content_for_any_sizes(
    ops: list[tuple[str, int]], bounded: bool
) -> None:
    q = Queue(6 if bounded else 0, ring_size=1024)
    sent: list[bytes] = []
    received: list[bytes] = []
    counter = 0

    def item(size: int) -> bytes:
        nonlocal counter
        counter += 1
        return counter.to_bytes(4, "big") * (size // 4 + 1)

    for name, size in ops:
        in_queue = len(sent) - len(received)
        if name == "put" and not (bounded and in_queue >= 6):
            sent.append(item(size))
            q.put(sent[-1], timeout=5)
        elif name == "put_many" and not (bounded and in_queue + 3 > 6):
            batch = [item(size // (k + 1)) for k in range(3)]
            sent += batch
            q.put_many(batch, timeout=5)
        elif name == "get" and in_queue:
            received.append(q.get(timeout=5))
        elif name == "get_many" and in_queue:
            received += q.get_many(1 + size % 4, timeout=5)
    while len(received) < len(sent):
        received += q.get_many(10, timeout=5)
    assert received == sent
    q.close()
    q.join_thread()


def test_closed_queue_empty_and_errors_are_multiprocessing_s() -> None:
    # CPython 3.13's test_closed_queue_empty_exceptions and SimpleQueue's test_empty_exceptions.
    for cls in (Queue, JoinableQueue):
        unused = cls()
        unused.close()
        unused.join_thread()
        assert unused.empty()  # close() of an unused queue closes nothing
        used = cls()
        used.put("foo")
        used.close()
        used.join_thread()
        with pytest.raises(OSError, match="is closed"):
            used.empty()
        with pytest.raises(ValueError, match="is closed"):
            used.get()
    simple = SimpleQueue()
    simple.close()
    with pytest.raises(OSError, match="is closed"):
        simple.empty()
    with pytest.raises(OSError, match="is closed"):
        simple.put(1)
    with pytest.raises(AssertionError, match="not closed"):
        Queue().join_thread()
