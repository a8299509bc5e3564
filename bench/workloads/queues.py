"""Workload 5: queues between processes -- small messages (ints) and 1 MB messages, one
producer and one consumer, and four of each.

Producers and consumers are forked processes that start together on a barrier; the figure
is messages/s from the barrier until every consumer has counted its messages. Each
producer ends with one ``None``; a consumer stops at its first ``None`` (handing back any
extra one it received in a batch), so every message is counted exactly once.
The limit is raw ``os.pipe`` with one pipe per producer/consumer pair: ints packed 1,000 to
a ``write``, 1 MB messages written and read into a preallocated buffer (no pickling).
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import time
from array import array
from collections.abc import Mapping
from typing import Any

from ..harness import LIMIT, PEER, STDLIB, WORKHORSE, Contender, Job, Workload, scaled

MB = 1 << 20
SMALL_BATCH, LARGE_BATCH = 1_000, 8
WH, WH_MANY = "workhorse.Queue put/get", "workhorse.Queue put_many/get_many"
MPQ, MPPIPE = "multiprocessing.Queue", "multiprocessing.Pipe"
FF, FF_GET_MANY, FF_MANY = (
    "faster-fifo put/get",
    "faster-fifo put/get_many",
    "faster-fifo put_many/get_many",
)
RAW = "os.pipe (raw bytes)"
CONTENDERS = (
    Contender(WH, WORKHORSE, ("workhorse",)),
    Contender(WH_MANY, WORKHORSE, ("workhorse",)),
    Contender(MPQ, STDLIB),
    Contender(MPPIPE, STDLIB),
    Contender(FF, PEER, ("faster_fifo",)),
    Contender(FF_GET_MANY, PEER, ("faster_fifo",)),
    Contender(FF_MANY, PEER, ("faster_fifo",)),
    Contender(RAW, LIMIT),
)
TIMEOUT = 300.0  # blocking calls inside the children; the harness's timeout is shorter


def case_name(large: bool, pairs: int) -> str:
    return f"{'1 MB' if large else 'small (int)'} messages, {pairs}P/{pairs}C"


def _make_queue(contender: str) -> Any:
    if contender in (WH, WH_MANY):
        import workhorse

        return workhorse.Queue()
    if contender in (FF, FF_GET_MANY, FF_MANY):
        import faster_fifo

        return faster_fifo.Queue(max_size_bytes=32 * MB)
    return multiprocessing.get_context("fork").Queue()


def _started(barrier: Any, clock: Any, slot: int) -> None:
    barrier.wait()
    clock[slot] = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes


def _produce(
    contender: str, queue: Any, barrier: Any, clock: Any, slot: int, count: int, large: bool
) -> None:
    payload = b"x" * MB if large else None
    batch = LARGE_BATCH if large else SMALL_BATCH
    _started(barrier, clock, slot)
    if contender in (WH_MANY, FF_MANY):
        for first in range(0, count, batch):
            stop = min(count, first + batch)
            items = [payload] * (stop - first) if large else list(range(first, stop))
            queue.put_many(items, timeout=TIMEOUT) if contender == FF_MANY else queue.put_many(
                items
            )
    elif contender in (FF, FF_GET_MANY):
        for i in range(count):
            queue.put(payload if large else i, timeout=TIMEOUT)
    else:
        for i in range(count):
            queue.put(payload if large else i)
    queue.put(None)


def _consume(contender: str, queue: Any, barrier: Any, clock: Any, counts: Any, index: int) -> None:
    got = 0
    barrier.wait()
    many = contender in (WH_MANY, FF_GET_MANY, FF_MANY)
    while True:
        if contender == WH_MANY:
            items = queue.get_many(SMALL_BATCH, timeout=TIMEOUT)
        elif many:
            items = queue.get_many(timeout=TIMEOUT, max_messages_to_get=SMALL_BATCH)
        else:
            items = [queue.get(timeout=TIMEOUT)]
        sentinels = items.count(None)
        got += len(items) - sentinels
        if sentinels:
            for _ in range(sentinels - 1):
                queue.put(None)
            break
    clock[len(counts) + index] = time.perf_counter()
    counts[index] = got


def _pipe_produce(conn: Any, barrier: Any, clock: Any, count: int, large: bool) -> None:
    payload = b"x" * MB if large else None
    _started(barrier, clock, 0)
    for i in range(count):
        conn.send(payload if large else i)
    conn.send(None)


def _pipe_consume(conn: Any, barrier: Any, clock: Any, counts: Any) -> None:
    got = 0
    barrier.wait()
    while conn.recv() is not None:
        got += 1
    clock[1] = time.perf_counter()
    counts[0] = got


def _write_all(fd: int, data: memoryview) -> None:
    sent = 0
    while sent < len(data):
        sent += os.write(fd, data[sent:])


def _raw_produce(fd: int, barrier: Any, clock: Any, slot: int, count: int, large: bool) -> None:
    _started(barrier, clock, slot)
    if large:
        payload = memoryview(b"x" * MB)
        for _ in range(count):
            _write_all(fd, payload)
    else:
        for first in range(0, count, SMALL_BATCH):
            _write_all(fd, memoryview(array("q", range(first, min(count, first + SMALL_BATCH)))))
    os.close(fd)


def _raw_consume(
    fd: int, other_end: int, barrier: Any, clock: Any, counts: Any, index: int, large: bool
) -> None:
    os.close(other_end)  # or the pipe never reports end of file
    buffer = memoryview(bytearray(MB))
    total = 0
    barrier.wait()
    while n := os.readv(fd, [buffer]):
        total += n
    clock[len(counts) + index] = time.perf_counter()
    counts[index] = total // (MB if large else 8)


def run(contender: str, count: int, large: bool, pairs: int) -> dict[str, float]:
    """Messages/s of ``count`` messages from ``pairs`` producers to ``pairs`` consumers."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2 * pairs + 1)
    counts = ctx.Array("q", pairs, lock=False)
    clock = ctx.Array("d", 2 * pairs, lock=False)
    share = [count // pairs + (i < count % pairs) for i in range(pairs)]
    processes = []
    if contender == RAW:
        for i in range(pairs):
            read_fd, write_fd = os.pipe()
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, MB)
            processes.append(
                ctx.Process(
                    target=_raw_produce, args=(write_fd, barrier, clock, i, share[i], large)
                )
            )
            processes.append(
                ctx.Process(
                    target=_raw_consume, args=(read_fd, write_fd, barrier, clock, counts, i, large)
                )
            )
            processes[-2].start()
            processes[-1].start()
            os.close(read_fd)
            os.close(write_fd)
    elif contender == MPPIPE:
        reader, writer = ctx.Pipe(duplex=False)
        processes = [
            ctx.Process(target=_pipe_produce, args=(writer, barrier, clock, count, large)),
            ctx.Process(target=_pipe_consume, args=(reader, barrier, clock, counts)),
        ]
    else:
        queue = _make_queue(contender)
        processes = [
            ctx.Process(target=_produce, args=(contender, queue, barrier, clock, i, n, large))
            for i, n in enumerate(share)
        ] + [
            ctx.Process(target=_consume, args=(contender, queue, barrier, clock, counts, i))
            for i in range(pairs)
        ]
    for process in processes:
        if process.pid is None:
            process.start()
    barrier.wait()
    for process in processes:
        process.join()
    starts, ends = clock[:pairs], clock[pairs:]
    if contender == MPPIPE:
        starts, ends = clock[:1], clock[1:2]
    elapsed = max(ends) - min(starts)
    if sum(counts) != count or any(p.exitcode for p in processes):
        raise AssertionError(f"{sum(counts)} of {count} messages arrived")
    return {case_name(large, pairs): count / elapsed}


def jobs(quick: bool) -> list[Job]:
    small = scaled(50_000 if quick else 1_000_000)
    large = scaled(200 if quick else 10_000)
    out = []
    for contender in CONTENDERS:
        for is_large in (False, True):
            for pairs in (1, 4):
                if contender.name == MPPIPE and pairs > 1:
                    continue  # a Pipe has two ends
                params = {
                    "contender": contender.name,
                    "count": large if is_large else small,
                    "large": is_large,
                    "pairs": pairs,
                }
                label = case_name(is_large, pairs)
                out.append(Job(contender.name, label, f"{__name__}:run", params))
    return out


def limit(case: str, medians: Mapping[tuple[str, str], float]) -> float | None:
    return medians.get((case, RAW))


def _ratio(best: Mapping[tuple[str, str], tuple[float, str]], a: str, b: str, case: str) -> float:
    if (case, a) not in best or (case, b) not in best:
        return float("nan")
    return best[(case, a)][0] / best[(case, b)][0]


def targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    lines = []
    for pairs in (1, 4):
        small, large = case_name(False, pairs), case_name(True, pairs)
        checks = [
            (f"{small}: put_many/get_many vs multiprocessing.Queue", WH_MANY, MPQ, small, 10.0),
            (f"{small}: put/get vs multiprocessing.Queue", WH, MPQ, small, 3.0),
            (f"{small}: put/get vs faster-fifo put/get", WH, FF, small, 1.0),
            (
                f"{small}: put_many/get_many vs faster-fifo put_many/get_many",
                WH_MANY,
                FF_MANY,
                small,
                1.0,
            ),
            (f"{large}: put/get vs raw os.pipe", WH, RAW, large, 0.5),
        ]
        for text, a, b, case, goal in checks:
            ratio = _ratio(best, a, b, case)
            verdict = "met" if ratio >= goal else f"missed ({ratio / goal:.2f} of the goal)"
            lines.append(f"{text}: {ratio:.2f}x (>= {goal:g}x): {verdict}")
    return lines


WORKLOAD = Workload(
    key="queues",
    title="5. Queues between processes (small and 1 MB messages; 1P/1C and 4P/4C)",
    description=(
        "Messages/s between forked processes: 1,000,000 small messages (ints) and 10,000 "
        "1 MB messages (quick mode: 50,000 and 200); batches of 1,000 (small) or 8 (1 MB) "
        "for put_many; get_many takes up to 1,000. Queues at their defaults except faster-fifo's "
        "buffer (32 MB, its default 200 KB cannot hold a 1 MB message)."
    ),
    unit="msgs/s",
    higher_is_better=True,
    contenders=CONTENDERS,
    jobs=jobs,
    reps=(2, 3),
    timeout=(60.0, 300.0),
    limit=limit,
    limit_label="of os.pipe",
    targets=targets,
)
