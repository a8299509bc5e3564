"""The shared-memory ring buffer under the process-flavour queues (see :mod:`._queue`).

One named :class:`~._shm.Segment` holds a header and a byte ring; a robust mutex in the
header protects both, and named semaphores are the three wake-up channels. Everything is a
named kernel object, so any process can open the ring by name at any time::

    segment:  0       64          512                                       512 + capacity
              +-------+-----------+--------------------------------------------+
              | mutex |  fields   | ..free..|len|payload..pad|len|name|..free..|
              +-------+-----------+--------------------------------------------+
                       (+ journal)           ^ head % capacity     ^ tail % capacity

    semaphores:  getters / putters / joiners   wake-up tokens, one channel per kind of waiter

Invariants (all fields are written only with the mutex held):

* ``head <= tail`` are byte counters; ``tail - head <= capacity`` bytes are in use. They only
  grow, except that both are reset to 0 whenever the ring empties (``tail`` first): a queue
  whose consumers keep up then only ever touches the first pages of its segment.
  ``capacity`` is a power of two and every frame starts 8-byte aligned, so an int64 field
  never straddles the wrap point; a payload is copied in at most two slices.
* A frame is ``[len][payload][pad to 8]``, of one of three kinds (``len`` tells which):

  - ``0 <= len < BATCH``: one item, its pickle in the ring;
  - ``len < 0``: one item whose payload is the name of an *out-of-band* segment holding the
    pickle (items whose frame would exceed ``capacity // 4``; see :mod:`._queue_codec`);
  - ``len >= BATCH``: a *batch* of ``n`` items written by one ``put_many``, payload
    ``[n][taken][0][n item lengths][the n pickles]`` (``len - BATCH`` bytes), ``taken``
    being the items and pickle bytes already taken from its front, in one word. The frame
    leaves the ring with its last item.
* ``puts`` counts the items ever accepted, ``gets`` those ever taken, ``done`` those marked
  done; ``spilled`` items wait in spill segments (:mod:`._queue_feeder`). So the ring holds
  ``puts - gets - spilled`` items, the queue ``puts - gets``, and ``puts - done`` are
  unfinished: derived, never stored, so that they cannot disagree.
* For each channel, ``waiting`` threads are registered (they incremented it under the mutex
  before sleeping and decrement it after waking) and ``pending`` tokens were posted to them
  and not yet taken. A waker posts only while ``waiting > pending``; a waiter that times out
  takes back a surplus token, and every waiter re-checks its condition under the mutex, so
  a wake-up is never lost and a stray one is harmless (a dead waiter only adds strays).

A process killed holding the mutex (item 3 of the queue robustness issue): the mutex is a
glibc *robust* mutex (:class:`~._semlock.RobustMutex`), so it is never left taken by a dead
process; the next locker gets ``EOWNERDEAD`` and repairs the header before going on:

* The hot paths (``put`` of one small item, ``get`` of one item, with nobody to wake) change
  only ``tail`` then ``puts``, or ``head`` (or a batch's ``taken`` word) then ``gets``. Each
  first store publishes the change, so a dead holder left at most the counter behind: the
  repair walks the ring, counts its items and moves ``puts`` or ``gets`` to match.
* Every other critical section first copies the fields into the *journal* (and, before
  changing a batch's ``taken`` word, that word), then marks the journal valid, and clears
  the mark just before unlocking. The repair restores a valid journal: the dead holder's
  call never happened (a put that did not return is not delivered; an item a dead getter
  took goes back to the queue). Side effects that cannot be rolled back (unlinking a
  segment) happen after the unlock; what a death there leaves is swept with the queue.

If a repair itself fails, the ring is marked broken and every later call raises
:class:`~._errors.BrokenResourceError` instead of hanging or returning wrong data.
"""

from __future__ import annotations

import os
from array import array
from typing import Any

from . import _cancel
from ._errors import BrokenResourceError
from ._semlock import EOWNERDEAD, MUTEX_BYTES, NamedSemaphore, RobustMutex
from ._shm import Segment

__all__ = ["BATCH", "HEADER_BYTES", "Ring"]

# Header fields (int64 indices; the mutex takes the first 64 bytes). JOURNALED fields are
# copied to the journal; the journal word (JW_*) and VALID are not.
HEAD, TAIL, PUTS, GETS, SPILLED, DONE, STATE, BROKEN = range(8, 16)
GETTERS, PUTTERS, JOINERS = 16, 18, 20  # waiting count at i, pending tokens at i + 1
SP_FIRST, SP_LAST, SP_READ, SP_USED, SP_SIZE = range(22, 27)  # spill chain (_queue_feeder)
SLEEPERS = 27  # waiting threads of all channels: the hot paths read this one word
FIELDS_END = 28
JW_POS, JW_VAL, VALID = 29, 30, 31
JOURNAL = 32  # the journal: a copy of fields [HEAD, FIELDS_END)
HEADER_BYTES = 512
ALIVE, SHUTDOWN, IMMEDIATE = 0, 1, 2

#: A frame length field at or above this marks a batch frame (payload ``len - BATCH`` bytes).
BATCH = 1 << 62
#: Bytes of a batch payload before its item lengths: ``n``, ``taken``, (unused).
BATCH_HEADER = 24
#: A batch's ``taken`` word: items in the low bits, pickle bytes above them.
TAKEN_BITS = 17
TAKEN_MASK = (1 << TAKEN_BITS) - 1

#: Polls before a blocking wait (a few microseconds).
SPIN = 100
#: Seconds even a non-blocking call waits for a contended mutex.
MUTEX_GRACE = 0.05

#: A frame not yet in the ring: (payload, length field, number of items).
Frame = tuple[bytes, int, int]
#: What readers take out: ``(bytes, length field, False)`` for one item; ``(bytes, item
#: lengths, padded)`` for several: a batch's pickles back to back (not padded), or a run of
#: single frames, each still ``[len][pickle][pad to 8]`` (padded).
Chunk = tuple[bytes, "int | array[int]", bool]

_FIELDS = slice(8 * HEAD, 8 * FIELDS_END)
_JOURNAL = slice(8 * JOURNAL, 8 * (JOURNAL + FIELDS_END - HEAD))


def frame_bytes(length: int) -> int:
    """Ring bytes taken by a frame whose length field is ``length``."""
    n = length - BATCH if length >= BATCH else abs(length)
    return 8 + ((n + 7) & -8)


class _Frames:
    """The frames of a ring: writing, reading, counting them (mutex held). :class:`Ring`
    adds the mutex, its repair and the wake-up channels."""

    __slots__ = ()

    hq: memoryview
    rq: memoryview
    buf: memoryview
    capacity: int
    mask: int

    def ring_items(self) -> int:
        """Count the items in the ring by walking its frames (mutex held)."""
        hq, rq, mask = self.hq, self.rq, self.mask
        head, tail, n = hq[HEAD], hq[TAIL], 0
        while head < tail:
            length = rq[(head & mask) >> 3]
            if length >= BATCH:
                payload = head + 8
                taken = rq[((payload + 8) & mask) >> 3] & TAKEN_MASK
                n += rq[(payload & mask) >> 3] - taken
            else:
                n += 1
            head += frame_bytes(length)
        return n

    def count(self) -> int:
        """Items in the ring (not in spill segments)."""
        hq = self.hq
        return int(hq[PUTS] - hq[GETS] - hq[SPILLED])

    def _journal_word(self, index: int) -> None:
        """Save ring word ``index`` before its first change in a journaled section."""
        hq = self.hq
        if hq[VALID] and hq[JW_POS] < 0:
            hq[JW_VAL] = self.rq[index]
            hq[JW_POS] = index

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
        hq[TAIL] = tail + 8 + ((n + 7) & -8)  # publishes the frame

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
            hq[TAIL] = 0  # empty: restart at the front; tail first (see recover())
            hq[HEAD] = 0
        else:
            hq[HEAD] = head

    def read(self) -> tuple[bytes, int]:
        """Remove the oldest item: its bytes and length field (``gets`` is the caller's)."""
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
        """Remove up to ``max_items`` of the oldest items; update ``gets`` (mutex held).

        Runs of single in-ring frames are copied out in one slice (the reader splits them),
        and a batch frame in one or two: the cost is per lock round, not per item.
        """
        hq, rq, mask = self.hq, self.rq, self.mask
        count = self.count()
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
        hq[GETS] += got
        return chunks, got

    def _take_batch(self, pos: int, length: int, want: int) -> tuple[bytes, array[int]]:
        """Take up to ``want`` items from the front of the batch frame at ``pos``."""
        rq, mask = self.rq, self.mask
        payload = pos + 8
        n = rq[(payload & mask) >> 3]
        at_taken = ((payload + 8) & mask) >> 3
        word = rq[at_taken]
        taken, skip = word & TAKEN_MASK, word >> TAKEN_BITS
        k = min(n - taken, want)
        lens = array("q")
        lens.frombytes(self.copy(payload + BATCH_HEADER + 8 * taken, 8 * k))
        size = sum(lens)
        data = self.copy(payload + BATCH_HEADER + 8 * n + skip, size)
        if taken + k == n:
            self._advance(self.hq[HEAD] + frame_bytes(length))
        else:
            self._journal_word(at_taken)
            rq[at_taken] = (taken + k) | ((skip + size) << TAKEN_BITS)  # one store
        return data, lens

    def drop_ring(self) -> list[bytes]:
        """Empty the ring; return the out-of-band names to unlink after the unlock."""
        hq, rq, mask = self.hq, self.rq, self.mask
        head, tail = hq[HEAD], hq[TAIL]
        names = []
        while head < tail:
            length = rq[(head & mask) >> 3]
            if length < 0:
                names.append(self.copy(head + 8, -length))
            head += frame_bytes(length)
        hq[TAIL] = 0
        hq[HEAD] = 0
        return names


class Ring(_Frames):
    """A mapped ring plus its semaphores; the methods marked *mutex held* expect the lock."""

    __slots__ = (
        "buf",
        "capacity",
        "fields",
        "getters",
        "hq",
        "joiners",
        "journal_copy",
        "mask",
        "mref",
        "mutex",
        "prefix",
        "putters",
        "rq",
        "segment",
        "spills",
        "trylock",
        "unlock_raw",
    )

    def __init__(
        self,
        segment: Segment,
        sems: tuple[NamedSemaphore, ...],
        prefix: str,
        *,
        create: bool = False,
    ) -> None:
        self.segment, self.prefix = segment, prefix
        self.getters, self.putters, self.joiners = sems
        self.capacity = segment.size - HEADER_BYTES
        self.mask = self.capacity - 1
        self.mutex = RobustMutex(segment.buf[:MUTEX_BYTES], create=create)
        self.hq = segment.buf[:HEADER_BYTES].cast("q")
        self.fields = segment.buf[_FIELDS]
        self.journal_copy = segment.buf[_JOURNAL]
        self.buf = segment.buf[HEADER_BYTES : HEADER_BYTES + self.capacity]
        self.rq = self.buf.cast("q")
        # The hot paths call the C functions directly: a method call would add a third.
        self.trylock, self.unlock_raw, self.mref = (
            self.mutex.trylock_fn,
            self.mutex.unlock_fn,
            self.mutex.ref,
        )
        self.spills: dict[int, Any] = {}  # spill segments mapped here (_queue_feeder)
        if create:
            self.hq[SP_FIRST], self.hq[SP_LAST] = 1, 0  # no spill segment

    @property
    def sems(self) -> tuple[NamedSemaphore, ...]:
        return (self.getters, self.putters, self.joiners)

    # -- the mutex -------------------------------------------------------------------------

    def lock(self, timeout: float | None) -> bool:
        """Take the mutex within ``timeout`` seconds and open the journal.

        A dead owner's half-done update is repaired first (see the module docstring).
        Raises :class:`BrokenResourceError` if that was impossible, now or before.
        """
        rc = self.trylock(self.mref)
        if rc and not self._wait(rc, timeout):
            return False
        if self.hq[BROKEN]:
            self.unlock_raw(self.mref)
            raise BrokenResourceError(
                f"the queue's internal state was left broken by process {self.hq[BROKEN]}"
            )
        self.journal()
        return True

    def _wait(self, rc: int, timeout: float | None) -> bool:
        if rc == EOWNERDEAD:
            self.recover()
            return True
        for _ in range(SPIN):
            rc = self.trylock(self.mref)
            if rc == 0:
                return True
            if rc == EOWNERDEAD:
                self.recover()
                return True
        mutex = self.mutex

        def attempt(step: float | None) -> bool:
            rc = mutex.timedlock(1e9 if step is None else step)
            if rc == EOWNERDEAD:
                self.recover()
                return True
            if rc and rc not in (16, 110):  # neither EBUSY nor ETIMEDOUT
                raise BrokenResourceError(f"the queue's internal lock failed (error {rc})")
            return rc == 0

        # A live holder keeps the mutex for microseconds: even a non-blocking call waits a
        # little for it rather than report a spurious Full/Empty.
        wait = None if timeout is None else max(timeout, MUTEX_GRACE)
        return _cancel.block(attempt, wait)

    def unlock(self) -> None:
        """Close the journal and release the mutex."""
        self.hq[VALID] = 0
        self.unlock_raw(self.mref)

    def journal(self) -> None:
        """Save the fields, so that a death before :meth:`unlock` can be rolled back."""
        hq = self.hq
        hq[JW_POS] = -1
        self.journal_copy[:] = self.fields
        hq[VALID] = 1

    def rollback(self) -> None:
        """Undo the journaled section in progress and release the mutex (on an error)."""
        self._restore()
        self.unlock()

    def _restore(self) -> None:
        hq = self.hq
        if hq[JW_POS] >= 0:
            self.rq[hq[JW_POS]] = hq[JW_VAL]
        self.fields[:] = self.journal_copy
        hq[VALID] = 0

    def recover(self) -> None:
        """Repair what a holder that died left (mutex held, owner dead); see the docstring."""
        hq = self.hq
        try:
            if hq[VALID]:
                self._restore()
            else:
                if hq[HEAD] > hq[TAIL]:  # died resetting an emptied ring: tail was first
                    hq[HEAD] = 0
                missing = self.ring_items() - (hq[PUTS] - hq[GETS] - hq[SPILLED])
                if missing > 0:  # a put published its frame, not its count
                    hq[PUTS] += missing
                elif missing < 0:  # a get took its item, did not count it
                    hq[GETS] -= missing
        except Exception as exc:
            hq[BROKEN] = os.getpid()
            self.mutex.consistent()
            self.unlock_raw(self.mref)
            raise BrokenResourceError("cannot repair the queue after a process died") from exc
        self.mutex.consistent()

    def spin_until_items(self) -> bool:
        """Poll (without the mutex) briefly; True once the ring may hold an item.

        A consumer that would sleep on a semaphore first spins a few microseconds: when the
        producer is busy on another core, the next item is almost always that close, and a
        futex sleep plus wake-up costs far more.
        """
        hq = self.hq
        return any(hq[TAIL] != hq[HEAD] or hq[STATE] or hq[SPILLED] for _ in range(SPIN))

    # -- waiting (mutex held on entry and on normal return; released if it raises) ---------

    def park(self, channel: int, sem: NamedSemaphore, timeout: float | None) -> None:
        """Register on ``channel``, sleep on ``sem`` up to ``timeout``, re-take the mutex."""
        hq = self.hq
        hq[channel] += 1
        hq[SLEEPERS] += 1
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
        hq[SLEEPERS] -= 1
        if got:
            if hq[channel + 1] > 0:  # not a stray token of a rolled-back section
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
