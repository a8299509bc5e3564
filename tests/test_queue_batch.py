"""Tests of the queues' batch frames, ring restarts and large-item buffers (``_queue_codec``)."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from typing import Any

import pytest

from workhorse._errors import QueueShutDown
from workhorse._queue import JoinableQueue, Queue
from workhorse._ring import BATCH, HEAD, TAIL

pytestmark = pytest.mark.timeout(60)


def _head_frame_length(q: Queue) -> int:
    ring = q._ring
    return int(ring.rq[(ring.hq[HEAD] & ring.mask) >> 3])


def test_put_many_writes_one_batch_frame_that_get_takes_apart() -> None:
    q = Queue()
    q.put_many(range(10))
    assert _head_frame_length(q) >= BATCH
    assert q.qsize() == 10
    assert q.get_many(3) == [0, 1, 2]
    assert q.get() == 3
    assert q.qsize() == 6
    assert q.get_many(100) == [4, 5, 6, 7, 8, 9]
    assert q.empty()


def test_batch_frames_mixed_with_single_frames_keep_fifo_order() -> None:
    q = Queue()
    q.put("a")
    q.put_many(["b", "c", "d"])
    q.put("e")
    q.put("f")
    q.put_many(["g", "h"])
    q.put_many(["i"])  # one item: a single frame
    assert q.get_many(2) == ["a", "b"]
    assert q.get_many(4) == ["c", "d", "e", "f"]
    assert [q.get(timeout=1) for _ in range(3)] == ["g", "h", "i"]
    with pytest.raises(queue.Empty):
        q.get(timeout=0)


def test_ring_restarts_at_its_front_when_drained() -> None:
    q = Queue()
    q.put_many(range(5))
    q.put(5)
    assert q._ring.hq[TAIL] > 0
    assert q.get_many(6) == list(range(6))
    assert (q._ring.hq[HEAD], q._ring.hq[TAIL], q._ring.count()) == (0, 0, 0)


def test_batches_wrap_around_a_small_ring_in_order() -> None:
    q = Queue(ring_size=1024)
    sent: list[Any] = []
    got: list[Any] = []
    for round_ in range(200):
        batch = [(round_, k, "x" * (round_ % 13)) for k in range(round_ % 7 + 1)]
        sent += batch
        q.put_many(batch)
        q.put(("single", round_))
        sent.append(("single", round_))
        got += q.get_many(1 + round_ % 5)
    while len(got) < len(sent):
        got += q.get_many(50, timeout=5)
    assert got == sent
    q.close()
    q.join_thread()


def test_large_put_many_splits_into_several_batches_and_out_of_band_items() -> None:
    q = Queue(ring_size=4096)
    items: list[Any] = [bytes([k % 256]) * (k * 37 % 900) for k in range(60)]
    items[10] = b"z" * 5000  # larger than the ring: out of band in the middle of a batch
    q.put_many(items)
    got: list[Any] = []
    while len(got) < len(items):
        got += q.get_many(7, timeout=5)
    assert got == items
    q.close()
    q.join_thread()


def test_bounded_put_many_moves_large_items_out_of_band_to_fit() -> None:
    q = Queue(10, ring_size=1024)
    items = [b"a" * 400, b"b" * 400, b"c" * 400, b"d"]
    q.put_many(items, timeout=5)
    assert q.get_many(10) == items
    q.put_many(range(10), timeout=5)
    with pytest.raises(queue.Full):
        q.put_many([1], timeout=0)
    assert q.get_many(10) == list(range(10))


def test_shutdown_mid_batch_delivers_the_rest_then_ends() -> None:
    q = Queue()
    q.put_many(range(10))
    assert q.get_many(4) == [0, 1, 2, 3]
    q.shutdown()
    with pytest.raises(QueueShutDown):
        q.put_many([99])
    assert q.get() == 4
    assert q.get_many(100) == [5, 6, 7, 8, 9]
    with pytest.raises(QueueShutDown):
        q.get_many(1)


def test_immediate_shutdown_mid_batch_drops_the_rest_and_releases_join() -> None:
    q = JoinableQueue()
    q.put_many(range(10))
    q.put(b"x" * (3 << 20))  # out of band with the default ring: unlinked by the drop
    assert q.get_many(3) == [0, 1, 2]
    for _ in range(3):
        q.task_done()
    q.shutdown(immediate=True)
    with pytest.raises(QueueShutDown):
        q.get(timeout=1)
    assert q.qsize() == 0
    assert q.join(timeout=5) is True


def test_large_items_through_reused_buffers_from_several_threads() -> None:
    q = Queue()
    payloads = [bytes([k]) * ((1 << 20) + k) for k in range(4)]
    bad: list[str] = []

    def worker(k: int) -> None:
        for _ in range(5):
            q.put(payloads[k])
        for _ in range(5):
            item = q.get(timeout=10)
            if item not in payloads:
                bad.append(repr(item[:8]))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not bad
    assert q.empty()


class _PutsWhilePickled:
    """Re-entrant pickling: its pickle is large, and pickling it puts into a queue."""

    def __init__(self, q: Queue) -> None:
        self.q = q

    def __reduce__(self) -> Any:
        self.q.put(b"inner" * 50_000)
        return (bytes, (b"outer" * 50_000,))

    def __sizeof__(self) -> int:
        return 1 << 20  # takes the large-item path


def test_reentrant_large_put_gets_its_own_buffer() -> None:
    q = Queue()
    q.put(_PutsWhilePickled(q))
    assert q.get(timeout=5) == b"inner" * 50_000
    assert q.get(timeout=5) == b"outer" * 50_000


def _producer(q: Queue, start: int, n: int, batch: bool) -> None:
    if batch:
        for i in range(start, start + n, 25):
            q.put_many(range(i, min(i + 25, start + n)))
    else:
        for i in range(start, start + n):
            q.put(i)


def _consumer(q: Queue, results: Queue, batch: bool) -> None:
    got: list[int] = []
    try:
        while True:
            if batch:
                got += q.get_many(40, timeout=30)
            else:
                got.append(q.get(timeout=30))
    except QueueShutDown:
        results.put(got)


@pytest.mark.parametrize("ring_size", [1024, 1 << 23])
def test_four_producers_four_consumers_every_item_exactly_once(ring_size: int) -> None:
    ctx = multiprocessing.get_context("fork")
    q, results = Queue(ring_size=ring_size), Queue()
    n = 2000
    producers = [ctx.Process(target=_producer, args=(q, k * n, n, k % 2 == 0)) for k in range(4)]
    consumers = [ctx.Process(target=_consumer, args=(q, results, k % 2 == 1)) for k in range(4)]
    for p in producers + consumers:
        p.start()
    for p in producers:
        p.join(30)
        assert p.exitcode == 0
    q.shutdown()
    got: list[int] = []
    for _ in consumers:
        part = results.get(timeout=30)
        for k in range(4):  # FIFO per producer
            mine = [x for x in part if k * n <= x < (k + 1) * n]
            assert mine == sorted(mine)
        got += part
    for p in consumers:
        p.join(10)
        assert p.exitcode == 0
    assert sorted(got) == list(range(4 * n))
