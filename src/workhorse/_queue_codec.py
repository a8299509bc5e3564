"""Items to ring frames and back, for the process-flavour queues (see :mod:`._queue`).

Everything here runs without the ring's mutex: pickling before a lock round, unpickling
after it. The frame kinds are described in :mod:`._ring`.

* One item: its pickle (``dumps``), or an out-of-band segment when the frame would exceed
  the queue's threshold (a quarter of the ring).
* ``put_many``: the items are pickled one by one (so that a reader can take any prefix of
  a batch) and joined into *batch frames* of at most ``threshold`` bytes: one ring write and
  one lock round for the whole batch. Items too large for the ring get their own frames.
* Objects that are themselves large buffers (``sys.getsizeof`` at least ``BIG``) avoid
  fresh memory: ``pickle.dumps`` grows its output by reallocation, and a megabyte buffer
  allocated and freed per item comes back from the kernel as new pages, faulted in one by
  one (measured 10-15x the cost of the copy). ``put`` pickles such an object into a
  per-thread scratch buffer that is reused, and ``get`` copies a large frame out of the ring
  into another, so the only large allocation left per item is the unpickled object itself.

Out-of-band segments are written with ``shm_open`` + ``write``. Their names start with the
queue's prefix ``wh-<creator>-q<uid>``: they belong to the queue, hence to its creator, from
``put`` until a reader unlinks them, so the clean-up after a dead putter leaves them alone,
and the creator unlinks unread ones when the queue dies. Each is registered with the putter's
resource tracker and unregistered by the process that unlinks it (see :mod:`._sharing`).
"""

from __future__ import annotations

import _posixshmem
import io
import mmap
import os
import pickle
import sys
import threading
from array import array
from itertools import repeat
from typing import Any

from ._ring import BATCH, BATCH_HEADER, Chunk, Frame
from ._serialize import PROTOCOL, dumps, loads
from ._sharing import create_shm, unlink_shm

__all__ = [
    "BIG",
    "borrow",
    "decode",
    "discard_frames",
    "discard_oob",
    "done_with",
    "encode",
    "encode_many",
    "give_back",
    "load",
    "pickle_one",
    "pickle_to_scratch",
    "store_oob",
]

#: Objects whose ``sys.getsizeof`` is at least this get the large-buffer treatment.
BIG = 1 << 17
#: Scratch buffers are kept only up to this size (larger items allocate as usual).
SCRATCH_MAX = 1 << 24
#: Batches keep at most this many items, so that a reader's lengths table stays small.
MAX_BATCH_ITEMS = 1 << 16

_dumps = pickle.dumps
_loads = pickle.loads
_getsizeof = sys.getsizeof


def store_oob(prefix: str, data: bytes) -> bytes:
    """Write ``data`` to a new out-of-band segment; return its name (the frame payload).

    The name starts with the queue's prefix: the item belongs to the queue (to its creator),
    not to the putting process, until a reader unlinks it.
    """
    name, fd = create_shm(prefix.lstrip("/"))
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
    unlink_shm(name.decode())


def discard_frames(frames: list[Frame]) -> None:
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
        unlink_shm(name)
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


def pickle_one(obj: object) -> bytes:
    """Pickle one queue item (C pickler, else cloudpickle, else ``SerializationError``)."""
    if _getsizeof(obj) >= BIG:
        try:
            out = io.BytesIO()
            pickle.Pickler(out, PROTOCOL).dump(obj)
            return out.getvalue()  # no copy: the BytesIO hands over its buffer
        except Exception:
            pass  # dumps() below retries, with cloudpickle, and names the error
    else:
        try:
            return _dumps(obj, PROTOCOL)
        except Exception:
            pass
    return dumps(obj, what="queue item")


class _Sink:
    """A pickler's output file writing into a reused ``bytearray`` (``size`` bytes valid)."""

    __slots__ = ("buf", "size")

    def __init__(self, buf: bytearray) -> None:
        self.buf, self.size = buf, 0

    def write(self, data: Any) -> int:
        view = memoryview(data)
        view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
        n = len(view)
        end = self.size + n
        if end > len(self.buf):
            self.buf.extend(bytes(end - len(self.buf)))
        # Through a memoryview: slice assignment to a bytearray copies its source first.
        with memoryview(self.buf) as target:
            target[self.size : end] = view
        self.size = end
        return n


# Per thread: "out" (put's pickles) and "in" (get's copies). A buffer is taken out while in
# use, so that a re-entrant call (an object whose pickling puts into a queue) gets its own.
_local = threading.local()


def pickle_to_scratch(obj: object) -> memoryview | None:
    """Pickle a large ``obj`` into a reused buffer; hand the view to :func:`done_with`.

    ``None`` if the C pickler refuses the object (the caller falls back to
    :func:`pickle_one`).
    """
    buf: bytearray | None = getattr(_local, "out", None)
    _local.out = None
    sink = _Sink(bytearray() if buf is None else buf)
    try:
        pickle.Pickler(sink, PROTOCOL).dump(obj)
    except Exception:
        return None
    return memoryview(sink.buf)[: sink.size]


def done_with(view: memoryview) -> None:
    """Give back the buffer behind a :func:`pickle_to_scratch` view."""
    buf = view.obj
    view.release()
    if isinstance(buf, bytearray) and len(buf) <= SCRATCH_MAX:
        _local.out = buf


def borrow(n: int) -> bytearray:
    """A read buffer of at least ``n`` bytes; hand it to :func:`give_back` after use."""
    buf: bytearray | None = getattr(_local, "in_", None)
    if buf is None or len(buf) < n:
        return bytearray(n)
    _local.in_ = None
    return buf


def give_back(buf: bytearray) -> None:
    """Keep a read buffer for the next large item (unless it is huge)."""
    if len(buf) <= SCRATCH_MAX:
        _local.in_ = buf


def encode(data: bytes, threshold: int, prefix: str) -> Frame:
    """The frame of one pickled item: in the ring, or out of band if it is too large."""
    if len(data) + 8 > threshold:
        name = store_oob(prefix, data)
        return name, -len(name), 1
    return data, len(data), 1


def encode_many(objs: list[object], threshold: int, prefix: str) -> list[Frame]:
    """Pickle ``objs`` into as few frames as possible (see the module docstring). On error
    no out-of-band segment is left."""
    if not objs:
        return []
    try:
        if max(map(_getsizeof, objs)) >= BIG:
            raise TypeError  # take the per-item path, which handles large buffers
        datas = list(map(_dumps, objs, repeat(PROTOCOL)))
    except Exception:
        datas = [pickle_one(obj) for obj in objs]
    lens = array("q", map(len, datas))
    total = BATCH_HEADER + 8 * len(datas) + sum(lens)
    if len(datas) > 1 and total + 8 <= threshold and len(datas) <= MAX_BATCH_ITEMS:
        return [_batch(datas, lens)]  # the common case: one batch frame
    return _frames(datas, lens, threshold, prefix)


def _batch(datas: list[bytes], lens: array[int]) -> Frame:
    if len(datas) == 1:
        return datas[0], lens[0], 1
    header = array("q", (len(datas), 0, 0))
    payload = b"".join([header.tobytes(), lens.tobytes(), *datas])
    return payload, BATCH + len(payload), len(datas)


def _frames(datas: list[bytes], lens: array[int], threshold: int, prefix: str) -> list[Frame]:
    # Consecutive in-ring items share batch frames of at most ``threshold`` bytes; an item
    # too large for the ring travels out of band in its own frame.
    frames: list[Frame] = []
    start, size = 0, BATCH_HEADER + 8
    try:
        for i, n in enumerate(lens):
            big = n + 8 > threshold
            if big or size + 8 + n > threshold or i - start >= MAX_BATCH_ITEMS:
                if i > start:
                    frames.append(_batch(datas[start:i], lens[start:i]))
                start, size = i, BATCH_HEADER + 8
            if big:
                name = store_oob(prefix, datas[i])
                frames.append((name, -len(name), 1))
                start = i + 1
            else:
                size += 8 + n
        if len(datas) > start:
            frames.append(_batch(datas[start:], lens[start:]))
    except BaseException:
        discard_frames(frames)
        raise
    return frames


def decode(chunks: list[Chunk]) -> list[Any]:
    """Unpickle what :meth:`Ring.take` returned, in order.

    If an item fails to unpickle, the error propagates and the out-of-band segments of the
    items after it are unlinked (the items taken are lost, as with any failing ``get``).
    """
    out: list[Any] = []
    append, loads = out.append, _loads
    done = 0
    try:
        for data, lens, padded in chunks:
            if isinstance(lens, int):
                append(loads(data) if lens >= 0 else load(data, lens))
            elif padded:  # a run of single frames: [len][pickle][pad] each
                view, at = memoryview(data), 8
                for n in lens:
                    append(loads(view[at : at + n]))
                    at += 8 + ((n + 7) & -8)
            else:
                view, at = memoryview(data), 0
                for n in lens:
                    end = at + n
                    append(loads(view[at:end]))
                    at = end
            done += 1
    except BaseException:
        for data, lens, _ in chunks[done + 1 :]:
            if isinstance(lens, int) and lens < 0:
                discard_oob(data)
        raise
    return out
