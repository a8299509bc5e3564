"""Named shared-memory segments that any process can map by name.

Written on ``_posixshmem`` and ``mmap`` instead of :class:`multiprocessing.shared_memory
.SharedMemory` because, before 3.13, *attaching* to a segment registers it with the resource
tracker, which then unlinks it (with a "leaked shared_memory" warning) when the attaching
process exits -- the segment must outlive its readers. Here only the creator registers it,
before creating it, under a name that says who owns it (see :mod:`._sharing`).
"""

from __future__ import annotations

import _posixshmem
import mmap
import os
import weakref

from ._sharing import forget, new_name, owner_prefix, unlink_shm

__all__ = ["Segment"]


def _unlink(name: str, creator: int) -> None:
    if os.getpid() != creator:
        return
    unlink_shm(name)


class Segment:
    """A mapped shared-memory segment; ``buf`` is a writable memoryview of ``size`` bytes.

    The creator unlinks it when its ``Segment`` is garbage collected or :meth:`unlink` is
    called (the resource tracker does it if the creator is killed). Other processes map it
    with :meth:`attach`.

    Example::

        seg = Segment.create(4096)
        other = Segment.attach(seg.name)   # in any process
        other.buf[0] = 1
    """

    __slots__ = ("__weakref__", "_finalizer", "_mmap", "buf", "name", "size")

    def __init__(self, name: str, size: int, *, create: bool) -> None:
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        try:
            fd = _posixshmem.shm_open(name, flags, mode=0o600)
        except BaseException:
            if create:
                forget(name)
            raise
        try:
            if create:
                os.ftruncate(fd, size)
            else:
                size = os.fstat(fd).st_size
            self._mmap = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.name, self.size = name, size
        self.buf = memoryview(self._mmap)
        self._finalizer: weakref.finalize[..., Segment] | None = None
        if create:
            self._finalizer = weakref.finalize(self, _unlink, name, os.getpid())

    @classmethod
    def create(cls, size: int, prefix: str = "wh") -> Segment:
        """Create and map a new zero-filled segment of ``size`` bytes.

        ``prefix`` ``"wh"`` or ``"wh-<kind>"`` names its kind; the name also says who owns
        it (see :mod:`._sharing`).
        """
        kind = prefix.removeprefix("wh").lstrip("-") or "s"
        return cls(new_name(owner_prefix(kind)), max(1, size), create=True)

    @classmethod
    def attach(cls, name: str) -> Segment:
        """Map an existing segment by name (``FileNotFoundError`` if it is gone)."""
        return cls(name, 0, create=False)

    def unlink(self) -> None:
        """Remove the name now (the creator only); mappings stay valid until closed."""
        if self._finalizer is not None:
            self._finalizer()
        else:
            unlink_shm(self.name)

    def close(self) -> None:
        """Unmap this process's view (views taken from ``buf`` must be released first)."""
        self.buf.release()
        self._mmap.close()
