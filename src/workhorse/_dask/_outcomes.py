"""How the Dask engine settles a batch: its result, or what its record says when it was lost.

A batch that returned is delivered item by item (its failed items fail, or are retried). A
batch whose worker died (``KilledWorker`` where ``distributed.scheduler.allowed-failures`` is
0; a :class:`~._runner.Replayed` from Dask's own second attempt where it is not) is settled
from its record (see :mod:`._runner`):

=====================================  =================================================
record                                 what happens
=====================================  =================================================
none (the batch never started)         re-run whole (a bystander queued on the worker)
``finished`` (result lost with it)     re-run whole (it ran to the end: not the culprit)
``started``, one item                  that item fails with ``WorkerCrashed`` (or retries)
``started``, several items             each item re-run alone, so the next death names
                                       the culprit ("isolation"); the culprit runs twice
``timeout`` at item *i*                items before *i* delivered, *i* fails with
                                       ``TaskTimeout``, the rest re-run
``cancelled`` at item *i*              items before *i* delivered, the rest dropped
``collateral`` at item *i*             items before *i* delivered, the rest re-run
=====================================  =================================================

Example (the engine mixes it in; these run in Dask's callback thread)::

    class DaskEngine(BatchOutcomes, BackendBase): ...
    engine._outcome(batch)  # delivers, fails, or re-queues the batch's items
"""

from __future__ import annotations

import time
from concurrent.futures import CancelledError
from typing import Any

from .._errors import WorkerCrashed
from .._remote import load_exception
from .._scheduler._batching import Batcher
from .._scheduler._events import PoolEvents
from .._scheduler._outcomes import Requeue, deliver, fail_or_retry, timeout_error
from .._scheduler._units import Unit
from . import _extension, _runner
from ._submit import Batch

__all__ = ["MAX_LOST", "BatchOutcomes"]

MAX_LOST = 3  # a batch lost this often without ever starting fails instead of looping


class BatchOutcomes:
    """The settling half of :class:`~._engine.DaskEngine` (see the module docstring)."""

    events: PoolEvents
    _batcher: Batcher
    _records: _extension.PoolRecords

    def _requeue(self, unit: Unit) -> None:  # the engine's: back to the front of the queue
        raise NotImplementedError

    def _outcome(self, batch: Batch) -> None:
        unit, future = batch.unit, batch.future
        error: BaseException | None = None
        if future.status != "finished":
            try:
                # A batch that finished on a worker which then died before its result was
                # fetched is "lost" here, not failed: Dask recomputes it elsewhere (it never
                # ran into the death, so it is no KilledWorker), and this waits for that second
                # run. Its record says "started" but must not be read as "running when the
                # worker died".
                error = future.exception()
            except BaseException as exc:  # a cancelled Dask future raises instead
                error = exc
        if error is None and future.status == "finished":
            try:
                result = future.result()
            except BaseException as exc:  # lost again while fetching, and this time failed
                error = exc
            else:
                if isinstance(result, _runner.Replayed):  # Dask's own retry of a lost batch
                    record = _extension.PoolRecords.decode(result.record)
                    if batch.stopping is not None:
                        self._stopped(batch, record)
                    else:
                        self._lost(batch, record)
                    return
                values, errors, seconds, pid, offsets = result
                self._batcher.observe(len(values), seconds, unit.job.fn)
                started = time.monotonic() - seconds  # placed by its arrival (module docstring)
                ends = None if offsets is None else [started + o for o in offsets]
                self.events.ran(
                    f"pid {pid}", len(values), seconds, job=unit.job, index=unit.start,
                    started=started, ends=ends,
                )  # fmt: skip
                self._deliver(unit, unit.start, values, errors)
                return
        if error is None:  # cancelled by Dask itself (a dependency lost): run it again
            error = CancelledError()
        from distributed import KilledWorker

        if batch.stopping is not None:
            self._stopped(batch, self._records.read(batch.key))
        elif isinstance(error, (KilledWorker, CancelledError)) or future.status == "lost":
            self._lost(batch, self._records.read(batch.key))
        else:  # the batch itself could not run (its arguments or results did not pickle)
            for index in range(unit.start, unit.stop):
                self._failed(unit, index, error)

    def _stopped(self, batch: Batch, record: Any) -> None:
        """A batch we stopped (cancel or terminate): deliver what finished, drop the rest."""
        unit = batch.unit
        done = unit.start
        if record is not None and record[0] not in (_runner.STARTED, _runner.FINISHED):
            _, index, values, errors, _pid = record
            self._deliver(unit, unit.start, values, errors)
            done = unit.start + index
        unit.job.sink.drop(done, unit.stop)

    def _lost(self, batch: Batch, record: Any) -> None:
        unit = batch.unit
        job = unit.job
        if record is None or record[0] == _runner.FINISHED:
            # never started, or finished before its worker died (its result went with it):
            # a bystander of another batch's death
            if unit.lost + 1 >= MAX_LOST:
                crash = WorkerCrashed(f"{job.describe(unit.start)} (batch lost)", None, None)
                for index in range(unit.start, unit.stop):
                    self._failed(unit, index, crash)
            else:
                self._requeue(Unit(job, unit.start, unit.stop, unit.attempt, lost=unit.lost + 1))
            return
        if record[0] == _runner.STARTED:
            pid = record[1]
            task = job.describe(unit.start) if unit.stop - unit.start == 1 else None
            self.events.worker_died(pid, "its Dask worker was lost", task)
            self.events.worker_exited(f"pid {pid}", "lost")
            if unit.stop - unit.start == 1:
                exitcode = self._records.exit_status(record[2], pid) if len(record) > 2 else None
                crash = WorkerCrashed(job.describe(unit.start), pid, exitcode)
                self._failed(unit, unit.start, crash)
            else:  # one of these killed the worker: run each alone to find which
                for index in reversed(range(unit.start, unit.stop)):
                    self._requeue(Unit(job, index, index + 1, unit.attempt, isolate=True))
            return
        reason, index, values, errors, _pid = record
        self._deliver(unit, unit.start, values, errors)
        at = unit.start + index
        rest = at
        if reason == "timeout":
            what = "killing its Dask worker (its nanny restarts it)"
            self.events.timed_out(job.describe(at), job.options.timeout, what)
            self._failed(unit, at, timeout_error(job, at, _KILLED_TO_STOP))
            rest = at + 1
        elif reason == "cancelled":
            job.sink.drop(at, unit.stop)
            return
        if rest < unit.stop:
            self._requeue(Unit(job, rest, unit.stop, unit.attempt, isolate=unit.isolate))

    def _deliver(self, unit: Unit, start: int, values: list[Any], errors: dict[int, bytes]) -> None:
        failures = {start + offset: load_exception(blob) for offset, blob in errors.items()}
        requeue = self._requeue_for(unit)
        deliver(unit.job, start, values, failures, unit.attempt, requeue, self.events)

    def _failed(self, unit: Unit, index: int, error: BaseException) -> None:
        fail_or_retry(unit.job, index, unit.attempt, error, self._requeue_for(unit), self.events)

    def _requeue_for(self, unit: Unit) -> Requeue:
        def requeue(index: int, attempt: int) -> None:
            self._requeue(Unit(unit.job, index, index + 1, attempt, isolate=unit.isolate))

        return requeue


_KILLED_TO_STOP = "its Dask worker was killed (and restarted by its nanny) to stop it"
