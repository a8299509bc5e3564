"""The loop that runs inside a pool's worker process.

Protocol (each message one pickled tuple over the worker's own duplex connection, but for
the results of a batch: :data:`DONE` then the pickled tuple, so that the parent can give
the worker its next batch before it spends time unpickling these results)::

    parent -> worker   ("fn", fn_id, blob)              a function, sent once per worker
                       ("batch", batch_id, fn_id, kind, mode, blob)
                           blob: the pickled calls, each stored as ``kind`` says (see
                           ``_job.ITEM``/``ARGS``/``CALL``); ``mode``: see ``_run_batch``
                       ("stop",)                         finish and exit
    worker -> parent   ("ready", pid)                    initializer done
                       ("init_failed", exc_blob[, why])  initializer (or shared=) failed
               DONE + (batch_id, values, failures, seconds, pickling, started, ends)
                                                             failures: {index: exc_blob},
                                                                seconds: running the items,
                                                                ends: each item's end time
                                                                (insights=True) or None
                       ("unpack_failed", batch_id, exc_blob)  the batch could not be unpickled
                       ("retire", tasks_done, grown)  max tasks, or memory grown past the limit

Before each item the worker writes its position into its progress slot (see
:mod:`._progress`), so the parent knows which item was running if the worker dies and how
long it has run. The worker ignores SIGINT: Ctrl-C is the parent's to handle, which then
stops the workers. A worker leads a process group of its own, so a task it is stopped for
(a timeout, a cancellation, ``terminate()``) is stopped with the processes it started. A
watchdog thread ends the worker (and that group) when the parent dies, so no worker outlives
a killed parent.
"""

from __future__ import annotations

import faulthandler
import gc
import itertools
import logging
import os
import select
import signal
import threading
import time
from multiprocessing import parent_process
from multiprocessing.connection import Connection
from typing import Any

from ..._remote import dump_exception
from ..._scheduler._job import ARGS, CALL, ITEM
from ..._serialize import dumps, loads, unpicklable_result
from ..._worker_info import WorkerInfo, run_exit_hook, set_process_worker
from ._progress import BoardHandle, ProgressBoard
from ._shared import load as load_shared
from ._zerocopy import pack, unpack

__all__ = [
    "BULK",
    "BULK_INDEX",
    "INDEXED",
    "MEMORY_GROWTH_ENV",
    "TIMED",
    "memory_growth_limit",
    "worker_main",
]

#: Environment variable: how many bytes a worker's resident memory may grow past what it
#: used when it became ready before it is replaced (unset or ``0``: never -- off by default,
#: as with the stdlib: a worker that keeps a large cache or model in a global on purpose must
#: not be recycled).
MEMORY_GROWTH_ENV = "WORKHORSE_WORKER_MEMORY_GROWTH"
MEMORY_CHECK_EVERY = 1.0  # seconds between two looks at the worker's memory
_log = logging.getLogger("workhorse")
_executor_log = logging.getLogger("concurrent.futures")


def memory_growth_limit() -> int | None:
    """The memory-growth limit from :data:`MEMORY_GROWTH_ENV` (None: no limit)."""
    raw = os.environ.get(MEMORY_GROWTH_ENV, "").strip()
    if not raw:
        return None
    try:
        limit = int(float(raw))
    except ValueError:
        _log.warning("ignoring %s=%r: not a number of bytes", MEMORY_GROWTH_ENV, raw)
        return None
    return limit if limit > 0 else None


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None  # not Linux: no check


def worker_main(
    conn: Connection,
    board_handle: BoardHandle,
    slots: int,
    slot: int,
    setup: bytes,
    shared: object,
    max_tasks: int | None,
    result_prefix: str,
) -> None:
    """Entry point of a worker process (the target of its ``multiprocessing.Process``)."""
    _lead_a_process_group()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not faulthandler.is_enabled():  # a crash in native code leaves a traceback on stderr
        faulthandler.enable()
    _watch_parent()
    board = ProgressBoard.attach(board_handle, slots)
    origin = f"pool worker (pid {os.getpid()})"
    initializer, initargs, start_method, worker_exit = loads(setup)
    name = f"pid {os.getpid()}"
    try:
        data = None if shared is None else load_shared(shared)
    except BaseException as exc:  # the pool is broken with it, as by a failing initializer
        failed = "a worker could not load the pool's shared= data"
        conn.send_bytes(dumps(("init_failed", dump_exception(exc, origin), failed)))
        return
    info = WorkerInfo(slot, os.getpid(), name, "processes", start_method, shared=data)
    set_process_worker(info)
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException as exc:
            # As the stdlib's executors do: a handler the initializer installed (a
            # QueueHandler to the parent, say) sees it; with none, it goes to stderr.
            _executor_log.critical("Exception in initializer:", exc_info=True)
            conn.send_bytes(dumps(("init_failed", dump_exception(exc, origin))))
            return
    conn.send_bytes(dumps(("ready", os.getpid())))
    try:
        _serve(conn, board, slot, origin, max_tasks, result_prefix)
    except (EOFError, OSError):
        pass  # the parent is gone or closed our connection: nothing left to do
    else:  # stopped by the pool, idle, or retired: an ordinary exit
        run_exit_hook(worker_exit)
    finally:
        board.detach()


def _serve(
    conn: Connection, board: ProgressBoard, slot: int, origin: str, max_tasks: int | None,
    result_prefix: str,
) -> None:  # fmt: skip
    functions: dict[int, Any] = {}
    done = 0
    growth = memory_growth_limit()
    baseline = _resident_bytes()
    checked = time.monotonic()
    packing = 0.0  # how long the last results took to pickle: reported with the next ones
    while True:
        message = loads(conn.recv_bytes())
        kind = message[0]
        if kind == "fn":
            functions[message[1]] = _load_function(message[2], origin)
        elif kind == "forget":
            functions.pop(message[1], None)
        elif kind == "batch":
            _, batch_id, fn_id, call_kind, mode, blob = message
            began = time.perf_counter()
            try:
                items = unpack(blob)
            except BaseException as exc:  # SystemExit too: refuse the batch, stay alive
                conn.send_bytes(dumps(("unpack_failed", batch_id, dump_exception(exc, origin))))
                continue
            fn = functions[fn_id]
            ran, started = time.perf_counter(), time.monotonic()
            pickling = ran - began + packing
            ends: list[float] | None = [] if mode == TRACED else None
            values, failures = _run_batch(
                board, slot, batch_id, fn, call_kind, items, mode, origin, ends
            )
            ended = time.perf_counter()
            seconds = ended - ran
            # Index one past the last item: a death from here on happened while pickling or
            # sending the results, and the parent must not blame the last item's *run*.
            board.start_item(slot, batch_id, len(values))
            packed = _pack_done(
                (batch_id, values, failures, seconds, pickling, started, ends),
                fn,
                origin,
                result_prefix,
                blob,
            )
            packing = time.perf_counter() - ended
            conn.send_bytes(packed)
            board.finish_batch(slot, len(values))
            done += len(values)
            # Drop the batch now, while idle: a __del__ that crashes the worker must not be
            # blamed on the next batch's first item (it would run inside it otherwise).
            del message, blob, items, values, failures, packed
            # Cycles the batch left behind go now, not hundreds of tasks later: the young
            # generation is small after a batch, so this costs microseconds.
            gc.collect(0)
            if max_tasks is not None and done >= max_tasks:
                conn.send_bytes(dumps(("retire", done, None)))
                return
            if growth is not None and baseline is not None:
                now = time.monotonic()
                if now - checked >= MEMORY_CHECK_EVERY:
                    checked = now
                    gc.collect()  # what a full collection frees is not a leak
                    resident = _resident_bytes()
                    if resident is not None and resident - baseline > growth:
                        conn.send_bytes(dumps(("retire", done, resident - baseline)))
                        return
        else:
            return


class _Unloadable:
    """Stands in for a function that could not be unpickled: every call re-raises why."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


def _load_function(blob: bytes, origin: str) -> Any:
    try:
        return loads(blob)
    except BaseException as exc:
        return _Unloadable(exc)


#: Batch modes. ``TIMED``: each item's index and start time go to the progress slot (an item
#: has a timeout). ``INDEXED``: each item's index only. ``BULK``: the batch runs in C
#: (``list.extend(map(...))``) with no per-item write; the slot says :data:`BULK_INDEX`,
#: and a death there makes the parent re-run the batch's items one per batch, so the item
#: that kills its worker is found (and fails) alone. The parent picks BULK for large batches
#: of fast items, where a per-item write would cost as much as the item.
TIMED, INDEXED, BULK = "timed", "indexed", "bulk"
#: ``TRACED``: as ``TIMED``, and each item's end time goes back with the results
#: (``insights=True``).
TRACED = "traced"
#: The first byte of a results message (no pickle, zero-copy or not, starts with it).
DONE = b"\x00"
BULK_INDEX = -2


def _run_batch(
    board: ProgressBoard, slot: int, batch_id: int, fn: Any, kind: str, items: list[Any],
    mode: str, origin: str, ends: list[float] | None = None,
) -> tuple[list[Any], dict[int, bytes]]:  # fmt: skip
    """Run every item; ``values[i]`` is item i's result, ``failures[i]`` its pickled error.

    The index of the item running is always ``len(values)``: a loop that raises is resumed
    after the failed item (``list.extend`` keeps what it appended before an exception).
    """
    values: list[Any] = []
    failures: dict[int, bytes] = {}
    view = board.begin_batch(slot, batch_id)
    at = board.index_at(slot)
    if mode == BULK:
        view[at] = BULK_INDEX
    while len(values) < len(items):
        try:
            if mode in (TIMED, TRACED):
                _run_timed(board, slot, batch_id, fn, kind, items, values, ends)
            elif mode == BULK and kind != CALL:
                rest = itertools.islice(items, len(values), None)
                values.extend(map(fn, rest) if kind == ITEM else itertools.starmap(fn, rest))
            else:
                _run_fast(view, at, fn, kind, items, values)
        except BaseException as exc:  # SystemExit included: it fails the task, not the worker
            failures[len(values)] = dump_exception(exc, origin)
            values.append(None)
            if ends is not None:
                ends.append(time.monotonic())
    return values, failures


def _run_fast(
    view: memoryview, at: int, fn: Any, kind: str, items: list[Any], values: list[Any]
) -> None:
    append = values.append
    start = len(values)
    if kind == ITEM:
        for index in range(start, len(items)):
            view[at] = index
            append(fn(items[index]))
    elif kind == ARGS:
        for index in range(start, len(items)):
            view[at] = index
            append(fn(*items[index]))
    else:
        for index in range(start, len(items)):
            view[at] = index
            args, kwargs = items[index]
            append(fn(*args, **kwargs))


def _run_timed(
    board: ProgressBoard, slot: int, batch_id: int, fn: Any, kind: str, items: list[Any],
    values: list[Any], ends: list[float] | None = None,
) -> None:  # fmt: skip
    for index in range(len(values), len(items)):
        board.start_item(slot, batch_id, index)
        item = items[index]
        if kind == ITEM:
            values.append(fn(item))
        elif kind == ARGS:
            values.append(fn(*item))
        else:
            values.append(fn(*item[0], **item[1]))
        if ends is not None:
            ends.append(time.monotonic())


def _pack_done(
    done: tuple[int, list[Any], dict[int, bytes], float, float, float, list[float] | None],
    fn: Any, origin: str,
    prefix: str, arguments: bytes,
) -> bytes:  # fmt: skip
    """The results message; large buffers go to shared memory, and a result that is (part
    of) an argument refers to the argument's segment instead of being copied again."""
    _, values, failures, _, _, _, _ = done
    try:
        return DONE + pack(done, prefix=prefix, reply_to=arguments)[0]
    except BaseException:  # SystemExit from a __reduce__ too: it must not end the worker
        pass
    # Some result cannot be pickled: find it, fail only that item.
    for index, value in enumerate(values):
        if index in failures:
            continue
        try:
            dumps(value)
        except BaseException as exc:
            error = unpicklable_result(fn, value, exc)
            failures[index] = dump_exception(error, origin)
            values[index] = None
    try:
        return DONE + pack(done, prefix=prefix, reply_to=arguments)[0]
    except OSError:  # /dev/shm full: in the pipe, then
        return DONE + dumps(done)


def _lead_a_process_group() -> None:
    """Make this worker the leader of a process group of its own, so that the pool can stop
    a task together with the processes it started (``killpg``), and so can the watchdog.
    Ctrl-C is unaffected: workers ignore it, and the pool stops them when the parent gets it."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass  # a session leader already (or forbidden): the pool then kills the worker alone


def _watch_parent() -> None:
    parent = parent_process()
    if parent is None:
        return

    def watch() -> None:
        _wait_for_exit(parent)
        # The pool is gone: nobody will read our results. Take the processes our tasks
        # started along, if we lead their group.
        if os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)
        os._exit(1)

    threading.Thread(target=watch, name="workhorse-parent-watchdog", daemon=True).start()


def _wait_for_exit(parent: Any) -> None:
    """Return once the pool's process has exited.

    The worker watches a pidfd of it as well as the sentinel pipe that ``parent.join()``
    waits on: that pipe reaches end-of-file only when every copy of its write end is closed,
    and a sibling worker the pool forked directly after this one (its first workers under
    ``fork``) inherited a copy. A parent that is gone before the pidfd is opened has no pid
    left to open: that is an exit too.
    """
    if not hasattr(os, "pidfd_open"):
        parent.join()
        return
    try:
        handle = os.pidfd_open(parent.pid)
    except ProcessLookupError:
        return
    except OSError:  # no pidfds here (old kernel, seccomp): the sentinel, then
        parent.join()
        return
    try:
        select.select([handle, parent.sentinel], [], [])
    finally:
        os.close(handle)
