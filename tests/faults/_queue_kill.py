"""Kill a queue's producer or consumer at a random instant, then check the queue.

One *trial*: a fresh queue (a small ring, so that puts wrap, spill and go out of band), one
forked process putting (or getting) as fast as it can, a SIGKILL after a random delay of a
few microseconds to a few milliseconds, then the checks:

* nothing hangs: every call here has a timeout, and returns within it;
* every item whose ``put``/``put_many`` returned (the producer records that in shared
  memory right after each call) is delivered exactly once, in the producer's order; at most
  the items of the call in flight may be delivered beyond those;
* a killed consumer loses at most the items of its call in flight, never more, and what it
  did not take is delivered once, in order;
* ``qsize()``/``empty()`` are exact after the kill; ``for item in q`` after ``shutdown()``
  ends;
* once the queue is gone, none of its names is left in ``/dev/shm``.

Used by ``tests/faults/test_queue_kill.py`` (a few thousand kills in the default suite) and
by the soak, ``python -m tests.faults.soak_queues --minutes 10``.
"""

from __future__ import annotations

import gc
import mmap
import os
import queue
import random
import signal
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from workhorse._queue import Queue

#: No call may take longer than its timeout plus this (seconds).
SLACK = 2.0
#: Longest put_many / get_many batch (the items a kill may leave undecided).
BATCH = 40
RING = 4096  # bytes: threshold 1 KiB, so "big" items (2 KiB) go out of band
_WORD = struct.Struct("<q")


@dataclass
class Outcome:
    """What the trials saw; every list of problems must stay empty."""

    trials: int = 0
    kills: int = 0
    items: int = 0
    in_flight: int = 0  # items of the killed call that were delivered anyway (allowed)
    lost_in_consumer: int = 0  # items a killed consumer took and did not record (allowed)
    wrong: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    hung: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return self.wrong + self.missing + self.hung + self.leaked

    def summary(self) -> str:
        return (
            f"{self.trials} trials, {self.kills} kills, {self.items} items delivered, "
            f"{self.in_flight} in-flight items delivered, {self.lost_in_consumer} items "
            f"taken by killed consumers; wrong {len(self.wrong)}, missing "
            f"{len(self.missing)}, hung {len(self.hung)}, leaked {len(self.leaked)}"
        )


def _item(seq: int, kind: str) -> tuple[int, bytes]:
    size = 2048 if kind == "big" else seq % 200
    return seq, bytes([seq % 251]) * size


def _produce(q: Queue, board: mmap.mmap, rng: random.Random) -> None:
    """Put forever; after each call returns, record how many items were accepted."""
    seq = 0
    words = memoryview(board).cast("q")  # one 8-byte store per record: a kill cannot tear it
    words[1] = 1  # started
    while True:
        op = rng.random()
        if op < 0.4:
            q.put(_item(seq, "small"), timeout=5)
            seq += 1
        elif op < 0.55:
            q.put(_item(seq, "big"), timeout=5)
            seq += 1
        else:
            n = rng.randint(1, BATCH if not q.maxsize else q.maxsize)
            q.put_many([_item(seq + i, "small") for i in range(n)], timeout=5)
            seq += n
        words[0] = seq


def _consume(q: Queue, board: mmap.mmap, rng: random.Random) -> None:
    """Get forever; record every item taken (its seq), then the count."""
    count = 0
    words = memoryview(board).cast("q")  # one 8-byte store per record: a kill cannot tear it
    words[1] = 1
    while True:
        items = [q.get(timeout=5)] if rng.random() < 0.5 else q.get_many(BATCH, timeout=5)
        for seq, _ in items:
            words[2 + count] = seq
            count += 1
        words[0] = count


def _fork(target: Any, q: Queue, board: mmap.mmap, seed: int) -> int:
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            target(q, board, random.Random(seed))
        finally:
            os._exit(0)
    return pid


def _kill_after(pid: int, board: mmap.mmap, delay: float) -> None:
    deadline = time.monotonic() + 5
    while not _WORD.unpack_from(board, 8)[0] and time.monotonic() < deadline:
        pass  # spin: the child is starting (a few hundred microseconds)
    end = time.perf_counter() + delay
    while time.perf_counter() < end:
        pass  # sleep() is too coarse for microseconds
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _call(out: Outcome, what: str, fn: Any, timeout: float) -> Any:
    started = time.monotonic()
    try:
        return fn()
    finally:
        if time.monotonic() - started > timeout + SLACK:
            out.hung.append(f"{what} took {time.monotonic() - started:.1f} s")


def _drain(q: Queue, out: Outcome, shutdown: bool) -> list[tuple[int, bytes]]:
    got: list[tuple[int, bytes]] = []
    if shutdown:
        q.shutdown()
        _call(out, "iteration after shutdown", lambda: got.extend(q), 30)
        return got
    while True:  # the other process is dead: what is left is all there, no need to wait
        try:
            got += _call(out, "get_many", lambda: q.get_many(BATCH, block=False), 0)
        except queue.Empty:
            return got


def _check_empty(q: Queue, out: Outcome) -> str:
    """Check the counts of a drained queue; return its /dev/shm prefix."""
    if q.qsize() != 0 or not q.empty():
        out.wrong.append(f"qsize() {q.qsize()} / empty() {q.empty()} after draining")
    return q._ring.prefix.lstrip("/")


def _check_gone(prefix: str, out: Outcome) -> None:
    """Once the queue object is gone, so must be every name it owned."""
    left = [n for n in os.listdir("/dev/shm") if n.startswith(prefix)]
    if left:  # freed by reference counting, normally; a full collection costs milliseconds
        gc.collect()
        left = [n for n in os.listdir("/dev/shm") if n.startswith(prefix)]
    if left:
        out.leaked.append(f"left in /dev/shm: {left}")


def producer_trial(out: Outcome, rng: random.Random, max_delay: float) -> None:
    """Kill a producer at a random instant; check the queue (see the module docstring)."""
    bounded = rng.random() < 0.2
    q = Queue(BATCH if bounded else 0, ring_size=RING)
    board = mmap.mmap(-1, 16)
    pid = _fork(_produce, q, board, rng.randrange(1 << 30))
    _kill_after(pid, board, rng.uniform(0, max_delay))
    out.trials += 1
    out.kills += 1
    accepted = _WORD.unpack_from(board, 0)[0]
    size = _call(out, "qsize", q.qsize, 0)
    got = _drain(q, out, shutdown=rng.random() < 0.5)
    seqs = [seq for seq, _ in got]
    out.items += len(got)
    if seqs != list(range(len(seqs))):
        out.wrong.append(f"producer: delivered out of order or twice: {seqs[:20]}...")
    elif any(data != _item(seq, "big" if len(data) == 2048 else "small")[1] for seq, data in got):
        out.wrong.append("producer: an item's content changed")
    if len(seqs) < accepted:
        out.missing.append(f"producer: {accepted} accepted, {len(seqs)} delivered")
    elif len(seqs) > accepted + BATCH:
        out.wrong.append(f"producer: {len(seqs)} delivered, only {accepted} accepted")
    out.in_flight += max(0, len(seqs) - accepted)
    if size != len(seqs):
        out.wrong.append(f"producer: qsize() said {size}, {len(seqs)} were delivered")
    prefix = _check_empty(q, out)
    del q
    _check_gone(prefix, out)


def consumer_trial(out: Outcome, rng: random.Random, max_delay: float) -> None:
    """Kill a consumer at a random instant; check what is left (see the module docstring)."""
    q = Queue(ring_size=RING)
    total = rng.randint(50, 400)
    for seq in range(0, total, 10):
        q.put_many([_item(i, "big" if i % 7 == 0 else "small") for i in range(seq, seq + 10)])
    total = (total + 9) // 10 * 10
    board = mmap.mmap(-1, 16 + 8 * total)
    pid = _fork(_consume, q, board, rng.randrange(1 << 30))
    _kill_after(pid, board, rng.uniform(0, max_delay))
    out.trials += 1
    out.kills += 1
    count = _WORD.unpack_from(board, 0)[0]
    taken = [_WORD.unpack_from(board, 16 + 8 * i)[0] for i in range(count)]
    size = _call(out, "qsize", q.qsize, 0)
    got = [seq for seq, _ in _drain(q, out, shutdown=rng.random() < 0.5)]
    out.items += len(got) + len(taken)
    first = got[0] if got else total
    lost = first - len(taken)
    if taken != list(range(len(taken))) or got != list(range(first, total)):
        out.wrong.append(f"consumer: taken {taken[-5:]}, then delivered {got[:5]}...")
    elif not 0 <= lost <= BATCH:
        out.missing.append(f"consumer: {lost} items vanished with the killed consumer")
    out.lost_in_consumer += max(0, lost)
    if size != len(got):
        out.wrong.append(f"consumer: qsize() said {size}, {len(got)} were left")
    prefix = _check_empty(q, out)
    del q
    _check_gone(prefix, out)
