"""The loop that runs inside a pool's worker process.

Protocol (each message one pickled tuple over the worker's own duplex connection)::

    parent -> worker   ("fn", fn_id, blob)              a function, sent once per worker
                       ("batch", batch_id, fn_id, blob)  blob: pickled [(args, kwargs), ...]
                       ("stop",)                         finish and exit
    worker -> parent   ("ready", pid)                    initializer done
                       ("init_failed", exc_blob)         initializer raised: worker exits
                       ("done", batch_id, outcomes)      outcomes: [(ok, value | exc_blob)]
                       ("unpack_failed", batch_id, exc_blob)  the batch could not be unpickled
                       ("retire", tasks_done)            max tasks reached: worker exits

Before each item the worker writes its position into its progress slot (see
:mod:`._progress`), so the parent knows which item was running if the worker dies and how
long it has run. The worker ignores SIGINT: Ctrl-C is the parent's to handle, which then
stops the workers. A watchdog thread exits the worker when the parent dies, so no worker
outlives a killed parent.
"""

from __future__ import annotations

import os
import signal
import threading
from multiprocessing import parent_process
from multiprocessing.connection import Connection
from typing import Any

from .._errors import SerializationError
from .._remote import dump_exception
from .._serialize import dumps, loads
from ._progress import ProgressBoard

__all__ = ["worker_main"]

Outcome = tuple[bool, Any]


def worker_main(
    conn: Connection,
    board_name: str,
    slots: int,
    slot: int,
    setup: bytes,
    max_tasks: int | None,
) -> None:
    """Entry point of a worker process (the target of its ``multiprocessing.Process``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent()
    board = ProgressBoard.attach(board_name, slots)
    origin = f"pool worker (pid {os.getpid()})"
    initializer, initargs = loads(setup)
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException as exc:
            conn.send_bytes(dumps(("init_failed", dump_exception(exc, origin))))
            return
    conn.send_bytes(dumps(("ready", os.getpid())))
    try:
        _serve(conn, board, slot, origin, max_tasks)
    except (EOFError, OSError):
        pass  # the parent is gone or closed our connection: nothing left to do
    finally:
        board.detach()


def _serve(
    conn: Connection, board: ProgressBoard, slot: int, origin: str, max_tasks: int | None
) -> None:
    functions: dict[int, Any] = {}
    done = 0
    while True:
        message = loads(conn.recv_bytes())
        kind = message[0]
        if kind == "fn":
            functions[message[1]] = _load_function(message[2], origin)
        elif kind == "forget":
            functions.pop(message[1], None)
        elif kind == "batch":
            _, batch_id, fn_id, blob = message
            try:
                items = loads(blob)
            except BaseException as exc:  # SystemExit too: refuse the batch, stay alive
                conn.send_bytes(dumps(("unpack_failed", batch_id, dump_exception(exc, origin))))
                continue
            fn = functions[fn_id]
            outcomes = _run_batch(board, slot, batch_id, fn, items, origin)
            # Index one past the last item: a death from here on happened while pickling or
            # sending the results, and the parent must not blame the last item's *run*.
            board.start_item(slot, batch_id, len(outcomes))
            conn.send_bytes(_pack_done(batch_id, outcomes, fn, origin))
            board.finish_batch(slot, len(outcomes))
            done += len(outcomes)
            # Drop the batch now, while idle: a __del__ that crashes the worker must not be
            # blamed on the next batch's first item (it would run inside it otherwise).
            del message, blob, items, outcomes
            if max_tasks is not None and done >= max_tasks:
                conn.send_bytes(dumps(("retire", done)))
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


def _run_batch(
    board: ProgressBoard, slot: int, batch_id: int, fn: Any, items: Any, origin: str
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    append = outcomes.append
    for index, (args, kwargs) in enumerate(items):
        board.start_item(slot, batch_id, index)
        try:
            append((True, fn(*args, **kwargs)))
        except BaseException as exc:  # SystemExit included: it fails the task, not the worker
            append((False, dump_exception(exc, origin)))
    return outcomes


def _pack_done(batch_id: int, outcomes: list[Outcome], fn: Any, origin: str) -> bytes:
    try:
        return dumps(("done", batch_id, outcomes))
    except BaseException:  # SystemExit from a __reduce__ too: it must not end the worker
        pass
    # Some result cannot be pickled: find it, fail only that item.
    packed: list[Outcome] = []
    for outcome in outcomes:
        if outcome[0]:
            try:
                dumps(outcome[1])
            except BaseException as exc:
                outcome = (False, dump_exception(_unpicklable_result(fn, outcome[1], exc), origin))  # noqa: PLW2901
        packed.append(outcome)
    return dumps(("done", batch_id, packed))


def _unpicklable_result(fn: Any, value: object, exc: BaseException) -> SerializationError:
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    reason = str(exc) if isinstance(exc, SerializationError) else f"{type(exc).__name__}: {exc}"
    return SerializationError(
        f"the result of task {name} (of type {kind}) could not be pickled in the worker: {reason}"
    )


def _watch_parent() -> None:
    parent = parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)  # the pool is gone: nobody will read our results

    threading.Thread(target=watch, name="workhorse-parent-watchdog", daemon=True).start()
