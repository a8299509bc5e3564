"""Handing batches to the cluster: every batch ready at once goes in one Dask call.

A pool's first batches are all ready together (two per worker thread). Submitted one by one,
each is its own graph update on the scheduler, and the second worker's first batch started
9.6 ms after the call, the fourth 16.6 ms (medians of 30 on two workers); in one
``client.map`` they started at 5.3 and 7.1 ms, and the scheduler unpacked one graph instead
of four.

When Dask refuses the group (an argument that does not pickle), each batch is sent alone so
that only the batch that holds it is refused. Those get fresh keys (``<key>r``): Dask had
already made a ``Future`` for every key of the refused group, and each releases its key on
the scheduler when it is collected, which could land after the same key was sent again.

Large NumPy arguments (>= :data:`SCATTER_BYTES`) are sent once with ``client.scatter`` and
referenced by the task, so they travel worker to worker, not through the scheduler.

Example::

    batch = Batch(unit, "workhorse-1234-0")
    refusals = submit(client, [batch], shared=None, timed=False)
    assert refusals == [None] and batch.future is not None
"""

from __future__ import annotations

import sys
from typing import Any

from .._scheduler._job import ARGS, ITEM
from .._scheduler._units import Unit
from . import _runner
from ._pickling import quiet_pickling

__all__ = ["SCATTER_BYTES", "Batch", "submit"]

SCATTER_BYTES = 1 << 20  # NumPy arguments at least this large go through client.scatter


class Batch:
    """One Dask task's share of a job: items ``unit.start`` to ``unit.stop``."""

    __slots__ = ("future", "key", "scattered", "stopping", "unit")

    def __init__(self, unit: Unit, key: str) -> None:
        self.unit, self.key = unit, key
        self.future: Any = None
        self.scattered: list[Any] = []  # keeps scattered arguments alive while it runs
        self.stopping: str | None = None  # "cancelled" / "terminated" once we stop it


def submit(
    client: Any, batches: list[Batch], *, shared: Any, timed: bool
) -> list[BaseException | None]:
    """Send ``batches`` (each gets its ``future``); per batch, None or the exception with
    which Dask refused it."""
    refusals: list[BaseException | None] = [None] * len(batches)
    args: list[tuple[Any, ...]] = []
    for position, batch in enumerate(batches):
        try:
            args.append(_arguments(client, batch, shared, timed))
        except Exception as exc:  # scattering a large argument failed: the cluster is gone
            refusals[position] = exc
            args.append(())
    ready = [p for p, refusal in enumerate(refusals) if refusal is None]
    if len(ready) > 1:
        try:
            with quiet_pickling():  # a refusal is ours to report (see _pickling)
                futures = client.map(
                    _runner.run_batch, *zip(*(args[p] for p in ready), strict=True),
                    key=[batches[p].key for p in ready], pure=False,
                )  # fmt: skip
        except Exception:  # one of them cannot go: each alone, to learn which
            for p in ready:
                batches[p].key += "r"  # still <pool>-<n...>: see _runner.pool_of
        else:
            for p, future in zip(ready, futures, strict=True):
                batches[p].future = future
            return refusals
    for p in ready:
        batch = batches[p]
        try:
            with quiet_pickling():
                batch.future = client.submit(
                    _runner.run_batch, batch.key, *args[p][1:], key=batch.key, pure=False
                )
        except Exception as exc:  # something cannot be pickled, or the cluster is gone
            refusals[p] = exc
    return refusals


def _arguments(client: Any, batch: Batch, shared: Any, timed: bool) -> tuple[Any, ...]:
    """:func:`~._runner.run_batch`'s arguments for ``batch`` (large arrays scattered)."""
    unit = batch.unit
    job = unit.job
    calls = _scatter(client, batch, job.calls[unit.start : unit.stop], job.kind)
    return (batch.key, job.fn, calls, job.kind, job.options.timeout, shared, timed)


def _scatter(client: Any, batch: Batch, calls: list[Any], kind: str) -> list[Any]:
    """``calls`` with every large NumPy array replaced by a future of its scattered copy
    (Dask resolves futures nested in task arguments)."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return calls
    ndarray = numpy.ndarray

    def big(value: Any) -> bool:
        return isinstance(value, ndarray) and value.nbytes >= SCATTER_BYTES

    def swap(value: Any) -> Any:
        if not big(value):
            return value
        # hash=False: a key of its own, so that releasing another batch's copy of the same
        # array never cancels this batch
        future = client.scatter(value, direct=False, hash=False)
        batch.scattered.append(future)
        return future

    out = calls
    for position, call in enumerate(calls):
        if kind == ITEM:
            new: Any = swap(call)
        elif kind == ARGS:
            new = tuple(swap(a) for a in call) if any(big(a) for a in call) else call
        else:
            args, kwargs = call
            if any(big(a) for a in args) or any(big(v) for v in kwargs.values()):
                new = (tuple(swap(a) for a in args), {k: swap(v) for k, v in kwargs.items()})
            else:
                new = call
        if new is not call:
            if out is calls:
                out = list(calls)
            out[position] = new
    return out
