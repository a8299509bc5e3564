"""The shared-memory ring buffer under the process-flavour queues (see :mod:`._queue`).

One named :class:`~._shm.Segment` holds a header of int64 fields and a byte ring; named
semaphores provide the mutex and the three wake-up channels. Everything is a named kernel
object, so any process can open the ring by name at any time::

    segment:  0            128                                         128 + capacity
              +------------+--------------------------------------------+
              |   header   | ..free..|len|payload..pad|len|name|..free..|
              +------------+--------------------------------------------+
                                     ^ head % capacity     ^ tail % capacity

    semaphores:  mutex (1, 1)        protects every header field and the ring bytes
                 getters / putters / joiners   wake-up tokens, one channel per kind of waiter

Invariants (all fields are written only with the mutex held):

* ``head <= tail`` are byte counters; ``tail - head <= capacity`` bytes are in use. They only
  grow, except that both are reset to 0 whenever the ring empties: a queue whose consumers
  keep up then only ever touches the first pages of its segment. ``capacity`` is a power of
  two and every frame starts 8-byte aligned, so an int64 field never straddles the wrap
  point; a payload is copied in at most two slices.
* A frame is ``[len][payload][pad to 8]``, of one of three kinds (``len`` tells which):

  - ``0 <= len < BATCH``: one item, its pickle in the ring;
  - ``len < 0``: one item whose payload is the name of an *out-of-band* segment holding the
    pickle (items whose frame would exceed ``capacity // 4``); the reader unlinks it;
  - ``len >= BATCH``: a *batch* of ``n`` items written by one ``put_many``, payload
    ``[n][taken][taken_bytes][n item lengths][the n pickles]`` (``len - BATCH`` bytes).
    Readers take items from its front, advancing ``taken``/``taken_bytes``; the frame leaves
    the ring with its last item. A batch holds no out-of-band item (those get single frames).
* ``count`` items (not frames) are in the ring; ``buffered`` items were accepted by ``put``
  but still sit in some process's feeder backlog; ``unfinished`` counts items put and not
  yet task_done.
* For each channel, ``waiting`` threads are registered (they incremented it under the mutex
  before sleeping and decrement it after waking) and ``pending`` tokens were posted to them
  and not yet taken. A waker posts only while ``waiting > pending``, so tokens never pile
  up; a waiter that times out takes back a surplus token, and every waiter re-checks its
  condition under the mutex, so a wake-up is never lost and a stray one is harmless.
* ``holder`` is the pid holding the mutex (0 when free). A waiter that cannot get the mutex
  for ``BROKEN_AFTER`` seconds checks that pid; if the process is dead the ring is marked
  ``broken`` and every later call raises :class:`~._errors.BrokenResourceError`.

Out-of-band segments are written with ``shm_open`` + ``write``. Their names start with the
queue's prefix ``wh-<creator>-q<uid>``: they belong to the queue, hence to its creator, from
``put`` until a reader unlinks them, so the clean-up after a dead putter leaves them alone,
and the creator unlinks unread ones when the queue dies. Each is registered with the putter's
resource tracker and unregistered by the process that unlinks it (see :mod:`._sharing`).
"""

from __future__ import annotations

import _posixshmem
import mmap
import os
import time
from array import array
from collections import deque
from typing import Any

from ._errors import BrokenResourceError
from ._semlock import NamedSemaphore
from ._serialize import loads
from ._sharing import forget, new_name, pid_alive, remove
from ._shm import Segment

__all__ = ["BATCH", "HEADER_BYTES", "Ring"]

# Header field indices (int64 each).
HEAD, TAIL, COUNT, HOLDER, BROKEN, STATE, UNFINISHED, BUFFERED = range(8)
GETTERS, PUTTERS, JOINERS = 8, 10, 12  # waiting count at i, pending tokens at i + 1
HEADER_BYTES = 128
ALIVE, SHUTDOWN, IMMEDIATE = 0, 1, 2

#: A frame length field at or above this marks a batch frame (payload ``len - BATCH`` bytes).
BATCH = 1 << 62
#: Bytes of a batch payload before its item lengths: ``n``, ``taken``, ``taken_bytes``.
BATCH_HEADER = 24

#: Seconds a waiter tries for the mutex before checking whether its holder is alive.
BROKEN_AFTER = 1.0
#: Polls before a blocking wait (a few microseconds).
SPIN = 200
#: Seconds even a non-blocking call waits for a contended mutex.
MUTEX_GRACE = 0.05

#: A frame not yet in the ring: (payload, length field, number of items).
Frame = tuple[bytes, int, int]
Backlog = deque[Frame]
#: What readers take out: ``(bytes, length field, False)`` for one item; ``(bytes, item
#: lengths, padded)`` for several: a batch's pickles back to back (not padded), or a run of
#: single frames, each still ``[len][pickle][pad to 8]`` (padded).
Chunk = tuple[bytes, "int | array[int]", bool]


def store_oob(prefix: str, data: bytes) -> bytes:
    """Write ``data`` to a new out-of-band segment; return its name (the frame payload).

    The name starts with the queue's prefix: the item belongs to the queue (to its creator),
    not to the putting process, until a reader unlinks it.
    """
    name = new_name(prefix.lstrip("/"))
    try:
        fd = _posixshmem.shm_open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode=0o600)
    except BaseException:
        forget(name)
        raise
    try:
        view, written = memoryview(data), 0
        while written < len(data):
            written += os.write(fd, view[written:])
    except BaseException:
        discard_oob(name.encode())
        raise
    finally:
        os.close(fd)
    return name.encode()


def discard_oob(name: bytes) -> None:
    """Unlink an out-of-band segment that will never be read."""
    try:
        _posixshmem.shm_unlink(name.decode())
    except OSError:
        return
    forget(name.decode())


def discard_frames(frames: list[Frame] | Backlog) -> None:
    """Unlink the out-of-band segments of frames that will never be written."""
    for data, length, _ in frames:
        if length < 0:
            discard_oob(data)


def load(data: bytes, length: int) -> Any:
    """Unpickle one item read from the ring, fetching (and unlinking) out-of-band data."""
    if length >= 0:
        return loads(data)
    name = data.decode()
    fd = _posixshmem.shm_open(name, os.O_RDONLY, mode=0o600)
    try:
        _posixshmem.shm_unlink(name)
        forget(name)
        size = os.fstat(fd).st_size
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        mapping = mmap.mmap(fd, size, flags=flags, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    try:
        with memoryview(mapping) as view:
            return loads(view)
    finally:
        mapping.close()


def unlink_prefixed(prefix: str) -> None:
    """Unlink every out-of-band segment named with ``prefix`` (the creator, at the end)."""
    start = prefix.lstrip("/") + "-"
    try:
        names = [n for n in os.listdir("/dev/shm") if n.startswith(start)]
    except OSError:
        return
    for name in names:
        remove(name)


def frame_bytes(length: int) -> int:
    """Ring bytes taken by a frame whose length field is ``length``."""
    n = length - BATCH if length >= BATCH else abs(length)
    return 8 + ((n + 7) & -8)


class Ring:
    """A mapped ring plus its semaphores; the methods marked *mutex held* expect the lock."""

    __slots__ = (
        "buf",
        "capacity",
        "getters",
        "hq",
        "joiners",
        "mask",
        "mutex",
        "pid",
        "prefix",
        "putters",
        "release",
        "rq",
        "segment",
        "try_lock",
    )

    def __init__(self, segment: Segment, sems: tuple[NamedSemaphore, ...], prefix: str) -> None:
        self.segment, self.prefix, self.pid = segment, prefix, os.getpid()
        self.mutex, self.getters, self.putters, self.joiners = sems
        self.capacity = segment.size - HEADER_BYTES
        self.mask = self.capacity - 1
        self.hq = segment.buf[:HEADER_BYTES].cast("q")
        self.buf = segment.buf[HEADER_BYTES : HEADER_BYTES + self.capacity]
        self.rq = self.buf.cast("q")
        # The hot path calls the C SemLock directly: NamedSemaphore's wrapper methods would
        # double the cost of an uncontended lock round.
        self.try_lock = self.mutex._sem.acquire  # try_lock(False): non-blocking
        self.release = self.mutex._sem.release

    @property
    def sems(self) -> tuple[NamedSemaphore, ...]:
        return (self.mutex, self.getters, self.putters, self.joiners)

    # -- the mutex -------------------------------------------------------------------------

    def lock(self, timeout: float | None) -> bool:
        """Take the mutex within ``timeout`` seconds; raise if its holder died holding it."""
        try_lock = self.try_lock
        for _ in range(SPIN):
            if try_lock(False):
                self.hq[HOLDER] = self.pid
                return True
        # A live holder keeps the mutex for microseconds: even a non-blocking call waits a
        # little for it rather than report a spurious Full/Empty.
        deadline = None if timeout is None else time.monotonic() + max(timeout, MUTEX_GRACE)
        while True:
            broken = self.hq[BROKEN]
            if broken:
                raise BrokenResourceError(
                    f"the queue's internal lock is held by process {broken}, which died"
                )
            step = BROKEN_AFTER
            if deadline is not None:
                step = max(0.0, min(step, deadline - time.monotonic()))
            if self.mutex.acquire(step):
                self.hq[HOLDER] = self.pid
                return True
            holder = self.hq[HOLDER]
            if holder and holder != self.pid and not pid_alive(holder):
                self.hq[BROKEN] = holder
                continue  # raise from the top
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def unlock(self) -> None:
        self.hq[HOLDER] = 0
        self.release()

    def spin_until(self, field: int) -> bool:
        """Poll ``field`` (without the mutex) briefly; True once it is non-zero.

        A consumer that would sleep on a semaphore first spins a few microseconds: when the
        producer is busy on another core, the next item is almost always that close, and a
        futex sleep plus wake-up costs far more.
        """
        hq = self.hq
        return any(hq[field] or hq[STATE] for _ in range(SPIN))

    # -- waiting (mutex held on entry and on normal return; released if it raises) ---------

    def park(self, channel: int, sem: NamedSemaphore, timeout: float | None) -> None:
        """Register on ``channel``, sleep on ``sem`` up to ``timeout``, re-take the mutex."""
        hq = self.hq
        hq[channel] += 1
        self.unlock()
        try:
            got = sem.acquire(timeout)
        except BaseException:  # Cancelled: deregister so the counts stay exact
            self.lock(None)
            self._leave(channel, sem, False)
            self.unlock()
            raise
        self.lock(None)
        self._leave(channel, sem, got)

    def _leave(self, channel: int, sem: NamedSemaphore, got: bool) -> None:
        hq = self.hq
        hq[channel] -= 1
        if got:
            hq[channel + 1] -= 1
        elif hq[channel + 1] > hq[channel] and sem.try_acquire():
            hq[channel + 1] -= 1  # a token posted for us after the timeout

    def wake(self, channel: int, sem: NamedSemaphore, n: int) -> None:
        """Post up to ``n`` tokens, only to waiters that have none yet (mutex held)."""
        hq = self.hq
        n = min(n, hq[channel] - hq[channel + 1])
        if n > 0:
            hq[channel + 1] += n
            for _ in range(n):
                sem.release()

    def wake_all(self) -> None:
        """Wake every waiter of every channel (mutex held)."""
        self.wake(GETTERS, self.getters, 1 << 30)
        self.wake(PUTTERS, self.putters, 1 << 30)
        self.wake(JOINERS, self.joiners, 1 << 30)

    # -- frames (mutex held) -----------------------------------------------------------------

    def room(self) -> int:
        return self.capacity - (self.hq[TAIL] - self.hq[HEAD])

    def write(self, data: bytes | memoryview, length: int) -> None:
        """Append one frame; the caller checked ``room() >= frame_bytes(length)``."""
        hq, buf, cap = self.hq, self.buf, self.capacity
        tail = hq[TAIL]
        pos = tail & self.mask
        self.rq[pos >> 3] = length
        start = (pos + 8) & self.mask
        n = len(data)
        end = start + n
        if end <= cap:
            buf[start:end] = data
        else:
            split = cap - start
            view = memoryview(data)
            buf[start:] = view[:split]
            buf[: n - split] = view[split:]
        hq[TAIL] = tail + 8 + ((n + 7) & -8)

    def copy(self, offset: int, n: int) -> bytes:
        """The ``n`` ring bytes from ``offset`` (any ring position; wraps)."""
        start = offset & self.mask
        end = start + n
        if end <= self.capacity:
            return self.buf[start:end].tobytes()
        return self.buf[start:].tobytes() + self.buf[: end - self.capacity].tobytes()

    def _advance(self, head: int) -> None:
        hq = self.hq
        if head == hq[TAIL]:
            hq[HEAD] = hq[TAIL] = 0  # empty: restart at the front (see the module docstring)
        else:
            hq[HEAD] = head

    def read(self) -> tuple[bytes, int]:
        """Remove the oldest item: its bytes and length field (``count`` is the caller's)."""
        head = self.hq[HEAD]
        pos = head & self.mask
        length = self.rq[pos >> 3]
        if length >= BATCH:
            data, lens = self._take_batch(pos, length, 1)
            return data, lens[0]
        n = -length if length < 0 else length
        data = self.copy(pos + 8, n)
        self._advance(head + 8 + ((n + 7) & -8))
        return data, length

    def take(self, max_items: int) -> tuple[list[Chunk], int]:
        """Remove up to ``max_items`` of the oldest items; update ``count`` (mutex held).

        Runs of single in-ring frames are copied out in one slice (the reader splits them),
        and a batch frame in one or two: the cost is per lock round, not per item.
        """
        hq, rq, mask = self.hq, self.rq, self.mask
        count = hq[COUNT]
        want = count if count < max_items else max_items
        chunks: list[Chunk] = []
        got = 0
        while got < want:
            head = hq[HEAD]
            pos = head & mask
            length = rq[pos >> 3]
            if length >= BATCH:
                data, lens = self._take_batch(pos, length, want - got)
                chunks.append((data, lens, False))
                got += len(lens)
            elif length < 0:
                data, length = self.read()
                chunks.append((data, length, False))
                got += 1
            else:
                # A run of in-ring single frames: their lengths, then one copy of the run.
                lens = array("q")
                end, tail = head, hq[TAIL]
                while got < want and end < tail:
                    length = rq[(end & mask) >> 3]
                    if length < 0 or length >= BATCH:
                        break
                    lens.append(length)
                    end += 8 + ((length + 7) & -8)
                    got += 1
                chunks.append((self.copy(pos, end - head), lens, True))
                self._advance(end)
        hq[COUNT] = count - got
        return chunks, got

    def _take_batch(self, pos: int, length: int, want: int) -> tuple[bytes, array[int]]:
        """Take up to ``want`` items from the front of the batch frame at ``pos``."""
        rq, mask = self.rq, self.mask
        payload = pos + 8
        n = rq[(payload & mask) >> 3]
        at_taken, at_bytes = ((payload + 8) & mask) >> 3, ((payload + 16) & mask) >> 3
        taken, skip = rq[at_taken], rq[at_bytes]
        k = n - taken
        k = min(k, want)
        lens = array("q")
        lens.frombytes(self.copy(payload + BATCH_HEADER + 8 * taken, 8 * k))
        size = sum(lens)
        data = self.copy(payload + BATCH_HEADER + 8 * n + skip, size)
        if taken + k == n:
            self._advance(self.hq[HEAD] + frame_bytes(length))
        else:
            rq[at_taken], rq[at_bytes] = taken + k, skip + size
        return data, lens

    def drop_all(self) -> int:
        """Discard every item, unlinking out-of-band data; return how many (mutex held)."""
        hq, rq, mask = self.hq, self.rq, self.mask
        n = hq[COUNT]
        head, tail = hq[HEAD], hq[TAIL]
        while head < tail:
            length = rq[(head & mask) >> 3]
            if length < 0:
                discard_oob(self.copy(head + 8, -length))
            head += frame_bytes(length)
        hq[COUNT] = hq[HEAD] = hq[TAIL] = 0
        return n

    def flush(self, backlog: Backlog) -> int:
        """Move what fits of a feeder's backlog into the ring in one lock round.

        Returns the frame size the first remaining frame needs (0 when the backlog is empty).
        After an immediate shutdown the backlog is dropped instead.
        """
        self.lock(None)
        try:
            hq = self.hq
            if hq[STATE] == IMMEDIATE:
                self.forget(backlog)
                return 0
            moved = 0
            while backlog:
                data, length, items = backlog[0]
                if self.room() < frame_bytes(length):
                    break
                self.write(data, length)
                backlog.popleft()
                moved += items
            if moved:
                hq[COUNT] += moved
                hq[BUFFERED] -= moved
                self.wake(GETTERS, self.getters, moved)
                if hq[STATE] and not hq[BUFFERED]:
                    self.wake_all()  # drained getters of a shut-down queue may now end
            return frame_bytes(backlog[0][1]) if backlog else 0
        finally:
            self.unlock()

    def forget(self, backlog: Backlog) -> None:
        """Drop a backlog that will never be written, keeping the counts exact (mutex held)."""
        hq = self.hq
        n = sum(items for _, _, items in backlog)
        discard_frames(backlog)
        backlog.clear()
        hq[BUFFERED] -= n
        hq[UNFINISHED] = max(0, hq[UNFINISHED] - n)
        self.wake_all()

    def wait_room(self, need: int) -> None:
        """Block until ``need`` ring bytes are free or the queue was shut down immediately."""
        self.lock(None)
        while self.room() < need and self.hq[STATE] != IMMEDIATE:
            self.park(PUTTERS, self.putters, None)  # on error it returns without the mutex
        self.unlock()
