"""``Pipe`` and ``Connection``: multiprocessing's pipes that pickle lambdas and never hang.

A :class:`Connection` wraps a :class:`multiprocessing.connection.Connection` and keeps its
wire format, so it talks to stdlib connections. It adds:

* ``send`` pickles with :func:`workhorse._serialize.dumps`: lambdas and closures travel, and
  an object that cannot be pickled raises :class:`~workhorse.SerializationError` naming its
  type.
* ``recv(timeout=...)``/``recv_bytes(..., timeout=...)``: ``TimeoutError`` after ``timeout``
  seconds; cancel-aware (a cancelled task-group member wakes with ``Cancelled``).
* EOF instead of a hang when the peer is gone. The kernel reports EOF only once *every* copy
  of the peer end is closed, and the classic mistake -- the parent keeps its copy of the end
  it handed to a child -- makes ``recv()`` hang forever once the child died. So each end made
  by :func:`Pipe` remembers its peer (weakly), and a blocked ``recv``/``recv_bytes``/
  ``recv_bytes_into``/``poll`` of end *A* treats the peer end *B* as gone when all of this
  holds:

  1. *B* was handed to one or more child processes as a top-level argument of
     :meth:`workhorse.Process.start <workhorse._process.Process.start>`;
  2. every one of those processes has exited;
  3. since the last such hand-off, this process has not used *B* itself: no ``send*``,
     ``recv*``, ``poll`` or ``fileno`` on it, and no pickling of it (into a queue, to a
     pool ...), since that may hand it to a process nobody tracks;
  4. no complete message is waiting in *A*.

  Then ``recv`` raises ``EOFError`` (and ``poll`` returns True, so the next ``recv`` raises).
  The blocked call waits in slices of at most 0.1 s to notice a new hand-off, and wakes at
  once when a tracked process exits. A message the child sent before it died is still
  received first, and a message cut short by the child's death raises ``EOFError`` too.
  Ends that reached a process by pickling have no peer and rely on the kernel's EOF only.

Connections pickle at any time: while a child is being launched (as a ``Process`` argument
under spawn or forkserver) the file descriptor is passed with the launch; otherwise through
multiprocessing's resource sharer (``SCM_RIGHTS`` over a Unix socket, one background thread).
"""

from __future__ import annotations

import os
import struct
import weakref
from multiprocessing import connection as mpconn
from multiprocessing import reduction
from typing import Any, Protocol, Self

from . import _cancel
from ._serialize import dumps, loads
from ._timeouts import Deadline, queue_timeout, wait_timeout

__all__ = ["BufferTooShort", "Connection", "Pipe"]

BufferTooShort = mpconn.BufferTooShort  # type: ignore[attr-defined]

#: Longest uninterrupted wait while the peer rule may apply.
PEER_SLICE = 0.1


class _Child(Protocol):
    @property
    def sentinel(self) -> int: ...

    def _wh_exited(self) -> bool: ...


class Connection:
    """One end of a :func:`Pipe`, with the API of :class:`multiprocessing.connection.Connection`.

    Example::

        a, b = Pipe()
        b.send(lambda x: x + 1)
        assert a.recv(timeout=5)(1) == 2

    Differences from the stdlib:
        * ``send`` accepts lambdas and closures and raises ``SerializationError``.
        * ``recv`` and ``recv_bytes`` take a keyword-only ``timeout`` (``TimeoutError``).
        * Blocking calls are cancel-aware and raise ``EOFError`` when the peer end is gone
          (see the module docstring for the exact rule) instead of hanging.
    """

    def __init__(self, conn: mpconn.Connection) -> None:
        self._conn = conn
        self._peer: weakref.ref[Connection] | None = None
        self._handoffs: list[_Child] = []
        self._handoff_pid = 0
        self._used_since_handoff = False

    # -- hand-off bookkeeping (see the module docstring) -----------------------------

    def _handed_to(self, process: _Child) -> None:
        """Record that ``process`` was started with this end as an argument."""
        if self._handoff_pid != os.getpid():
            self._handoffs, self._handoff_pid = [], os.getpid()
        self._handoffs = [p for p in self._handoffs if not p._wh_exited()] + [process]
        self._used_since_handoff = False

    def _touch(self) -> None:
        self._used_since_handoff = True

    def _peer_watch(self) -> tuple[bool, list[int]]:
        """(rule may apply later, sentinels to watch); raises EOFError if the peer is gone."""
        peer = None if self._peer is None else self._peer()
        if peer is None or peer.closed:
            return False, []
        if peer._used_since_handoff or not peer._handoffs or peer._handoff_pid != os.getpid():
            return True, []
        live = [p for p in peer._handoffs if not p._wh_exited()]
        if not live:
            raise EOFError("the peer end's processes have all exited")
        return True, [p.sentinel for p in live]

    def _wait(self, timeout: float | None) -> bool:
        """Wait until readable (data or EOF) for up to ``timeout`` s; EOFError if peer gone."""
        deadline = Deadline(timeout)
        fd = self._conn.fileno()
        while True:
            try:
                may_apply, sentinels = self._peer_watch()
            except EOFError:
                if self._conn.poll(0):
                    return True  # a last message (or the kernel's EOF) comes first
                raise
            left = deadline.remaining()
            step = min(PEER_SLICE, left) if may_apply and left is not None else left
            if may_apply and step is None:
                step = PEER_SLICE
            ready = mpconn.wait([fd, *sentinels], step)
            if fd in ready:
                return True
            if deadline.expired():
                return False

    def _wait_cancellable(self, timeout: float | None) -> None:
        if not _cancel.block(self._wait, timeout):
            raise TimeoutError(f"no message within {timeout} s")

    def _read_exact(self, n: int) -> bytes:
        """Read ``n`` bytes; a message already started is read to its end (not cancellable)."""
        fd, parts, left = self._conn.fileno(), [], n
        while left:
            self._wait(None)
            chunk = os.read(fd, left)
            if not chunk:
                raise EOFError
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def _recv_message(self, maxlength: int | None, timeout: float | None) -> bytes:
        self._check_readable()
        self._touch()
        self._wait_cancellable(timeout)
        (size,) = struct.unpack("!i", self._read_exact(4))
        if size == -1:
            (size,) = struct.unpack("!Q", self._read_exact(8))
        if maxlength is not None and size > maxlength:
            self._conn._bad_message_length()  # type: ignore[attr-defined]
        return self._read_exact(size)

    def _check_readable(self) -> None:
        if self._conn.closed:
            raise OSError("handle is closed")
        if not self._conn.readable:
            raise OSError("connection is write-only")

    # -- the stdlib API ----------------------------------------------------------------

    def send(self, obj: object) -> None:
        """Send a picklable object (lambdas allowed); ``SerializationError`` if it is not."""
        self._touch()
        if self._conn.closed:
            raise OSError("handle is closed")
        if not self._conn.writable:
            raise OSError("connection is read-only")
        self._conn.send_bytes(dumps(obj, what="the object sent"))

    def recv(self, *, timeout: float | None = None) -> Any:
        """Receive an object sent with :meth:`send`.

        Raises:
            EOFError: the other end is closed or gone, and nothing is left to receive.
            TimeoutError: nothing arrived within ``timeout`` seconds.
        """
        return loads(self._recv_message(None, queue_timeout(True, timeout)))

    def send_bytes(self, buf: Any, offset: int = 0, size: int | None = None) -> None:
        """Send ``buf[offset:offset + size]`` as one message (stdlib checks and errors)."""
        self._touch()
        self._conn.send_bytes(buf, offset, size)

    def recv_bytes(self, maxlength: int | None = None, *, timeout: float | None = None) -> bytes:
        """Receive one message sent with :meth:`send_bytes`.

        Raises:
            OSError: the message is longer than ``maxlength`` (the connection is then
                unusable for reading, as in the stdlib).
            EOFError, TimeoutError: as :meth:`recv`.
        """
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        return self._recv_message(maxlength, queue_timeout(True, timeout))

    def recv_bytes_into(self, buf: Any, offset: int = 0) -> int:
        """Receive one message into ``buf`` at byte ``offset``; return its length.

        Raises:
            BufferTooShort: ``buf`` is too small; ``args[0]`` holds the whole message.
        """
        self._check_readable()
        with memoryview(buf) as m:
            bytesize = m.itemsize * len(m)
            if offset < 0:
                raise ValueError("negative offset")
            if offset > bytesize:
                raise ValueError("offset too large")
            data = self._recv_message(None, None)
            if bytesize < offset + len(data):
                raise BufferTooShort(data)
            with m.cast("B") as raw:
                raw[offset : offset + len(data)] = data
        return len(data)

    def poll(self, timeout: float | None = 0.0) -> bool:
        """Whether there is something to read (a message, or EOF) within ``timeout`` s.

        ``None`` waits forever; a negative timeout does not wait.
        """
        self._check_readable()
        self._touch()
        try:
            return _cancel.block(self._wait, wait_timeout(timeout))
        except EOFError:
            return True

    def close(self) -> None:
        """Close this end (idempotent)."""
        self._conn.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._conn.closed

    @property
    def readable(self) -> bool:
        """True if this end can receive."""
        return self._conn.readable

    @property
    def writable(self) -> bool:
        """True if this end can send."""
        return self._conn.writable

    def fileno(self) -> int:
        """The file descriptor (``OSError`` once closed)."""
        self._touch()
        return self._conn.fileno()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._conn.fileno()}"
        mode = "duplex" if self.readable and self.writable else ("r" if self.readable else "w")
        return f"<workhorse.Connection {mode} {state}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Inside a spawn/forkserver launch the fd travels with the launch; otherwise
        # through the resource sharer. Either way it may now be used by someone untracked.
        self._touch()
        df = reduction.DupFd(self._conn.fileno())
        return (_rebuild, (df, self._conn.readable, self._conn.writable))


def _rebuild(df: Any, readable: bool, writable: bool) -> Connection:
    return Connection(mpconn.Connection(df.detach(), readable, writable))


def Pipe(duplex: bool = True) -> tuple[Connection, Connection]:
    """Return a pair of connected :class:`Connection` objects.

    With ``duplex=False`` the first end only receives and the second only sends.

    Example::

        reader, writer = Pipe(duplex=False)
        writer.send({"answer": 42})
        assert reader.recv(timeout=1) == {"answer": 42}
    """
    a, b = mpconn.Pipe(duplex)
    first, second = Connection(a), Connection(b)
    first._peer, second._peer = weakref.ref(second), weakref.ref(first)
    return first, second
