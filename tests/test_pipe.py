"""Tests of workhorse._pipe: the stdlib's Connection matrix, hand-offs and EOF, not hangs."""

from __future__ import annotations

import array
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing import resource_sharer
from typing import Any

import pytest

import workhorse
from workhorse import _cancel
from workhorse._errors import Cancelled, SerializationError
from workhorse._pipe import BufferTooShort, Connection, Pipe
from workhorse._process import process_class


def test_pipe_round_trips_objects_bytes_and_lambdas() -> None:
    a, b = Pipe()
    with a, b:
        b.send({"x": [1, 2]})
        b.send(lambda y: y * 2)
        b.send_bytes(b"")  # an empty message is still a message
        b.send_bytes(b"abc")
        big = os.urandom(16 * 1024 * 1024)
        sender = threading.Thread(target=b.send_bytes, args=(big,))
        sender.start()
        assert a.recv() == {"x": [1, 2]}
        assert a.recv()(21) == 42
        assert a.poll()
        assert a.recv_bytes() == b""
        assert a.recv_bytes() == b"abc"  # messages are never merged
        assert a.recv_bytes(timeout=30) == big
        sender.join()
        a.send("back")
        assert b.recv() == "back"
    assert a.closed
    assert b.closed


def test_pipe_recv_bytes_into_and_buffer_too_short() -> None:
    a, b = Pipe()
    with a, b:
        arr = array.array("i", range(5))
        b.send_bytes(arr)
        buf = array.array("i", [0] * 10)
        assert a.recv_bytes_into(buf, 8) == 20
        assert list(buf) == [0, 0, 0, 1, 2, 3, 4, 0, 0, 0]
        b.send_bytes(b"0123456789")
        small = bytearray(4)
        with pytest.raises(BufferTooShort) as info:
            a.recv_bytes_into(small)
        assert info.value.args == (b"0123456789",)
        with pytest.raises(ValueError, match="negative offset"):
            a.recv_bytes_into(small, -1)
        with pytest.raises(ValueError, match="offset too large"):
            a.recv_bytes_into(small, 5)


@pytest.mark.parametrize(("offset", "size"), [(27, None), (22, 5), (26, 1), (-1, None), (4, -1)])
def test_pipe_send_bytes_out_of_range(offset: int, size: int | None) -> None:
    a, b = Pipe()
    with a, b, pytest.raises(ValueError):
        b.send_bytes(b"abcdefghijklmnopqrstuvwxyz", offset, size)


def test_pipe_send_bytes_at_the_end_sends_empty() -> None:
    a, b = Pipe()
    with a, b:
        b.send_bytes(b"abcdefghijklmnopqrstuvwxyz", 26)
        b.send_bytes(b"abcdefghijklmnopqrstuvwxyz", 26, 0)
        assert a.recv_bytes() == b""
        assert a.recv_bytes() == b""
        assert not a.poll()


def test_pipe_poll_and_timeouts() -> None:
    a, b = Pipe()
    with a, b:
        t0 = time.monotonic()
        assert a.poll() is False
        assert a.poll(-1) is False
        assert time.monotonic() - t0 < 0.05
        assert a.poll(0.1) is False
        assert time.monotonic() - t0 >= 0.09
        with pytest.raises(TimeoutError):
            a.recv(timeout=0.05)
        with pytest.raises(TimeoutError):
            a.recv_bytes(timeout=0)
        with pytest.raises(ValueError):
            a.recv(timeout=-1)
        b.send_bytes(b"x" * 100)
        assert a.poll(None)
        assert a.poll()  # poll never consumes
        with pytest.raises(OSError, match="bad message length"):
            a.recv_bytes(maxlength=10)


def test_pipe_errors_match_stdlib() -> None:
    reader, writer = Pipe(duplex=False)
    assert reader.readable
    assert not reader.writable
    assert writer.writable
    assert not writer.readable
    with pytest.raises(OSError):
        reader.send(1)
    with pytest.raises(OSError):
        writer.recv()
    with pytest.raises(OSError):
        writer.poll()
    with pytest.raises(SerializationError, match=r"_thread\.lock"):
        writer.send(threading.Lock())
    writer.close()
    with pytest.raises(EOFError):
        reader.recv()
    with pytest.raises(EOFError):
        reader.recv_bytes(timeout=5)
    reader.close()
    reader.close()  # idempotent
    with pytest.raises(OSError):
        reader.fileno()
    with pytest.raises(ValueError, match="negative maxlength"):
        Pipe()[0].recv_bytes(-1)


def test_pipe_talks_to_stdlib_connections() -> None:
    a, b = Pipe()
    std_a = multiprocessing.connection.Connection(os.dup(a.fileno()))
    with a, b, std_a:
        b.send([1, 2, 3])
        assert std_a.recv() == [1, 2, 3]
        std_a.send_bytes(b"raw")
        assert b.recv_bytes() == b"raw"


def _echo(conn: Connection) -> None:
    conn.send(("echo", conn.recv()))


def test_pipe_end_as_process_argument(start_method: str) -> None:
    a, b = Pipe()
    with a, b:
        p = process_class(start_method)(target=_echo, args=(b,))
        p.start()
        a.send(lambda: "hi")
        tag, fn = a.recv(timeout=30)
        assert (tag, fn()) == ("echo", "hi")
        p.join(timeout=30)
        assert p.exitcode == 0


def test_pipe_end_through_a_queue_after_start(start_method: str) -> None:
    ctx = multiprocessing.get_context(start_method)
    queue = ctx.SimpleQueue()
    p = process_class(start_method)(target=lambda q: _echo(q.get()), args=(queue,))
    p.start()
    a, b = Pipe()
    try:
        with a, b:
            queue.put(b)  # pickled now: through multiprocessing's resource sharer
            a.send(7)
            assert a.recv(timeout=30) == ("echo", 7)
            p.join(timeout=30)
            assert p.exitcode == 0
    finally:
        queue.close()
        resource_sharer.stop()  # its background thread would count as a leak


def _send_and_die(conn: Connection) -> None:
    conn.send("last words")
    os.kill(os.getpid(), signal.SIGKILL)


def test_pipe_eof_once_the_last_copy_of_the_peer_is_closed(start_method: str) -> None:
    """The stdlib's rule: EOF once every copy of the other end is closed -- here the child's,
    killed, and the parent's, closed after the hand-off as the stdlib docs advise."""
    a, b = Pipe()
    with a:
        p = process_class(start_method)(target=_send_and_die, args=(b,))
        p.start()
        b.close()
        assert a.recv(timeout=30) == "last words"  # what was sent before dying comes first
        with pytest.raises(EOFError):
            a.recv(timeout=30)
        assert a.poll()  # "something to read": the EOF
        p.join()


def _hand_to_grandchild(conn: Connection, started: Any, go: Any) -> None:
    process_class("fork")(target=_send_when_told, args=(conn, go)).start()
    started.set()
    go.wait(60)  # until the parent terminates us (the grandchild lives on)


def _send_when_told(conn: Connection, go: Any) -> None:
    go.wait(30)
    conn.send("from the grandchild")


def test_pipe_no_false_eof_while_a_grandchild_holds_the_peer(start_method: str) -> None:
    """CPython's test_parent_process shape: the child hands the end on to a grandchild and
    dies; what the grandchild sends later is received (no EOF is invented meanwhile)."""
    reader, writer = Pipe(duplex=False)
    started, go = workhorse.Event(), workhorse.Event()
    with reader, writer:
        child = process_class(start_method)(target=_hand_to_grandchild, args=(writer, started, go))
        child.start()
        assert started.wait(30)
        child.terminate()
        child.join(30)
        assert child.exitcode == -signal.SIGTERM
        assert not reader.poll()  # nothing yet, and no EOF either
        go.set()
        assert reader.recv(timeout=30) == "from the grandchild"


def test_pipe_poll_loop_reads_exactly_what_was_sent() -> None:
    """``while conn.poll(): conn.recv()`` (CPython's test_recursion): poll() is True only
    when a message is there, so the loop ends without an EOFError."""
    reader, writer = Pipe(duplex=False)
    with reader, writer:
        p = process_class("fork")(target=lambda c: [c.send(i) for i in range(3)], args=(writer,))
        p.start()
        p.join(30)
        received = []
        while reader.poll():
            received.append(reader.recv())
        assert received == [0, 1, 2]
        with pytest.raises(TimeoutError):
            reader.recv(timeout=0.05)  # the parent's copy of the writer keeps it open


def test_pipe_eof_when_the_peer_is_closed_while_blocked() -> None:
    a, b = Pipe()
    with a:
        receiver_ready = threading.Event()
        outcome: list[BaseException] = []

        def receive() -> None:
            receiver_ready.set()
            try:
                a.recv()
            except BaseException as exc:
                outcome.append(exc)

        t = threading.Thread(target=receive)
        t.start()
        assert receiver_ready.wait(10)
        b.close()
        t.join(timeout=10)
        assert not t.is_alive()
        assert [type(e) for e in outcome] == [EOFError]


def test_pipe_recv_is_cancel_aware() -> None:
    a, b = Pipe()
    with a, b:
        scope = _cancel.CancelScope()
        outcome: list[BaseException] = []

        def receive() -> None:
            with _cancel.entered(scope):
                try:
                    a.recv()
                except BaseException as exc:
                    outcome.append(exc)

        t = threading.Thread(target=receive)
        t.start()
        scope.cancel()
        t.join(timeout=10)
        assert [type(e) for e in outcome] == [Cancelled]
