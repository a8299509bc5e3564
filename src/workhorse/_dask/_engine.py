"""The Dask engine: a job's items run in batches, one Dask task per batch.

A Dask task costs about 1.7 ms of scheduling (``client.map`` of no-ops: ~600 tasks/s on two
cores), so items go in batches sized by the same adaptive :class:`~.._engine._batching.Batcher`
as the local engines, aiming at about 400 ms of work per batch (forty times the local target:
a Dask task costs the scheduler, the worker's event loop and the client about 5 ms, taken
from the compute when they share the cores; 100 ms batches reached 0.72-0.79 of ideal on
2 cores, 400 ms 0.82-0.85, before the other changes in docs/benchmarks.md). The tail stays
even: a batch is never more than a fair share of what is pending over every batch slot --
nor less than about 50 ms of work, so that the tail does not shrink to one-item batches that
cost more than they balance (about 5 ms of Dask per batch here against a 20 ms item). At
most ``2 * workers`` batches are in flight, so a worker always has its next batch at hand
while the client handles the last one.

Outcomes come back in the Dask callback thread (``Future.add_done_callback``): they are
settled by :class:`~._outcomes.BatchOutcomes` (what a lost batch's record means), which
delivers them to the job's sink; then more batches are dispatched.

Batches are sent by :mod:`._submit` (all those ready at once in one Dask call; large NumPy
arguments scattered once).
"""

from __future__ import annotations

import itertools
import threading
import uuid
import weakref
from typing import Any

from .._backend import BackendBase
from .._errors import PoolBroken
from .._options import TaskOptions
from .._scheduler._batching import Batcher
from .._scheduler._events import PoolEvents
from .._scheduler._job import FutureSink, Job
from .._scheduler._units import Pending, Unit
from .._serialize import unpicklable
from . import _extension, _runner
from ._outcomes import BatchOutcomes
from ._pickling import unpicklable_items
from ._submit import Batch, submit

__all__ = ["DaskEngine"]

BATCH_SECONDS = 0.4  # of work per batch: 40x the local engines' target
# No batch shorter than this, even in the tail: a Dask task costs ~5 ms of scheduler, worker
# and client time here, so a tail shrinking to one 20 ms item per batch spends more on the
# extra batches than it saves in balance (simulated and measured: see docs/benchmarks.md).
MIN_BATCH_SECONDS = 0.05


class DaskEngine(BatchOutcomes, BackendBase):
    """Runs jobs as batches of Dask tasks on ``client``'s cluster.

    Example::

        engine = DaskEngine(client)
        assert engine.submit(sum, ([1, 2],), {}, engine.options).result() == 3
        engine.shutdown()
    """

    def __init__(
        self,
        client: Any,
        workers: int | None = None,
        *,
        options: TaskOptions | None = None,
        chunksize: int | None = None,
        events: PoolEvents | None = None,
        shared: Any = None,
    ) -> None:
        self.client = client
        # shared=: on every worker once (Dask's broadcast scatter); each batch names it, so
        # a worker that joins later fetches it from one that has it.
        self._shared: Any = None if shared is None else _scatter_shared(client, shared)
        self.events = events or PoolEvents("dask")
        threads = sum(client.nthreads().values()) or 1
        self.workers = workers or threads
        self.options = options or TaskOptions()
        self._capacity = 2 * self.workers
        # The Dask tail is shared over every batch slot already (see _take), with a floor.
        self._batcher = Batcher(chunksize, target=BATCH_SECONDS, floor=MIN_BATCH_SECONDS, spread=1)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = Pending()
        self._inflight: set[Batch] = set()
        self._closing = False
        self._prefix = f"workhorse-{uuid.uuid4().hex[:12]}"
        self._keys = itertools.count()
        self._records = _extension.PoolRecords(client, self._prefix)  # where batches keep them
        self.feeds: weakref.WeakSet[Any] = weakref.WeakSet()  # the lazy maps open on it
        self.events.started(self.workers, f"Dask, scheduler {client.scheduler.address}")

    # -- the engine interface ----------------------------------------------------------
    def run(self, job: Job) -> None:
        """Queue every call of ``job``; outcomes go to its sink."""
        with self._lock:
            if self._closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._pending.add(job)
        self._pump()

    def stop_job(self, job: Job) -> None:
        """Stop the running batches of ``job`` (their workers are killed and restarted)."""
        with self._lock:
            doomed = [b for b in self._inflight if b.unit.job is job]
            for batch in doomed:
                batch.stopping = "cancelled"
        self._stop([b.key for b in doomed])

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more jobs; finish (or drop) what is queued; ``wait`` for the batches."""
        self.events.shutting_down(wait, cancel_futures)
        with self._lock:
            self._closing = True
            if cancel_futures:
                self._pending.drop_all()
            if wait:
                while self._pending or self._inflight:
                    self._idle.wait()
                self._shared = None  # every batch is done: the cluster may drop the data
        self._close_records()

    def terminate(self) -> None:
        """Drop every queued item and stop every running batch now."""
        self.events.shutting_down(False, True)
        with self._lock:
            self._closing = True
            self._pending.drop_all()
            running = list(self._inflight)
            for batch in running:
                batch.stopping = "terminated"
        self._stop([b.key for b in running])
        self._close_records()  # now if nothing runs; else when the last stopped batch settles

    @property
    def alive(self) -> bool:
        """True while any batch is queued or running."""
        return bool(self._pending or self._inflight)

    # -- dispatch ---------------------------------------------------------------------

    def _take(self) -> Unit | None:
        """The next unit to send as a batch (lock held), or None."""
        pending = self._pending
        if len(self._inflight) >= self._capacity:
            return None
        unit = pending.head(start=True)
        if unit is None:
            return None
        if unit.isolate or type(unit.job.sink) is FutureSink:
            size = 1
        else:
            # fair share over every batch slot, not every worker: the tail of a map then
            # spreads in small batches instead of idling one worker for a big one
            size = unit.job.chunksize or self._batcher.size(
                pending.items, self._capacity, unit.job.fn
            )
        return pending.take(size)

    def _pump(self) -> None:
        """Send batches while there is room (never with the lock held: submit may block)."""
        while True:
            batches = []
            with self._lock:
                while (unit := self._take()) is not None:
                    batch = Batch(unit, f"{self._prefix}-{next(self._keys)}")
                    self._inflight.add(batch)
                    batches.append(batch)
            if not batches:
                return
            timed = self.events.per_task is not None
            try:
                refusals = submit(self.client, batches, shared=self._shared, timed=timed)
            except BaseException:  # Ctrl-C while pickling: what was not sent stays queued
                for batch in batches:
                    if batch.future is not None:
                        batch.future.add_done_callback(lambda _, b=batch: self._settle(b))
                    else:
                        self._requeue(batch.unit)
                        self._finish(batch)
                raise
            for batch, refusal in zip(batches, refusals, strict=True):
                if refusal is None:
                    batch.future.add_done_callback(lambda _, b=batch: self._settle(b))
                else:
                    self._refused(batch, refusal)

    def _refused(self, batch: Batch, exc: BaseException) -> None:
        """Dask refused ``batch``: the items that do not pickle fail, the others run."""
        unit, job = batch.unit, batch.unit.job
        failures = unpicklable_items(unit)  # they fail (a retry would fail again)
        if not failures:
            error = PoolBroken(f"the Dask cluster refused the batch: {exc}")
            error.__cause__ = exc
            self.events.broken(error)
            failures = dict.fromkeys(range(unit.start, unit.stop), error)
        with self._lock:  # the others run
            for index in reversed(range(unit.start, unit.stop)):
                if index not in failures:
                    self._pending.retry(job, index, unit.attempt)
        self._finish(batch)  # after the retries: a closing pool must not look idle
        for index, failure in failures.items():
            job.sink.fail(index, failure)

    def _stop(self, keys: list[str]) -> None:
        if keys:
            try:  # every worker looks for them: only the scheduler knows where each runs
                self.client.run(_runner.stop_batches, keys)
            except Exception:
                pass

    # -- outcomes (in the Dask callback thread) ----------------------------------------

    def _finish(self, batch: Batch) -> bool:
        """``batch`` is no longer in flight; True if nothing is left to run."""
        with self._lock:
            self._inflight.discard(batch)
            idle = not self._pending and not self._inflight
            if idle:
                self._idle.notify_all()
        self._close_records()
        return idle

    def _close_records(self) -> None:
        """Drop the pool's records on the scheduler once it is closing and idle."""
        with self._lock:
            idle = self._closing and not self._pending and not self._inflight
        if idle:
            self._records.close()

    def _settle(self, batch: Batch) -> None:
        try:
            self._outcome(batch)
        finally:
            # Release the result on the cluster now, not when the Future is collected: a
            # worker that dies while still holding it would make Dask recompute it for nobody.
            batch.future.release()
            idle = self._finish(batch)
            self._pump()  # before the record's deletion, which may be a scheduler round trip
            self._records.forget(batch.key, now=idle)

    def _requeue(self, unit: Unit) -> None:
        with self._lock:
            self._pending.push_front([unit])


def _scatter_shared(client: Any, obj: Any) -> Any:
    """A future of ``obj`` copied to every worker of the cluster (``shared=``)."""
    try:  # in a list: scatter would spread a list's or dict's own items
        return client.scatter([obj], broadcast=True, hash=False)[0]
    except Exception as exc:
        raise unpicklable(obj, "shared", exc) from exc
