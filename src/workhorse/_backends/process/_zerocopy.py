"""Large buffers across processes through shared memory, without pickling their bytes.

Pickle protocol 5 hands every contiguous buffer (a NumPy array's data, a ``PickleBuffer``) to
a ``buffer_callback`` instead of copying it into the stream. :func:`pack` copies each such
buffer of at least ``threshold`` bytes once into its own POSIX shared-memory segment and sends
only the segment's name; :func:`unpack` maps the segment and gives the unpickler a memoryview
of the mapping, so the rebuilt arrays are views on it: no copy, no pickling of the data.

Why these choices:

* **Writes use ``pwrite``, not a mapping.** On Linux a fresh tmpfs page costs an allocation
  and, if written through a mapping, a page fault and a page-table entry. ``pwrite`` skips the
  faults: measured 60-70 ms for 100 MB against 100-125 ms for ``mmap`` slice assignment,
  ``np.copyto``, ``MAP_POPULATE`` or ``madvise`` (tmpfs gets no transparent huge pages).
* **Readers unlink at once.** Linux keeps an unlinked segment alive until its last mapping
  goes, so the memory lives exactly as long as the arrays on it and a reader that crashes
  later leaks nothing. A name is therefore visible in /dev/shm only between :func:`pack` and
  :func:`unpack`; if the message is never read, the sender calls :func:`discard`, and a
  parent whose worker died calls :func:`sweep` with the prefix it gave that worker.
* **Registered before they exist.** Each name is registered with the sender's resource
  tracker before the segment is created, and unregistered by whichever process unlinks it
  (see :mod:`workhorse._sharing`), so segments of a family killed mid-transfer (SIGKILL or
  SIGTERM of the parent, say) are removed by the tracker once the family is gone.
* **One segment per buffer,** so each array's memory is freed when that array dies.
* **Replies go back by reference.** ``pack(args, hold=True)`` keeps a descriptor of each
  segment open in the sender. A worker that returns (a slice of) an argument it received
  packs it with ``reply_to=<the message it unpacked>``: the buffer becomes a reference into
  the held segment instead of a second copy, and the sender maps its own descriptor. Without
  it the result would be copied again (another 60-110 ms for 100 MB, twice the page faults).
  The price is aliasing: the result shares memory with the worker's argument, which matters
  only if the worker keeps the argument and writes to it after returning.
* **No segments, no cost:** such a message is the bare pickle stream.

Message: ``b"WZ"``, a count, one ``(kind, size, offset, name)`` entry per out-of-band buffer,
then the pickle stream. Readonly-ness travels in the stream (``READONLY_BUFFER``).
"""

from __future__ import annotations

import _posixshmem
import mmap
import os
import pickle
import struct
import weakref
from collections.abc import Iterable
from typing import Any

from ..._serialize import dumps_out_of_band
from ..._sharing import create_shm, owner_prefix, unlink_shm

__all__ = ["discard", "make_prefix", "pack", "sweep", "unpack"]

_MAGIC = b"WZ"
_COUNT = struct.Struct("<I")
_ENTRY = struct.Struct("<BQQH")  # kind, size, offset, name length
_FRESH, _HELD, _REF = 0, 1, 2  # HELD: fresh, and its sender keeps it open for replies
_SHM_DIR = "/dev/shm"

# Segments packed with hold=True: name -> open descriptor, until discard().
_held: dict[str, int] = {}
# Held segments this process mapped in unpack: name -> (mapping, its address), so that a
# reply can recognise a buffer lying inside one.
_mapped: dict[str, tuple[weakref.ref[mmap.mmap], int]] = {}


def _forget_held_in_child() -> None:
    # A forked child would otherwise pin the parent's held segments until it exits.
    for fd in _held.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


os.register_at_fork(after_in_child=_forget_held_in_child)


def make_prefix(*tags: object) -> str:
    """``wh-<pid>-<ns>.<start>-z-<tags>-``: this process owns the segments named with it."""
    return "-".join([owner_prefix("z"), *map(str, tags)]) + "-"


def pack(
    obj: object,
    *,
    prefix: str,
    threshold: int = 1 << 20,
    what: str = "object",
    main_by_value: bool = False,
    hold: bool = False,
    reply_to: bytes | bytearray | memoryview | None = None,
) -> tuple[bytes, list[str]]:
    """Pickle ``obj``; buffers of ``threshold`` bytes or more go to new shm segments.

    Returns the message and the names of the segments created, which the caller must
    :func:`discard` if the message will never be unpacked. ``what``/``main_by_value`` are as in
    :func:`workhorse._serialize.dumps`. ``hold`` keeps the segments open here until
    :func:`discard`, so that replies can refer to them; ``reply_to`` is a message this process
    unpacked whose held segments the buffers of ``obj`` may point into (they are then sent as
    references, not copied).
    """
    if not prefix.startswith("wh-"):
        raise ValueError(f"shared-memory prefix must start with 'wh-', not {prefix!r}")
    stream, raws = dumps_out_of_band(obj, threshold, what=what, main_by_value=main_by_value)
    if not raws:
        return stream, []
    targets = _held_targets(reply_to) if reply_to is not None else []
    parts = [_MAGIC, _COUNT.pack(len(raws))]
    created: list[str] = []
    try:
        for raw in raws:
            ref = _find_ref(raw, targets) if targets else None
            if ref is not None:
                name, offset = ref
                kind = _REF
            else:
                name, offset = _write(raw, prefix, hold, created), 0
                kind = _HELD if hold else _FRESH
            encoded = name.encode()
            parts += [_ENTRY.pack(kind, raw.nbytes, offset, len(encoded)), encoded]
    except BaseException:
        discard(created)
        raise
    parts.append(stream)
    return b"".join(parts), created


def unpack(data: bytes | bytearray | memoryview) -> Any:
    """Rebuild an object from :func:`pack`; its large buffers are views on shared memory.

    Every segment named in the message is unlinked, even if unpacking fails.
    """
    if data[:2] != _MAGIC:
        return pickle.loads(data)
    entries, start = _parse(data)
    fds: dict[str, int] = {}
    try:
        for kind, _, _, name in entries:
            if kind != _REF:
                fds[name] = _posixshmem.shm_open(name, os.O_RDWR, mode=0o600)
    finally:
        for kind, _, _, name in entries:
            if kind != _REF:
                _unlink(name)
    buffers: list[memoryview] = []
    try:
        for kind, size, offset, name in entries:
            if kind == _REF:
                fd = _held.get(name)
                if fd is None:
                    raise RuntimeError(f"reply refers to segment {name}, already discarded")
                buffers.append(memoryview(mmap.mmap(fd, 0))[offset : offset + size])
                continue
            mapping = mmap.mmap(fds[name], size)  # mmap keeps a dup of the descriptor
            if kind == _HELD:
                _remember(name, mapping)
            buffers.append(memoryview(mapping))
    finally:
        for fd in fds.values():
            os.close(fd)
    return pickle.loads(memoryview(data)[start:], buffers=buffers)


def discard(names: Iterable[str]) -> None:
    """Unlink segments whose message will never be unpacked, and drop held descriptors.

    Idempotent; names already gone are ignored.
    """
    for name in names:
        _unlink(name)
        fd = _held.pop(name, None)
        if fd is not None:
            os.close(fd)


def sweep(prefix: str) -> int:
    """Unlink every segment whose name starts with ``prefix``; return how many."""
    if not prefix.startswith("wh-"):
        raise ValueError(f"shared-memory prefix must start with 'wh-', not {prefix!r}")
    try:
        entries = os.listdir(_SHM_DIR)
    except FileNotFoundError:
        return 0
    return sum(_unlink("/" + entry) for entry in entries if entry.startswith(prefix))


def _write(raw: memoryview, prefix: str, hold: bool, created: list[str]) -> str:
    name, fd = create_shm(prefix.rstrip("-"))
    created.append(name)
    try:
        os.ftruncate(fd, raw.nbytes)
        done, total = 0, raw.nbytes
        while done < total:  # pwrite is capped near 2 GiB per call
            done += os.pwrite(fd, raw[done:], done)
    except BaseException:
        os.close(fd)
        raise
    if hold:
        _held[name] = fd
    else:
        os.close(fd)
    return name


def _unlink(name: str) -> bool:
    return unlink_shm(name)


def _parse(data: bytes | bytearray | memoryview) -> tuple[list[tuple[int, int, int, str]], int]:
    view = memoryview(data)
    (count,) = _COUNT.unpack_from(view, len(_MAGIC))
    position = len(_MAGIC) + _COUNT.size
    entries = []
    for _ in range(count):
        kind, size, offset, length = _ENTRY.unpack_from(view, position)
        position += _ENTRY.size
        entries.append((kind, size, offset, bytes(view[position : position + length]).decode()))
        position += length
    return entries, position


def _address(buffer: memoryview | mmap.mmap) -> int | None:
    import ctypes

    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    except TypeError:  # readonly: ctypes will not export it, NumPy will tell us
        interface = getattr(getattr(buffer, "obj", None), "__array_interface__", None)
        return int(interface["data"][0]) if interface else None


def _remember(name: str, mapping: mmap.mmap) -> None:
    address = _address(mapping)
    if address is not None:

        def forget(_: object) -> None:
            _mapped.pop(name, None)

        _mapped[name] = (weakref.ref(mapping, forget), address)


def _held_targets(reply_to: bytes | bytearray | memoryview) -> list[tuple[str, int, int]]:
    """(name, address, size) of the live mappings of ``reply_to``'s held segments."""
    if reply_to[:2] != _MAGIC:
        return []
    targets = []
    for kind, size, _, name in _parse(reply_to)[0]:
        entry = _mapped.get(name) if kind == _HELD else None
        if entry is not None and entry[0]() is not None:
            targets.append((name, entry[1], size))
    return targets


def _find_ref(raw: memoryview, targets: list[tuple[str, int, int]]) -> tuple[str, int] | None:
    address = _address(raw)
    if address is None:
        return None
    for name, base, size in targets:
        if base <= address and address + raw.nbytes <= base + size:
            return name, address - base
    return None
