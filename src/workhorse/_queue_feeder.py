"""Spill segments: where a queue keeps what does not fit its ring (see :mod:`._queue`).

An unbounded ``put`` never blocks, a bounded one waits only for a free item place, and what
either accepted must survive its producer (item 2 of the queue robustness issue: a
process-local backlog died with its process). So frames that
do not fit the ring go to *spill segments*: shared memory named after the queue
(``<queue prefix>-s<seq>``), chained by sequence number in the ring's header::

    ring header: SP_FIRST .. SP_LAST   the segments in use (none when FIRST > LAST)
                 SP_READ               next frame to move, in segment FIRST
                 SP_USED, SP_SIZE      bytes written to / size of segment LAST
                 SPILLED               items in the chain
    segment:     [family][end][frame][frame]...   (frames as in the ring; ``end`` is set
                                                   when the next segment is started)

* Order: while anything is spilled, every put appends to the chain, and frames
  move from the front of the chain to the ring's tail; so the queue stays FIFO (per
  producer, and overall).
* Anyone holding the mutex moves frames into the ring when there is room: a consumer that
  finds the ring empty (so a queue whose producers all died is still drained), and the
  producer's *feeder thread*, which waits for room as consumers free it.
* A spill update is journaled like every slow path (:mod:`._ring`): a producer killed in
  the middle of it never returned from ``put``, and the chain is as before. Segment names
  follow from the sequence number, so a segment left by a rolled-back update is simply
  overwritten; segments leave ``/dev/shm`` after the unlock that retired them.
* Each segment is registered with its creator's resource tracker (its id is in the
  segment's first word) and unregistered by the process that unlinks it.
"""

from __future__ import annotations

import _posixshmem
import mmap
import os
import struct
import threading
import weakref

from ._queue_codec import discard_oob
from ._ring import (
    BATCH,
    GETTERS,
    PUTTERS,
    SP_FIRST,
    SP_LAST,
    SP_READ,
    SP_SIZE,
    SP_USED,
    SPILLED,
    Frame,
    Ring,
    frame_bytes,
)
from ._sharing import forget, forget_surely, register, remove

__all__ = [
    "Feeder",
    "drop_spill",
    "refill",
    "retire",
    "spill",
    "start_feeder",
    "unlink_prefixed",
]

_DATA = 16  # a segment's frames start after its family and end words
_WORD = struct.Struct("<q")


def _name(ring: Ring, seq: int) -> str:
    return f"{ring.prefix}-s{seq}"


def _mapping(ring: Ring, seq: int) -> mmap.mmap:
    m = ring.spills.get(seq)
    if m is None:
        fd = _posixshmem.shm_open(_name(ring, seq), os.O_RDWR, mode=0o600)
        try:
            m = ring.spills[seq] = mmap.mmap(fd, 0)
        finally:
            os.close(fd)
    return m


def _create(ring: Ring, seq: int, size: int) -> mmap.mmap:
    name = _name(ring, seq)
    fam = register(name)  # before creating it: see _sharing
    # No O_EXCL: a segment of this number can only be the leftover of a rolled-back update.
    fd = _posixshmem.shm_open(name, os.O_RDWR | os.O_CREAT, mode=0o600)
    try:
        os.ftruncate(fd, 0)
        # Reserve the pages now: a full /dev/shm is then an OSError here (the put fails
        # whole), not a SIGBUS when a write through the mapping first touches a page.
        os.posix_fallocate(fd, 0, size)
        m = ring.spills[seq] = mmap.mmap(fd, size)
    except BaseException:
        _posixshmem.shm_unlink(name)
        forget(name, fam=fam)
        raise
    finally:
        os.close(fd)
    _WORD.pack_into(m, 0, fam)
    return m


def spill(ring: Ring, frames: list[Frame]) -> None:
    """Append ``frames`` to the spill chain (mutex held, journaled)."""
    hq = ring.hq
    for data, length, items in frames:
        size = frame_bytes(length)
        if hq[SP_FIRST] > hq[SP_LAST] or hq[SP_USED] + size > hq[SP_SIZE]:
            if hq[SP_FIRST] <= hq[SP_LAST]:  # close the current last segment
                _WORD.pack_into(_mapping(ring, hq[SP_LAST]), 8, hq[SP_USED])
            seq, seg_size = hq[SP_LAST] + 1, max(ring.capacity, _DATA + size)
            _create(ring, seq, seg_size)
            if hq[SP_FIRST] > hq[SP_LAST]:
                hq[SP_FIRST], hq[SP_READ] = seq, _DATA
            hq[SP_LAST], hq[SP_USED], hq[SP_SIZE] = seq, _DATA, seg_size
        m, at = _mapping(ring, hq[SP_LAST]), hq[SP_USED]
        _WORD.pack_into(m, at, length)
        m[at + 8 : at + 8 + len(data)] = data
        hq[SP_USED] = at + size
        hq[SPILLED] += items


def refill(ring: Ring) -> list[int]:
    """Move spilled frames into the ring while they fit (mutex held, journaled).

    Returns the numbers of the segments emptied, for :func:`retire` after the unlock.
    """
    hq = ring.hq
    emptied: list[int] = []
    moved = 0
    while hq[SPILLED]:
        seq = hq[SP_FIRST]
        m, at = _mapping(ring, seq), hq[SP_READ]
        end = hq[SP_USED] if seq == hq[SP_LAST] else _WORD.unpack_from(m, 8)[0]
        if at >= end:  # the first segment is done: on to the next
            hq[SP_FIRST], hq[SP_READ] = seq + 1, _DATA
            emptied.append(seq)
            continue
        (length,) = _WORD.unpack_from(m, at)
        size = frame_bytes(length)
        if ring.room() < size:
            break
        n = length - BATCH if length >= BATCH else abs(length)
        items = _WORD.unpack_from(m, at + 8)[0] if length >= BATCH else 1
        ring.write(memoryview(m)[at + 8 : at + 8 + n], length)
        hq[SP_READ] = at + size
        hq[SPILLED] -= items
        moved += items
    if not hq[SPILLED] and hq[SP_FIRST] <= hq[SP_LAST]:
        emptied.extend(range(hq[SP_FIRST], hq[SP_LAST] + 1))
        hq[SP_FIRST] = hq[SP_LAST] + 1
    if moved:
        ring.wake(GETTERS, ring.getters, moved)
    return emptied


def drop_spill(ring: Ring) -> tuple[list[bytes], list[int]]:
    """Empty the chain (mutex held): out-of-band names and segments to remove after unlock."""
    hq = ring.hq
    names: list[bytes] = []
    if hq[SP_FIRST] > hq[SP_LAST]:
        return names, []
    for seq in range(hq[SP_FIRST], hq[SP_LAST] + 1):
        m = _mapping(ring, seq)
        at = hq[SP_READ] if seq == hq[SP_FIRST] else _DATA
        end = hq[SP_USED] if seq == hq[SP_LAST] else _WORD.unpack_from(m, 8)[0]
        while at < end:
            (length,) = _WORD.unpack_from(m, at)
            if length < 0:
                names.append(bytes(m[at + 8 : at + 8 - length]))
            at += frame_bytes(length)
    seqs = list(range(hq[SP_FIRST], hq[SP_LAST] + 1))
    hq[SP_FIRST], hq[SPILLED] = hq[SP_LAST] + 1, 0
    return names, seqs


def retire(ring: Ring, seqs: list[int], oob: list[bytes] | None = None) -> None:
    """Unlink emptied segments (and dropped out-of-band items): after the unlock."""
    for name in oob or ():
        discard_oob(name)
    for seq in seqs:
        m = ring.spills.pop(seq, None)
        if m is not None:
            m.close()
        _unlink_spill(_name(ring, seq))


def _unlink_spill(name: str) -> None:
    try:  # the family it was registered with is in its first word
        fd = _posixshmem.shm_open(name, os.O_RDONLY, mode=0o600)
    except OSError:
        return
    try:
        (fam,) = _WORD.unpack(os.pread(fd, 8, 0).ljust(8, b"\0"))
        _posixshmem.shm_unlink(name)
    except OSError:
        return
    finally:
        os.close(fd)
    if fam:
        forget(name, fam=fam)
    else:  # its creator was killed before writing its family: maybe it registered it
        forget_surely(name)


def unlink_prefixed(prefix: str, ring: Ring | None = None) -> None:
    """Unlink every segment named with the queue's ``prefix`` (its creator, at the end).

    A producer killed while starting spill segment ``SP_LAST + 1`` may have registered its
    name without creating it (the update was rolled back): that name is forgotten too.
    """
    start = prefix.lstrip("/") + "-"
    try:
        names = [n for n in os.listdir("/dev/shm") if n.startswith(start)]
    except OSError:
        return
    for name in names:
        if name[len(start) :].startswith("s") and name[len(start) + 1 :].isdigit():
            _unlink_spill("/" + name)
        else:
            remove(name)
    if ring is not None:
        following = _name(ring, ring.hq[SP_LAST] + 1)
        if following.lstrip("/") not in names:
            forget_surely(following)


# -- the feeder thread ------------------------------------------------------------------------


class Feeder:
    """This process's thread that moves spilled frames into the ring as room appears.

    Not needed for correctness (consumers refill an empty ring themselves); it keeps the
    ring full while the producer lives, so that consumers rarely find it empty.
    """

    __slots__ = ("__weakref__", "closed", "cond", "ring", "thread")

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        self.cond = threading.Lock()
        self.thread: threading.Thread | None = None
        self.closed = False


def start_feeder(feeder: Feeder) -> None:
    """Start the feeder thread unless it runs (after a put spilled)."""
    from ._signals import start_quietly

    with feeder.cond:
        if feeder.closed or (feeder.thread is not None and feeder.thread.is_alive()):
            return
        feeder.thread = threading.Thread(
            target=_feed, args=(weakref.ref(feeder),), name="QueueFeederThread", daemon=True
        )
        start_quietly(feeder.thread)


#: Seconds the feeder sleeps between checks of ``closed`` (room wakes it sooner).
_NAP = 0.1


def _feed(feeder_ref: weakref.ref[Feeder]) -> None:
    while True:
        feeder = feeder_ref()
        if feeder is None or feeder.closed:
            return
        ring = feeder.ring
        del feeder
        try:
            ring.lock(None)
            held = True
            try:
                emptied = refill(ring)
                more = bool(ring.hq[SPILLED])
                if more:  # sleep until a get frees room (or a nap passes)
                    held = False  # park() re-takes the mutex, or raises without it
                    ring.park(PUTTERS, ring.putters, _NAP)
                    held = True
            finally:
                if held:
                    ring.unlock()
            retire(ring, emptied)
        except Exception:  # a broken ring: consumers will say so
            return
        if not more:
            return
