"""Pipe trials: a child sending a numbered stream, or reading one, SIGKILLed mid-stream.

What "lost" means for a pipe. A pipe (``duplex=False``) or socket pair (``duplex=True``) is
a byte stream in the kernel; ``Connection`` frames each message as a 4-byte length and the
payload (``multiprocessing``'s wire format). So:

* **killed sender** -- every message whose ``send`` returned is in the kernel and must be
  received, intact and in order, exactly once; at most one more (the ``send`` in flight,
  which may have written everything before the kill). A message cut by the kill is never
  delivered truncated: the receiver gets ``EOFError`` -- once every copy of the write end is
  closed, which is why the parent closes its copy after the start, as the stdlib requires.
  A parent that *keeps* its copy (a variant here) gets ``TimeoutError`` from
  ``recv(timeout=...)`` on time instead: never a hang.
* **killed reader, another reader left** (the parent keeps its copy of the read end) --
  the bytes the killed reader had not consumed stay in the kernel: the rest of the stream
  must be exactly the unread tail of what was sent. The reader consumes a message with
  several ``read`` calls, so it may die having consumed part of one: at most that message,
  the one in flight, is lost, and the stream after it can only be read as bytes (the
  stdlib's framing cannot resynchronise either).
* **killed last reader** (the parent closed its copy) -- the kernel buffer dies with the
  last reader: what was written and not read is gone *by definition* (counted, not a
  problem), and the sender's next write fails at once with ``BrokenPipeError`` (or
  ``ConnectionResetError`` for a socket pair) instead of hanging.
"""

from __future__ import annotations

import os
import random
import select
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import workhorse
from workhorse._serialize import dumps

from ._children import Board, kill_after, kill_delay, pick_method, start
from ._ledger import BOUND, SLACK, Ledger

KIND = "pipe"
MAX_DELAY = 0.02  # seconds: up to a few large messages into the stream
RECV = 0.25  # seconds: the timeout of each recv while the sender may still be alive
_SEQ = struct.Struct("<q")
_FRAME = struct.Struct("!i")


def message(seed: int, seq: int) -> bytes:
    """The ``seq``-th message of stream ``seed``: mostly small, some of 1-16 KiB, and one in
    twenty of 64-512 KiB (larger than the pipe's buffer: its write blocks, so kills land
    in the middle of it)."""
    h = (seq * 2654435761 + seed * 40503) & 0xFFFFFFFF
    pick = h % 100
    size = h % 200 if pick < 75 else 1024 + h % 15360 if pick < 95 else 65536 + h % 458752
    return _SEQ.pack(seq) + bytes([seq % 251]) * size


def _send_stream(
    writer: workhorse.Connection, other: object, board: Board, seed: int, pickled: bool
) -> None:
    """Child: send the stream forever; ``words[1]`` counts the sends that returned."""
    if isinstance(other, workhorse.Connection):
        other.close()  # a copy inherited through fork: not ours to keep
    words = board.words
    words[0] = 1
    seq = 0
    while True:
        data = message(seed, seq)
        writer.send(data) if pickled else writer.send_bytes(data)
        seq += 1
        words[1] = seq


def _read_stream(
    reader: workhorse.Connection, other: object, board: Board, seed: int, pickled: bool
) -> None:
    """Child: read the stream; ``words[1]`` counts the messages taken, ``words[2]`` is set
    to 1 + seq of the first wrong one."""
    if isinstance(other, workhorse.Connection):
        other.close()
    words = board.words
    words[0] = 1
    seq = 0
    while True:
        data = reader.recv(timeout=BOUND) if pickled else reader.recv_bytes(timeout=BOUND)
        if data != message(seed, seq) and not words[2]:
            words[2] = seq + 1
        seq += 1
        words[1] = seq


def sender_trial(ledger: Ledger, rng: random.Random) -> None:
    """Kill a child sending a numbered stream; receive it to the end (module docstring)."""
    duplex, pickled = rng.random() < 0.3, rng.random() < 0.5
    keep = rng.random() < 0.15  # the parent keeps its copy of the write end
    method = pick_method(rng)
    seed = rng.randrange(1 << 30)
    reader, writer = workhorse.Pipe(duplex)
    board = Board.create(2)
    child = start(
        _send_stream,
        writer,
        reader if method == "fork" else None,
        board,
        seed,
        pickled,
        method=method,
    )
    if not keep:
        writer.close()
    dead = threading.Event()

    def killer() -> None:
        kill_after(child, board, kill_delay(rng, MAX_DELAY))
        dead.set()

    thread = threading.Thread(target=killer, name="soak-pipe-killer")
    thread.start()
    rescue = _Rescue(writer if keep else None)
    try:
        got, ending = _receive(ledger, reader, seed, pickled, dead, rescue)
    finally:
        rescue.stop()
        thread.join(BOUND)
    writer.close()
    _judge_sender(ledger, reader, board, got, ending, keep)
    reader.close()


def _receive(
    ledger: Ledger,
    reader: workhorse.Connection,
    seed: int,
    pickled: bool,
    dead: threading.Event,
    rescue: _Rescue,
) -> tuple[int, str]:
    """Receive and check the stream until EOF (or, if the parent kept a write end, until
    the sender is dead and everything was read); return the count and how it ended."""
    got = 0
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        started = time.monotonic()
        data = _attempt(reader, pickled, rescue)
        took = time.monotonic() - started
        if rescue.used:
            ledger.problem("hung", KIND, RESCUED)
            return got, "rescued"
        if took > RECV + SLACK:
            ledger.problem("hung", KIND, f"recv(timeout={RECV}) took {took:.2f} s")
        if data is EOFError:
            return got, "eof"
        if data is TimeoutError:
            if dead.is_set() and not reader.poll(0):
                return got, "timeout"  # the writer is dead and all it sent was read
            continue
        assert isinstance(data, bytes)
        if data != message(seed, got):
            seq = _SEQ.unpack_from(data)[0] if len(data) >= 8 else None
            what = "duplicated" if seq is not None and seq < got else "wrong"
            ledger.problem(what, KIND, f"message {got} arrived as seq {seq}, {len(data)} bytes")
            return got, what
        got += 1
    return got, "bound"


RESCUED = (
    f"recv(timeout={RECV}) blocked past its timeout: the sender died in the middle of a "
    "message while a copy of the write end stayed open (freed by writing filler into it)"
)


class _Rescue:
    """A watchdog for ``recv(timeout=...)`` calls: if one blocks past its timeout plus
    ``SLACK`` and the parent holds a write end, feed it filler bytes until the call returns
    (the call is then reported as hung), so that the soak goes on."""

    def __init__(self, writer: workhorse.Connection | None) -> None:
        self.writer, self.used = writer, False
        self._since = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="soak-pipe-rescue")
        if writer is not None:
            self._thread.start()

    @contextmanager
    def watching(self) -> Iterator[None]:
        self._since = time.monotonic()
        try:
            yield
        finally:
            self._since = 0.0

    def _watch(self) -> None:
        assert self.writer is not None
        while not self._done.wait(0.05):
            since = self._since
            if since and time.monotonic() - since > RECV + SLACK:
                self.used = True
                os.write(self.writer.fileno(), bytes(4096))

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()


def _attempt(conn: workhorse.Connection, pickled: bool, rescue: _Rescue) -> object:
    """One ``recv``: the message, or the class of the exception it raised (EOF, timeout)."""
    try:
        with rescue.watching():
            data: bytes = conn.recv(timeout=RECV) if pickled else conn.recv_bytes(timeout=RECV)
            return data
    except (EOFError, TimeoutError) as exc:
        return type(exc)
    except Exception:  # only after a rescue: the filler does not unpickle
        if not rescue.used:
            raise
        return None


def _judge_sender(
    ledger: Ledger, reader: workhorse.Connection, board: Board, got: int, ending: str, keep: bool
) -> None:
    stats = ledger.kind(KIND)
    stats.kills += 1
    stats.items += got
    sent = int(board.words[1])
    if ending in ("wrong", "duplicated", "rescued"):
        return
    if ending == "bound":
        ledger.problem("hung", KIND, f"receiving a killed sender's stream took {BOUND} s")
    elif keep and ending != "timeout":
        ledger.problem(
            "wrong", KIND, f"write end kept by the parent, yet the stream ended with {ending}"
        )
    elif not keep and ending != "eof":
        ledger.problem("hung", KIND, "no EOF once the only writer was dead and reaped")
    if got < sent:
        ledger.problem("missing", KIND, f"sender: {sent} sends returned, {got} received")
    elif got > sent + 1:
        ledger.problem("wrong", KIND, f"sender: {got} received, only {sent} sent")
    ledger.note(KIND, "sender killed")
    ledger.note(KIND, "in-flight message delivered", got - sent)
    if ending == "eof" and not reader.closed:
        try:
            reader.recv_bytes(timeout=0)
            ledger.problem("wrong", KIND, "recv after EOF returned a message")
        except EOFError:
            pass
        except TimeoutError:
            ledger.problem("wrong", KIND, "recv after EOF timed out instead of EOFError")


def reader_trial(ledger: Ledger, rng: random.Random) -> None:
    """Kill a child reading a stream the parent sends (see the module docstring)."""
    duplex, pickled = rng.random() < 0.3, rng.random() < 0.5
    last_reader = rng.random() < 0.3  # the parent closes its copy of the read end
    method = pick_method(rng)
    seed, count = rng.randrange(1 << 30), rng.randint(20, 300)
    reader, writer = workhorse.Pipe(duplex)
    board = Board.create(3)
    child = start(
        _read_stream,
        reader,
        writer if method == "fork" else None,
        board,
        seed,
        pickled,
        method=method,
    )
    if last_reader:
        reader.close()
    sent: list[int] = []  # the messages whose send returned
    broken: list[BaseException] = []

    def sender() -> None:
        try:
            for seq in range(count):
                data = message(seed, seq)
                writer.send(data) if pickled else writer.send_bytes(data)
                sent.append(seq)
        except OSError as exc:  # BrokenPipeError, ConnectionResetError: no reader left
            broken.append(exc)

    thread = threading.Thread(target=sender, name="soak-pipe-sender")
    thread.start()
    kill_after(child, board, kill_delay(rng, MAX_DELAY))
    stats = ledger.kind(KIND)
    stats.kills += 1
    ledger.note(KIND, "reader killed")
    rest = b"" if last_reader else _read_rest(reader, thread)
    thread.join(BOUND)
    if thread.is_alive():
        ledger.problem(
            "hung",
            KIND,
            f"send() blocked for {BOUND} s after the reader died"
            f" ({'last reader' if last_reader else 'parent still reading'})",
        )
        return  # the thread is stuck in the kernel: nothing safe to close under it
    writer.close()
    if not reader.closed:
        reader.close()
    taken, bad = int(board.words[1]), int(board.words[2])
    stats.items += len(sent)
    if bad:
        ledger.problem("wrong", KIND, f"the reader received message {bad - 1} corrupted")
    if last_reader:
        ledger.note(KIND, "died with the last reader", max(0, len(sent) - taken))
        ledger.note(KIND, "sender got EPIPE", len(broken))
        return
    if broken:
        ledger.problem("wrong", KIND, f"send failed with a reader left: {broken[0]!r}")
        return
    _judge_rest(ledger, seed, count, pickled, taken, rest)


def _read_rest(reader: workhorse.Connection, sender: threading.Thread) -> bytes:
    """Read the bytes left in the kernel (the parent's copy of the read end) until the
    sender is done and nothing is left; bounded."""
    fd, parts = reader.fileno(), []
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if poller.poll(50):
            chunk = _read_some(fd)
            if chunk:
                parts.append(chunk)
                continue
        if not sender.is_alive() and not poller.poll(0):
            break
    return b"".join(parts)


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


def _judge_rest(
    ledger: Ledger, seed: int, count: int, pickled: bool, taken: int, rest: bytes
) -> None:
    """The rest must be the exact tail of the stream; the killed reader may have consumed
    at most the message after the ``taken`` it recorded."""
    frames = [_frame(seed, seq, pickled) for seq in range(count)]
    ends, total = [0], 0
    for frame in frames:
        total += len(frame)
        ends.append(total)
    stream = b"".join(frames)
    consumed = len(stream) - len(rest)
    if consumed < 0 or stream[consumed:] != rest:
        ledger.problem(
            "wrong",
            KIND,
            f"what was left ({len(rest)} bytes) is not the unread "
            f"tail of the {len(stream)}-byte stream",
        )
        return
    if consumed < ends[taken]:
        ledger.problem(
            "wrong",
            KIND,
            f"the reader recorded {taken} messages but consumed {consumed} bytes (< {ends[taken]})",
        )
    elif consumed > ends[min(taken + 1, count)]:
        ledger.problem(
            "missing",
            KIND,
            f"the killed reader took {taken} messages and "
            f"consumed {consumed} bytes: more than the one in flight",
        )
    elif consumed > ends[taken]:
        ledger.note(KIND, "in-flight message lost with its reader")


def _frame(seed: int, seq: int, pickled: bool) -> bytes:
    data = message(seed, seq)
    payload = dumps(data, what="the object sent") if pickled else data
    return _FRAME.pack(len(payload)) + payload


def pipe_trial(ledger: Ledger, rng: random.Random) -> None:
    """One pipe trial: a killed sender or a killed reader, half and half."""
    (sender_trial if rng.random() < 0.5 else reader_trial)(ledger, rng)
