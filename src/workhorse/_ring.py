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

* ``head <= tail`` are byte counters that only grow; ``tail - head <= capacity`` bytes are in
  use. ``capacity`` is a power of two and every frame starts 8-byte aligned, so a frame's
  int64 length never straddles the wrap point; its payload is copied in at most two slices.
* A frame is ``[len][payload][pad to 8]``. ``len >= 0``: the pickle is in the ring.
  ``len < 0``: the payload is the name of an *out-of-band* segment holding the pickle (items
  whose frame would exceed ``capacity // 4``). The reader unlinks it after reading it.
* ``count`` frames are in the ring; ``buffered`` items were accepted by ``put`` but still sit
  in some process's feeder backlog; ``unfinished`` counts items put and not yet task_done.
* For each channel, ``waiting`` threads are registered (they incremented it under the mutex
  before sleeping and decrement it after waking) and ``pending`` tokens were posted to them
  and not yet taken. A waker posts only while ``waiting > pending``, so tokens never pile
  up; a waiter that times out takes back a surplus token, and every waiter re-checks its
  condition under the mutex, so a wake-up is never lost and a stray one is harmless.
* ``holder`` is the pid holding the mutex (0 when free). A waiter that cannot get the mutex
  for ``BROKEN_AFTER`` seconds checks that pid; if the process is dead the ring is marked
  ``broken`` and every later call raises :class:`~._errors.BrokenResourceError`.

Out-of-band segments are written with ``shm_open`` + ``write`` and never registered with the
resource tracker (the reader, often another process, unlinks them). Their names start with
the queue's prefix, so the queue's creator can unlink unread ones when the queue dies.
"""

from __future__ import annotations

import _posixshmem
import mmap
import os
import time
from collections import deque
from typing import Any

from ._errors import BrokenResourceError
from ._semlock import NamedSemaphore
from ._serialize import loads
from ._sharing import pid_alive
from ._shm import Segment

__all__ = ["HEADER_BYTES", "Ring"]

# Header field indices (int64 each).
HEAD, TAIL, COUNT, HOLDER, BROKEN, STATE, UNFINISHED, BUFFERED = range(8)
GETTERS, PUTTERS, JOINERS = 8, 10, 12  # waiting count at i, pending tokens at i + 1
HEADER_BYTES = 128
ALIVE, SHUTDOWN, IMMEDIATE = 0, 1, 2

#: Seconds a waiter tries for the mutex before checking whether its holder is alive.
BROKEN_AFTER = 1.0
#: Polls before a blocking wait (a few microseconds).
SPIN = 200
#: Seconds even a non-blocking call waits for a contended mutex.
MUTEX_GRACE = 0.05

Backlog = deque[tuple[bytes, int]]  # (payload, frame length field) not yet in the ring


def store_oob(prefix: str, data: bytes) -> bytes:
    """Write ``data`` to a new out-of-band segment; return its name (the frame payload)."""
    name = f"{prefix}-{os.getpid()}-{os.urandom(6).hex()}"
    fd = _posixshmem.shm_open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode=0o600)
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
        pass


def load(data: bytes, length: int) -> Any:
    """Unpickle a frame read by :meth:`Ring.read`, fetching (and unlinking) out-of-band data."""
    if length >= 0:
        return loads(data)
    name = data.decode()
    fd = _posixshmem.shm_open(name, os.O_RDONLY, mode=0o600)
    try:
        _posixshmem.shm_unlink(name)
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
        discard_oob(("/" + name).encode())


def frame_bytes(length: int) -> int:
    """Ring bytes taken by a frame whose length field is ``length``."""
    return 8 + ((abs(length) + 7) & -8)


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

    def write(self, data: bytes, length: int) -> None:
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

    def read(self) -> tuple[bytes, int]:
        """Remove the oldest frame (``count`` is the caller's to update)."""
        hq, buf, cap = self.hq, self.buf, self.capacity
        head = hq[HEAD]
        pos = head & self.mask
        length = self.rq[pos >> 3]
        n = -length if length < 0 else length
        start = (pos + 8) & self.mask
        end = start + n
        if end <= cap:
            data = buf[start:end].tobytes()
        else:
            data = buf[start:].tobytes() + buf[: end - cap].tobytes()
        hq[HEAD] = head + 8 + ((n + 7) & -8)
        return data, length

    def drop_all(self) -> int:
        """Discard every frame, unlinking out-of-band data; return how many (mutex held)."""
        hq = self.hq
        n = hq[COUNT]
        for _ in range(n):
            data, length = self.read()
            if length < 0:
                discard_oob(data)
        hq[COUNT] = 0
        hq[HEAD] = hq[TAIL]
        return n

    def flush(self, backlog: Backlog) -> int:
        """Move what fits of a feeder's backlog into the ring in one lock round.

        Returns the frame size the first remaining item needs (0 when the backlog is empty).
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
                data, length = backlog[0]
                if self.room() < frame_bytes(length):
                    break
                self.write(data, length)
                backlog.popleft()
                moved += 1
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
        n = len(backlog)
        for data, length in backlog:
            if length < 0:
                discard_oob(data)
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
