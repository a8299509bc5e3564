"""The worker side of the Dask engine: one Dask task runs one batch of a job's items.

Dask has no per-task timeout and cannot stop a running task, and a batch's results only
travel back when the whole batch returns. So each batch leaves a *record* on the scheduler
(kept by workhorse's scheduler extension, :mod:`._extension`), which the client reads only
when the batch's worker died:

* ``("started", pid, address)`` -- written synchronously before the first item runs (one scheduler
  round trip per batch, about 1 ms). A lost batch without it never started: it is innocent
  and re-run whole. A lost batch with it was running when its worker died.
* ``("finished", pid)`` -- written synchronously after the last item, before the batch
  returns. A worker can die (running its next batch) before the scheduler has heard that this
  one finished -- its messages go out in batches -- and Dask then reports this batch lost with
  the culprit; this mark clears it: it is re-run whole, as an innocent bystander.
* ``(reason, index, values, errors, pid)`` -- written by :func:`_die` before this process
  kills itself on purpose: item ``index`` ran past its timeout (``"timeout"``) or was
  cancelled (``"cancelled"``); ``values``/``errors`` are the outcomes of the items before it,
  so finished work is never recomputed. ``"collateral"`` marks the other batches of the
  process (a worker with several threads), which are re-run from ``index``.

A batch that finds a record of its own when it begins is a second attempt: Dask re-ran it
after its worker died (a cluster whose ``allowed-failures`` is above 0). It does not run
again but returns :class:`Replayed` with that record, and the client settles it as it would
a ``KilledWorker`` -- so a timeout fires once, and a crash is isolated, at Dask's defaults.

Why kill the worker process: a Python thread cannot be stopped, and running each item in a
subprocess of the worker would double every transfer. Killing the process (SIGKILL) is the
only way to really stop native code; the Dask nanny restarts the worker (40-60 ms on the
embedded cluster, which forks it from a forkserver; 0.3 s when Dask spawns it), and every
other batch on it is re-run by the client. The watchdog is one thread per worker process,
started with its first batch that has a timeout.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from .._remote import dump_exception
from .._scheduler._job import ARGS, ITEM
from .._serialize import PROTOCOL, dumps, fallback_dumps, unpicklable_result
from .._worker_info import WorkerInfo, enter, leave

__all__ = ["FINISHED", "STARTED", "Replayed", "pool_of", "run_batch", "stop_batches"]

STARTED = "started"
FINISHED = "finished"


class Replayed:
    """What a second attempt at a batch returns instead of running: ``record`` (pickled)
    is what the first attempt left when its worker died."""

    __slots__ = ("record",)

    def __init__(self, record: bytes) -> None:
        self.record = record

    def __reduce__(self) -> tuple[Any, ...]:
        return (Replayed, (self.record,))


def pool_of(key: str) -> str:
    """The pool a batch key belongs to (keys are ``<pool>-<n>``)."""
    return key.rpartition("-")[0]


def _write(batch: _Running, record: tuple[Any, ...]) -> None:
    from . import _extension

    _extension.mark(batch.client, pool_of(batch.key), batch.key, dumps(record, what="record"))


class _Running:
    """A batch running in this process: where it is, for the watchdog and stops."""

    __slots__ = ("client", "errors", "index", "item_started", "key", "values")

    def __init__(self, key: str, client: Any) -> None:
        self.key, self.client = key, client
        self.index = 0
        self.item_started = time.monotonic()
        self.values: list[Any] = []
        self.errors: dict[int, bytes] = {}


_lock = threading.Lock()
_running: dict[str, _Running] = {}
_deadlines: list[tuple[float, int, int, _Running]] = []  # (at, seq, item index, batch)
_seq = itertools.count()
_wake = threading.Condition(_lock)
_watchdog: threading.Thread | None = None
_dying = False
_state_info: WorkerInfo | None = None  # this worker process's (see _info)


def run_batch(
    key: str, fn: Callable[..., Any], calls: list[Any], kind: str, timeout: float | None,
    shared: Any = None, timed: bool = False,
) -> tuple[list[Any], dict[int, bytes], float, int, list[float] | None] | Replayed:  # fmt: skip
    """Run ``calls`` of ``fn`` in this Dask worker; ``(values, errors, seconds, pid, ends)``,
    ``ends`` (``timed``, for ``insights=True``): when each item ended, in seconds from the
    batch's start (this worker's clock is not the client's). :class:`Replayed` instead if
    this is a second attempt (see the module docstring).

    An item that raises gets ``None`` in ``values`` and its pickled exception (with
    traceback) in ``errors``, so one failure never hides the rest of the batch.

    Example::

        client.submit(run_batch, "wh-1", abs, [-1, 2], ITEM, None, key="wh-1")
    """
    from distributed import get_client, get_worker

    from . import _extension

    client = get_client()
    # the worker's address: its nanny reports the process's exit code under it
    started = dumps((STARTED, os.getpid(), get_worker().address), what="record")
    earlier = _extension.begin(client, pool_of(key), key, started)
    if earlier is not None:
        return Replayed(earlier)
    batch = _Running(key, client)
    with _lock:
        _running[key] = batch
    began = time.monotonic()
    values, errors = batch.values, batch.errors
    ends: list[float] | None = [] if timed else None
    info = _info()
    if shared is not None:  # this pool's shared= (Dask resolved its future): for this batch
        info = dataclasses.replace(info, shared=shared)
    previous = enter(info)
    try:
        for index, call in enumerate(calls):
            batch.index = index
            if timeout is not None:
                _watch(batch, index, timeout)
            try:
                if kind == ITEM:
                    values.append(fn(call))
                elif kind == ARGS:
                    values.append(fn(*call))
                else:
                    args, kwargs = call
                    values.append(fn(*args, **kwargs))
            except BaseException as exc:  # the item's outcome, whatever it is
                errors[index] = dump_exception(exc, f"a Dask worker (pid {os.getpid()})")
                values.append(None)
            if ends is not None:
                ends.append(time.monotonic() - began)
    finally:
        with _lock:
            _running.pop(key, None)
            batch.index = len(calls)  # the watchdog's pending deadlines no longer apply
        leave(previous)
    seconds = time.monotonic() - began
    _check_results(fn, values, errors)
    _write(batch, (FINISHED, os.getpid()))
    return values, errors, seconds, os.getpid(), ends


def _check_results(fn: Callable[..., Any], values: list[Any], errors: dict[int, bytes]) -> None:
    """A result Dask cannot pickle must fail its own item, as on the local pools
    (``SerializationError`` naming the task and the type), not the whole batch with Dask's
    own error and traceback. Buffers are not copied to check (they always pickle)."""
    try:
        pickle.dumps(values, PROTOCOL, buffer_callback=_out_of_band)
        return
    except Exception:
        pass
    for index, value in enumerate(values):
        if index in errors:
            continue
        try:
            pickle.dumps(value, PROTOCOL, buffer_callback=_out_of_band)
            continue
        except Exception:
            pass
        try:  # Dask falls back to cloudpickle too
            fallback_dumps(value, buffer_callback=_out_of_band)
        except Exception as exc:
            error = unpicklable_result(fn, value, exc)
            errors[index] = dump_exception(error, f"a Dask worker (pid {os.getpid()})")
            values[index] = None


def _out_of_band(_: pickle.PickleBuffer) -> bool:
    return False


def _info() -> WorkerInfo:
    """``workhorse.worker()`` in a task: this Dask worker (its name as the id), with one
    ``state`` dict per worker process."""
    global _state_info
    from distributed import get_worker

    if _state_info is None:
        dask_worker = get_worker()
        _state_info = WorkerInfo(dask_worker.name, os.getpid(), dask_worker.address, "dask")
    return _state_info


def stop_batches(keys: list[str]) -> int:
    """Stop the batches ``keys`` if one runs in this process (called by ``client.run`` on
    every worker); returns how many were found. The process dies: only that stops them."""
    with _lock:
        found = [_running[k] for k in keys if k in _running]
    if found:
        # client.run calls us on the worker's event loop: a blocking scheduler call here would
        # deadlock it, so the record is written (and the process killed) from a thread.
        threading.Thread(target=_die, args=(found[0], "cancelled"), daemon=True).start()
    return len(found)


def _watch(batch: _Running, index: int, timeout: float) -> None:
    global _watchdog
    with _lock:
        batch.item_started = time.monotonic()
        heapq.heappush(_deadlines, (batch.item_started + timeout, next(_seq), index, batch))
        if _watchdog is None:
            _watchdog = threading.Thread(target=_enforce, name="workhorse-dask-watchdog")
            _watchdog.daemon = True
            _watchdog.start()
        _wake.notify()


def _enforce() -> None:
    with _lock:
        while True:
            if not _deadlines:
                _wake.wait()
                continue
            at, _, index, batch = _deadlines[0]
            left = at - time.monotonic()
            if left > 0:
                _wake.wait(left)
                continue
            heapq.heappop(_deadlines)
            if batch.index == index and batch.key in _running:
                break
    _die(batch, "timeout")


def _die(culprit: _Running, reason: str) -> None:
    """Leave a record for every batch running here, then kill this process."""
    global _dying
    with _lock:
        if _dying:
            return
        _dying = True
        batches = list(_running.values())
    for batch in batches:
        index = batch.index
        why = reason if batch is culprit else "collateral"
        record = (why, index, batch.values[:index], dict(batch.errors), os.getpid())
        try:
            _write(batch, record)
        except Exception:  # the record is advice: without it the batch is isolated
            pass
    os.kill(os.getpid(), signal.SIGKILL)
