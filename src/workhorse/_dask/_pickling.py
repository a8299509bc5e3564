"""What Dask refuses to pickle, reported as the local pools report it.

``client.submit`` pickles a batch's function and arguments; one that cannot be pickled makes
it raise for the whole batch, after ``distributed.protocol.pickle`` has logged an ERROR with a
traceback. The engine submits under :func:`quiet_pickling` (that record is dropped, in this
thread only) and, when submitting fails, asks :func:`unpicklable_items` which items are to
blame: those fail with the ``SerializationError`` the local pools give, the others are queued
again. Results are checked in the worker (``_runner._check_results``).

Example::

    with quiet_pickling():
        client.submit(run_batch, ...)
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from .._errors import SerializationError
from .._scheduler._units import Unit
from .._serialize import dumps

__all__ = ["quiet_pickling", "unpicklable_items"]


class _QuietPickling(logging.Filter):
    """Drops the ERROR record (with traceback) ``distributed.protocol.pickle`` writes before it
    raises, while this thread submits: the engine reports the refusal itself, precisely."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "active", False)


_QUIET = _QuietPickling()
logging.getLogger("distributed.protocol.pickle").addFilter(_QUIET)


@contextlib.contextmanager
def quiet_pickling() -> Iterator[None]:
    """Drop ``distributed.protocol.pickle``'s records in this thread meanwhile."""
    _QUIET.local.active = True
    try:
        yield
    finally:
        _QUIET.local.active = False


def unpicklable_items(unit: Unit) -> dict[int, BaseException]:
    """The items of ``unit`` that cannot be sent, each with the ``SerializationError`` the
    local pools give (all of them if the function cannot be pickled); empty if everything
    pickles (the cluster refused the batch for another reason)."""
    job = unit.job
    try:
        dumps(job.fn, what=f"the function of {job.describe(unit.start)}")
    except SerializationError as refused:
        return dict.fromkeys(range(unit.start, unit.stop), refused)
    bad: dict[int, BaseException] = {}
    for index in range(unit.start, unit.stop):
        try:
            dumps([job.calls[index]], what=f"an argument of {job.describe(index)}")
        except SerializationError as culprit:
            bad[index] = culprit
    return bad
