"""The Dask backend's primitives: the threading contract, timeouts, queue shutdown, and use
from tasks on the workers."""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

import pytest

pytest.importorskip("distributed")

# The session's cluster and the Dask-aware leak guard (overrides the root no_leaks).
from dask_cluster import *  # noqa: F403

import workhorse
from workhorse._dask._context import DaskContext

pytestmark = pytest.mark.timeout(60)


def test_lock(cluster: DaskContext) -> None:
    lock = cluster.Lock()
    assert lock.acquire()
    assert lock.locked()
    assert not lock.acquire(timeout=0.05)
    assert not lock.acquire(blocking=False)
    with pytest.raises(ValueError):
        lock.acquire(blocking=False, timeout=1)
    lock.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
    with lock:
        assert lock.locked()


def test_rlock(cluster: DaskContext) -> None:
    rlock = cluster.RLock()
    with rlock, rlock:
        assert rlock._is_owned()
    with pytest.raises(RuntimeError):
        rlock.release()
    assert rlock.acquire(timeout=1)
    other: list[bool] = []
    thread = threading.Thread(target=lambda: other.append(rlock.acquire(timeout=0.05)))
    thread.start()
    thread.join()
    assert other == [False]  # another thread cannot enter
    rlock.release()


def test_semaphores(cluster: DaskContext) -> None:
    slots = cluster.Semaphore(2)
    assert slots.acquire()
    assert slots.acquire()
    assert not slots.acquire(timeout=0.05)
    assert slots.get_value() == 0
    slots.release(2)
    with pytest.raises(ValueError):
        slots.release()
    with pytest.raises(ValueError):
        cluster.Semaphore(0)
    bounded = cluster.BoundedSemaphore(1)
    with bounded:
        assert not bounded.acquire(blocking=False)
    with pytest.raises(ValueError):
        bounded.release()


def test_event(cluster: DaskContext) -> None:
    event = cluster.Event()
    assert not event.is_set()
    assert not event.wait(0.05)
    event.set()
    assert event.wait(1)
    assert event.is_set()
    event.clear()
    assert not event.wait(0)


def test_queue_contract_and_shutdown(cluster: DaskContext) -> None:
    q = cluster.Queue()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.05)
    with pytest.raises(queue.Empty):
        q.get_nowait()
    q.put_many([1, {"two": 2}, (3,)])
    assert q.qsize() == 3
    assert q.get_many(2) == [1, {"two": 2}]
    q.put(lambda: 4)  # cloudpickled
    q.shutdown()
    with pytest.raises(workhorse.QueueShutDown):
        q.put(5)
    rest = list(q)  # iteration ends at shutdown, after the items put before it
    assert rest[0] == (3,)
    assert rest[1]() == 4
    with pytest.raises(workhorse.QueueShutDown):
        q.get(timeout=1)
    bounded = cluster.Queue(maxsize=1)
    bounded.put(1)
    with pytest.raises(queue.Full):
        bounded.put(2, timeout=0.05)
    immediate = cluster.Queue()
    immediate.put_many([1, 2])
    immediate.shutdown(immediate=True)
    with pytest.raises(workhorse.QueueShutDown):
        immediate.get(timeout=1)


def test_queue_shutdown_wakes_a_blocked_consumer(cluster: DaskContext) -> None:
    q = cluster.Queue()
    outcome: list[Any] = []

    def consume() -> None:
        try:
            q.get(timeout=30)
        except workhorse.QueueShutDown as exc:
            outcome.append(exc)

    thread = threading.Thread(target=consume)
    thread.start()
    q.shutdown()
    thread.join(30)
    assert len(outcome) == 1


def test_joinable_queue(cluster: DaskContext) -> None:
    q = cluster.JoinableQueue()
    q.put("a")
    assert not q.join(timeout=0.05)
    assert q.get(timeout=5) == "a"
    q.task_done()
    assert q.join(timeout=5)
    with pytest.raises(ValueError):
        q.task_done()


def test_condition(cluster: DaskContext) -> None:
    cond = cluster.Condition()
    with pytest.raises(RuntimeError):
        cond.wait(0.01)
    with cond:
        assert not cond.wait(0.05)
        cond.notify()  # nobody waits: lost, as with threading
        assert not cond.wait(0.05)
    woke: list[bool] = []
    waiting = threading.Event()

    def waiter() -> None:
        with cond:
            waiting.set()
            woke.append(cond.wait(30))

    thread = threading.Thread(target=waiter)
    thread.start()
    waiting.wait(30)
    with cond:  # the waiter holds the lock until it waits: taking it means it is waiting
        cond.notify_all()
    thread.join(30)
    assert woke == [True]
    with cond:
        assert cond.wait_for(lambda: True, timeout=0)


def test_barrier(cluster: DaskContext) -> None:
    barrier = cluster.Barrier(2, timeout=30)
    indices: list[int] = []
    thread = threading.Thread(target=lambda: indices.append(barrier.wait()))
    thread.start()
    indices.append(barrier.wait())
    thread.join(30)
    assert sorted(indices) == [0, 1]
    lonely = cluster.Barrier(2)
    with pytest.raises(threading.BrokenBarrierError):
        lonely.wait(timeout=0.1)
    assert lonely.broken
    lonely.reset()
    assert not lonely.broken


def locked_append(lock: Any, q: Any, event: Any, sem: Any, item: int) -> int:
    with lock, sem:
        q.put(item)
    event.set()
    return item


def produce(q: Any, n: int) -> None:
    q.put_many(range(n))


def test_primitives_pass_into_tasks(cluster: DaskContext) -> None:
    lock, q, event, sem = cluster.Lock(), cluster.Queue(), cluster.Event(), cluster.Semaphore(1)
    with cluster.ProcessPoolExecutor() as executor:
        futures = [executor.submit(locked_append, lock, q, event, sem, i) for i in range(4)]
        assert [f.result(timeout=30) for f in futures] == [0, 1, 2, 3]
        assert event.wait(5)
        assert sorted(q.get(timeout=5) for _ in range(4)) == [0, 1, 2, 3]
        executor.submit(produce, q, 3).result(timeout=30)  # a worker produces, we consume
        q.shutdown()
        assert list(q) == [0, 1, 2]


def take_and_die(lock: Any, sem: Any) -> None:
    lock.acquire()
    sem.acquire()
    os._exit(5)  # the worker dies holding both leases


@pytest.mark.timeout(90)
def test_a_dead_holders_lease_is_freed_after_the_lease_timeout(cluster: DaskContext) -> None:
    """The embedded cluster's lease-timeout is 10 s (see workhorse._dask._context)."""
    lock, sem = cluster.Lock(), cluster.Semaphore(1)
    with cluster.ProcessPoolExecutor() as executor, pytest.raises(workhorse.WorkerCrashed):
        executor.submit(take_and_die, lock, sem).result(timeout=30)
    died = time.monotonic()
    assert lock.locked(), "the dead holder's lease outlives it until the timeout"
    assert lock.acquire(timeout=40)
    assert sem.acquire(timeout=40)
    freed = time.monotonic() - died
    assert freed < 10 + 15, f"freed after {freed:.1f} s"
    lock.release()
    sem.release()
