"""What the process backend's manager sends and keeps: batches, worker records, pickled
functions, and the pickling helpers that turn any failure into a task's error.

A :class:`Batch` is consecutive units of jobs of one function, pickled once (its large
arguments in shared memory) and sent to one worker; a :class:`ProcessWorker` is a worker
process as the manager sees it. Pickling runs in the manager thread, which must never die
of a user's ``__reduce__``: every failure becomes :class:`Unpicklable`, carrying the error
the task's future gets (a :class:`~workhorse.SerializationError`).

Example::

    blob = dumps_or_fail(obj, "an argument of task f(...)")   # or raises Unpicklable
"""

from __future__ import annotations

import bisect
import os
import signal
import time
import weakref
from collections.abc import Callable, Iterator
from multiprocessing import connection
from typing import Any

from ..._errors import DeserializationError, SerializationError
from ..._process import PidFd
from ..._remote import load_exception
from ..._scheduler._job import Job
from ..._scheduler._units import Unit
from ..._serialize import dumps
from ._zerocopy import pack

__all__ = [
    "FUNCTION_CACHE",
    "Batch",
    "FunctionCache",
    "ProcessWorker",
    "Unpicklable",
    "dumps_or_fail",
    "load_task_exception",
    "pack_calls",
]

FUNCTION_CACHE = 256  # functions kept pickled here and loaded in the workers


class Batch:
    """What one worker runs: consecutive parts (units) of jobs of one function."""

    __slots__ = (
        "fn_blob", "fn_id", "id", "message", "offsets", "parts", "pickling", "segments",
        "sent_at", "size",
    )  # fmt: skip

    def __init__(
        self, batch_id: int, parts: list[Unit], segments: list[str], fn_id: int,
        fn_blob: bytes, message: bytes,
    ) -> None:  # fmt: skip
        self.id, self.parts, self.sent_at = batch_id, parts, time.monotonic()
        self.segments = segments  # shared memory holding its large arguments
        # What to send: the function (if the worker lacks it) and the batch message.
        self.fn_id, self.fn_blob, self.message = fn_id, fn_blob, message
        self.pickling = 0.0  # seconds it took to pickle (pool.stats())
        self.offsets: list[int] = []
        size = 0
        for part in parts:
            self.offsets.append(size)
            size += len(part)
        self.size = size

    def locate(self, index: int) -> tuple[Unit, int]:
        """The part holding item ``index`` of the batch, and that item's index in its job."""
        at = bisect.bisect_right(self.offsets, index) - 1
        part = self.parts[at]
        return part, part.start + index - self.offsets[at]


class ProcessWorker:
    """A worker process as the manager sees it: its pipe, its batch and its state."""

    __slots__ = (
        "batch", "conn", "done", "fns", "kill_reason", "pid", "pidfd", "process", "ready",
        "since", "slot", "staged",
    )  # fmt: skip

    def __init__(self, slot: int, process: Any, conn: connection.Connection) -> None:
        self.slot, self.process, self.conn = slot, process, conn
        self.pid: int | None = process.pid
        # Readable when the worker exits; the sentinel is the fallback (see _on_death).
        self.pidfd = PidFd.open(self.pid)
        self.fns: set[int] = set()
        self.batch: Batch | None = None
        # The batch it runs next, pickled while it is busy and sent the moment it is done (so
        # it does not wait for the manager). Not sent: another worker that goes idle takes
        # it, so a long task never holds back work that an idle worker could run.
        self.staged: Batch | None = None
        self.done = 0
        self.ready = False
        self.since = time.monotonic()  # started, or idle since
        # why the manager killed it: ("timeout" | "cancel" | "init_timeout", job, item index)
        self.kill_reason: tuple[str, Job | None, int] | None = None

    @property
    def exit_handle(self) -> Any:
        return self.process.sentinel if self.pidfd is None else self.pidfd

    def close_pidfd(self) -> None:
        if self.pidfd is not None:
            self.pidfd.close()

    def reap(self, grace: float) -> None:
        """Wait ``grace`` seconds for the process to exit (it was told to), then kill it;
        close what the manager held of it."""
        self.process.join(grace)
        if self.process.is_alive():
            self.kill_tree()
            self.process.join()
        self.release()

    def release(self) -> None:
        """Close what the manager holds of an exited worker: its pipe, its pidfd, and the
        process object's own pipes (left to the garbage collector, they outlived a broken
        pool: multiprocessing keeps its children's objects until it next starts one)."""
        self.conn.close()
        self.close_pidfd()
        try:
            if self.process.exitcode is not None:
                self.process.close()
        except ValueError:  # closed already
            pass

    def kill_tree(self) -> None:
        """SIGKILL the worker and the processes its tasks started: a worker leads its own
        process group (see ``_worker``), so a subprocess a timed-out task left running dies
        with it. Before it is a group leader (or if it could not become one), the worker
        alone."""
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class FunctionCache:
    """Functions pickled once and kept loaded in the workers, by identity, least recently
    used first out: a map of 100,000 calls sends its function once per worker, and a program
    submitting ever new lambdas does not grow without bound (evicted ids are forgotten by the
    workers too: see :meth:`evicted`).

    Example::

        cache = FunctionCache(itertools.count(1))
        fn_id, blob = cache.get(abs, by_value=False)
    """

    __slots__ = ("_entries", "_evicted", "_ids", "size")

    def __init__(self, ids: Iterator[int], size: int = FUNCTION_CACHE) -> None:
        # id(fn) -> (a weak reference to fn where it takes one, its id, its pickle): the
        # cache must not keep a bound method's object alive (CPython's
        # test_no_stale_references); fn is checked to be the same object on each hit.
        self._entries: dict[int, tuple[Callable[[], Any], int, bytes]] = {}
        self._ids, self.size = ids, size
        self._evicted: list[int] = []

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, fn: Callable[..., Any], *, by_value: bool) -> tuple[int, bytes]:
        """``fn``'s id and pickle; raises :class:`Unpicklable` if it cannot be pickled."""
        key = id(fn)
        entry = self._entries.pop(key, None)
        if entry is not None and entry[0]() is fn:
            self._entries[key] = entry  # most recently used last
            return entry[1], entry[2]
        if entry is not None:  # id reused by another object: the stale entry goes
            self._evicted.append(entry[1])
        blob = dumps_or_fail(fn, "function", main_by_value=by_value)
        fn_id = next(self._ids)
        self._entries[key] = (_weak(fn), fn_id, blob)
        if len(self._entries) > self.size:
            self._evicted.append(self._entries.pop(next(iter(self._entries)))[1])
        return fn_id, blob

    def evicted(self) -> list[int]:
        """The ids dropped since the last call (the workers holding them must forget them)."""
        evicted, self._evicted = self._evicted, []
        return evicted


def _weak(obj: Any) -> Callable[[], Any]:
    """A weak reference to ``obj``, or a strong one for what takes none (builtins, which
    live as long as their module anyway)."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


class Unpicklable(Exception):
    """Pickling for a task failed; ``error`` is what its future (or map item) gets."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


def dumps_or_fail(obj: object, what: str, *, main_by_value: bool = False) -> bytes:
    """``dumps`` for the manager thread: any failure -- a ``__reduce__`` calling
    ``sys.exit`` too, which must not stop this thread -- becomes :class:`Unpicklable`
    carrying the stdlib-typed error (see ``SerializationError.wrapping``)."""
    try:
        return dumps(obj, what=what, main_by_value=main_by_value)
    except SerializationError as exc:
        raise Unpicklable(exc) from None
    except BaseException as exc:
        message = f"cannot pickle {what}: {type(exc).__name__}: {exc} (raised while pickling)"
        raise Unpicklable(SerializationError.wrapping(exc, message)) from None


def pack_calls(
    calls: list[Any], what: str, prefix: str, main_by_value: bool
) -> tuple[bytes, list[str]]:
    """The arguments of a batch, large buffers in shared memory (see :mod:`._zerocopy`)."""
    try:
        return pack(calls, prefix=prefix, what=what, hold=True, main_by_value=main_by_value)
    except SerializationError as exc:
        raise Unpicklable(exc) from None
    except OSError:  # /dev/shm full or unavailable: send them in the pipe
        return dumps_or_fail(calls, what, main_by_value=main_by_value), []
    except BaseException as exc:
        message = f"cannot pickle {what}: {type(exc).__name__}: {exc} (raised while pickling)"
        raise Unpicklable(SerializationError.wrapping(exc, message)) from None


def load_task_exception(
    payload: bytes, job: Job, index: int, traceback_type: Callable[[str], BaseException]
) -> BaseException:
    """A task's exception from its worker; if it cannot be rebuilt here, say so."""
    try:
        return load_exception(payload, traceback_type)
    except BaseException as exc:  # SystemExit too: it must not stop the manager
        error = DeserializationError(
            f"the exception raised by {job.describe(index)} could not be unpickled: {exc!r}"
        )
        error.__cause__ = exc
        return error
