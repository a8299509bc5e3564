"""A pool's ``shared=`` data, delivered to each process worker once, not with every task.

Under ``fork`` nothing is copied: the object is put in a table of this process before the
pool forks its template and first workers, so every worker finds it in the memory it was
forked with (copy-on-write; a worker's writes stay in that worker).

Under ``spawn`` and ``forkserver`` it is pickled once, when the pool starts. Its large
buffers (a NumPy array's data, a ``PickleBuffer``: 64 KiB or more each) go out of band into
one shared-memory segment, which every worker maps read-only, so a 1 GB array costs the
machine 1 GB however many workers read it, and a worker starts without copying it. The
segment is unlinked the moment it is written: no name is left in ``/dev/shm`` for anyone to
leak. Workers receive a descriptor of it with their start-up arguments (multiprocessing's
``DupFd``, as it passes a worker's pipe), and the memory goes away when the pool and its
last worker have closed theirs. Arrays rebuilt on it are read-only (``writeable=False``).

Example::

    shared = SharedData(big_array, start_method="spawn")
    handle = shared.handle()      # a worker's start-up argument
    ...                           # in the worker: load(handle) is an array on the mapping
    shared.close()
"""

from __future__ import annotations

import itertools
import mmap
import os
import pickle
from multiprocessing import reduction
from typing import Any

from ..._serialize import dumps_out_of_band
from ..._sharing import create_shm, owner_prefix, unlink_shm

__all__ = ["OUT_OF_BAND", "SharedData", "load"]

#: Buffers of at least this many bytes go to the shared segment; smaller ones stay in the
#: pickle stream (copying them into each worker costs less than a page of mapping).
OUT_OF_BAND = 64 * 1024
_ALIGN = 64  # each buffer starts on a cache line (and on NumPy's strictest alignment)

# fork: token -> the shared object, inherited by the template and the workers.
_inherited: dict[int, Any] = {}
_tokens = itertools.count(1)


class _Inherited:
    """A fork worker's handle: the key of the object in the table it was forked with."""

    __slots__ = ("token",)

    def __init__(self, token: int) -> None:
        self.token = token

    def __reduce__(self) -> tuple[Any, ...]:  # to a template's child: still just the key
        return (_Inherited, (self.token,))


class _Mapped:
    """A spawn/forkserver worker's handle: the pickle stream, the layout of its buffers in
    the segment, and the segment's descriptor (duplicated into the child when pickled)."""

    __slots__ = ("fd", "layout", "size", "stream")

    def __init__(self, fd: int, size: int, layout: list[tuple[int, int]], stream: bytes) -> None:
        self.fd, self.size, self.layout, self.stream = fd, size, layout, stream

    def __reduce__(self) -> tuple[Any, ...]:
        # DupFd: the fd travels with the process object (spawn, forkserver, a template).
        fd: Any = reduction.DupFd(self.fd) if self.size else None
        return (_rebuild, (fd, self.size, self.layout, self.stream))


def _rebuild(fd: Any, size: int, layout: list[tuple[int, int]], stream: bytes) -> _Mapped:
    return _Mapped(fd.detach() if fd is not None else -1, size, layout, stream)


class SharedData:
    """The parent's side of one pool's ``shared=`` object (see the module docstring).

    Raises the ``SerializationError`` of an unpicklable task argument, naming ``shared``,
    when the object must be pickled and cannot be.
    """

    def __init__(self, obj: Any, *, start_method: str, main_by_value: bool = False) -> None:
        self.obj = obj
        self._token: int | None = None
        self._fd = -1
        if start_method == "fork":
            self._token = next(_tokens)
            _inherited[self._token] = obj
            self._handle: _Inherited | _Mapped = _Inherited(self._token)
            return
        stream, raws = dumps_out_of_band(
            obj, OUT_OF_BAND, what="shared", main_by_value=main_by_value
        )
        layout, size = [], 0
        for raw in raws:
            layout.append((size, raw.nbytes))
            size += -(-raw.nbytes // _ALIGN) * _ALIGN
        if raws:
            self._fd = _write(raws, layout, size)
        self._handle = _Mapped(self._fd, size, layout, stream)

    def handle(self) -> object:
        """What a worker gets among its start-up arguments; :func:`load` turns it back."""
        return self._handle

    def close(self) -> None:
        """The pool is done: drop this process's reference (workers keep their mapping)."""
        if self._token is not None:
            _inherited.pop(self._token, None)
            self._token = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def load(handle: object) -> Any:
    """The shared object, in a worker (``handle`` from :meth:`SharedData.handle`)."""
    if isinstance(handle, _Inherited):
        return _inherited[handle.token]
    assert isinstance(handle, _Mapped)
    if not handle.size:
        return pickle.loads(handle.stream)
    try:
        mapping = mmap.mmap(handle.fd, handle.size, access=mmap.ACCESS_READ)
    finally:
        os.close(handle.fd)
    view = memoryview(mapping)
    buffers = [view[offset : offset + length] for offset, length in handle.layout]
    return pickle.loads(handle.stream, buffers=buffers)


def _write(raws: list[memoryview], layout: list[tuple[int, int]], size: int) -> int:
    """One unlinked segment holding ``raws`` at ``layout``; its read-write descriptor."""
    name, fd = create_shm(owner_prefix("s"))
    try:
        unlink_shm(name)  # from here on it lives as long as a descriptor or mapping does
        os.ftruncate(fd, size)
        for raw, (offset, length) in zip(raws, layout, strict=True):
            done = 0
            while done < length:  # pwrite is capped near 2 GiB per call (see _zerocopy)
                done += os.pwrite(fd, raw[done:], offset + done)
    except BaseException:
        os.close(fd)
        raise
    return fd
