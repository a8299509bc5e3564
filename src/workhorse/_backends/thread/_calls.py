"""Calling a slice's items in a worker thread: the thread engine's inner loop.

The slice is the thread's cancellation scope while it runs (a timed-out or cancelled slice's
thread stops at its next workhorse call), and an item that raises is recorded, not fatal to
the rest of the slice. Kept apart from the engine because it is the one place whose every
instruction counts per item.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from ... import _cancel
from ..._scheduler._job import ARGS, ITEM
from ..._scheduler._units import Unit

__all__ = ["call_slice"]


def call_slice(
    unit: Unit, ends: list[float] | None = None
) -> tuple[list[Any], dict[int, BaseException]]:
    """Call every item of ``unit``: the values (None where an item raised) and the failures
    by item index; ``ends`` (``insights=True``) gets each item's end time.

    Example::

        values, failures = call_slice(unit)
    """
    job = unit.job
    fn, calls, kind, start = job.fn, job.calls, job.kind, unit.start
    failures: dict[int, BaseException] = {}
    state = _cancel.state
    previous, state.scope = state.scope, unit
    try:
        if unit.stop - start == 1:  # every submit: no loop, no batch list
            try:
                if kind == ITEM:
                    value = fn(calls[start])
                elif kind == ARGS:
                    value = fn(*calls[start])
                else:
                    args, kwargs = calls[start]
                    value = fn(*args, **kwargs)
            except BaseException as exc:  # Cancelled included: it is the task's outcome
                failures[start] = exc
                value = None
            return [value], failures
        if ends is not None:
            return _run_traced(unit, failures, ends), failures
        return _run_many(unit, failures), failures
    finally:
        state.scope = previous


def _run_many(unit: Unit, failures: dict[int, BaseException]) -> list[Any]:
    """Run a slice of several items; ``failures`` gets the ones that raised."""
    job = unit.job
    fn, kind = job.fn, job.kind
    # A private copy that _abandon empties: the loop stops before the next item without
    # testing a flag per item, and an abandoned slice starts no new call.
    batch = unit.batch = job.calls[unit.start : unit.stop]
    items = iter(batch)
    values: list[Any] = []
    append = values.append
    while True:  # the try is outside the loop: it costs nothing until an item raises
        try:
            if kind == ITEM:
                for item in items:
                    append(fn(item))
            elif kind == ARGS:
                for item in items:
                    append(fn(*item))
            else:
                for args, kwargs in items:
                    append(fn(*args, **kwargs))
            return values
        except BaseException as exc:  # Cancelled included: it is the task's outcome
            failures[unit.start + len(values)] = exc
            append(None)


def _run_traced(unit: Unit, failures: dict[int, BaseException], ends: list[float]) -> list[Any]:
    """:func:`_run_many` with each item's end time appended to ``ends``."""
    job = unit.job
    batch = unit.batch = job.calls[unit.start : unit.stop]  # emptied by _abandon, as there
    values: list[Any] = []
    for position, call in enumerate(batch):
        try:
            if job.kind == ITEM:
                values.append(job.fn(call))
            elif job.kind == ARGS:
                values.append(job.fn(*call))
            else:
                args, kwargs = call
                values.append(job.fn(*args, **kwargs))
        except BaseException as exc:  # Cancelled included: it is the task's outcome
            failures[unit.start + position] = exc
            values.append(None)
        ends.append(monotonic())
    return values
