"""``Pipe`` and ``Connection``: multiprocessing's pipes that pickle lambdas and take timeouts.

A :class:`Connection` wraps a :class:`multiprocessing.connection.Connection` and keeps its
wire format, so it talks to stdlib connections. It adds:

* ``send`` pickles with :func:`workhorse._serialize.dumps`: lambdas and closures travel, and
  an object that cannot be pickled raises :class:`~workhorse.SerializationError` naming its
  type.
* ``recv(timeout=...)``/``recv_bytes(..., timeout=...)``: ``TimeoutError`` after ``timeout``
  seconds; cancel-aware (a cancelled task-group member wakes with ``Cancelled``).
* ``recv``, ``poll`` and EOF mean exactly what they mean with the stdlib: ``recv`` raises
  ``EOFError`` once every copy of the other end is closed (in every process that holds one)
  and nothing is left to read, and ``poll`` returns True only when a message (or that EOF)
  is there. So no message that was sent is ever lost -- not even one a grandchild sends after
  the child that handed it the end has exited. The classic hang -- the parent keeps its copy
  of the end it handed to a child, the child dies, ``recv()`` waits forever -- is avoided the
  stdlib's way (close your copy after ``start()``), and every blocking call takes a
  ``timeout``.

Connections pickle at any time: while a child is being launched (as a ``Process`` argument
under spawn or forkserver) the file descriptor is passed with the launch; otherwise through
multiprocessing's resource sharer (``SCM_RIGHTS`` over a Unix socket, one background thread).
"""

from __future__ import annotations

import os
import struct
from multiprocessing import connection as mpconn
from multiprocessing import reduction
from typing import Any, Self

from . import _cancel
from ._serialize import dumps, loads
from ._timeouts import queue_timeout, wait_timeout

__all__ = ["BufferTooShort", "Connection", "Pipe"]

BufferTooShort = mpconn.BufferTooShort  # type: ignore[attr-defined]


class Connection:
    """One end of a :func:`Pipe`, with the API of :class:`multiprocessing.connection.Connection`.

    Example::

        a, b = Pipe()
        b.send(lambda x: x + 1)
        assert a.recv(timeout=5)(1) == 2

    Differences from the stdlib:
        * ``send`` accepts lambdas and closures and raises ``SerializationError``.
        * ``recv`` and ``recv_bytes`` take a keyword-only ``timeout`` (``TimeoutError``).
        * Blocking calls are cancel-aware (a cancelled task-group member wakes with
          ``Cancelled``).
    """

    def __init__(self, conn: mpconn.Connection) -> None:
        self._conn = conn

    def _wait(self, timeout: float | None) -> bool:
        """Wait until readable (a message, or EOF) for up to ``timeout`` seconds."""
        return bool(self._conn.poll(timeout))

    def _wait_cancellable(self, timeout: float | None) -> None:
        if not _cancel.block(self._wait, timeout):
            raise TimeoutError(f"no message within {timeout} s")

    def _read_exact(self, n: int) -> bytes:
        """Read ``n`` bytes; a message already started is read to its end (not cancellable)."""
        fd, parts, left = self._conn.fileno(), [], n
        while left:
            mpconn.wait([fd])
            chunk = os.read(fd, left)
            if not chunk:
                raise EOFError
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def _recv_message(self, maxlength: int | None, timeout: float | None) -> bytes:
        self._check_readable()
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
        return _cancel.block(self._wait, wait_timeout(timeout))

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
        # through the resource sharer.
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
    return Connection(a), Connection(b)
