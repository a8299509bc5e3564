"""The process backend's dispatch: batches for idle workers, pickled ahead while they work.

Part of :class:`~._core.ProcessEngine` (see :mod:`._manager`); runs in the manager thread.
A worker that becomes idle gets its staged batch, or a new one taken from the pending
queue, or a batch staged for a busy worker (so a long task never holds back work an idle
worker could run). See the invariants in :mod:`._core`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..._scheduler._job import CALL, Job
from ..._scheduler._units import Unit
from ..._serialize import dumps
from ._manager import ManagerState
from ._wire import Batch, ProcessWorker, Unpicklable, pack_calls
from ._worker import BULK, INDEXED, TIMED, TRACED
from ._zerocopy import discard

__all__ = ["BULK_MIN", "Dispatch"]

BULK_MIN = 64  # a batch this large is of fast items: run it in C (see _worker.BULK)


class Dispatch(ManagerState):
    """Sending work to idle workers (part of ``ProcessEngine``)."""

    if TYPE_CHECKING:

        def _start_worker(self, slot: int, *, directly: bool = False) -> None: ...

    def _dispatch(self) -> None:
        pending = self._pending
        if pending and self._idle_timeout is not None:
            self._start_idle_slots()
        # Workers still starting take a batch too (their pipe holds it until they are
        # ready), as the stdlib's call queue takes tasks before its workers run: futures
        # become RUNNING as soon as a worker exists for them.
        for worker in self._slots:
            if worker is None:
                continue
            if self._max_tasks is not None and worker.done >= self._max_tasks:
                continue  # it is about to retire: a batch sent now would die with it
            # Loop: a batch can come out empty (cancelled tasks) or fail to pickle, and the
            # worker must not stay idle while tasks wait -- nothing else would wake us.
            while worker.batch is None:
                if worker.staged is not None:
                    staged, worker.staged = worker.staged, None
                    self._send(worker, staged)
                elif pending:
                    parts = self._take_batch(worker)
                    batch = self._prepare(parts) if parts else None
                    if batch is not None:
                        self._send(worker, batch)
                else:
                    stolen = self._steal_staged()
                    if stolen is None:
                        break
                    self._send(worker, stolen)
        if self._max_tasks is not None:
            return  # a staged batch could overshoot a worker's task limit
        for worker in self._slots:
            while (
                pending and worker is not None and worker.batch is not None
                and worker.staged is None and worker.kill_reason is None
            ):  # fmt: skip
                parts = self._take_batch(worker)
                worker.staged = self._prepare(parts) if parts else None

    def _steal_staged(self) -> Batch | None:
        """A batch staged for a busy worker, for one that is idle."""
        for worker in self._slots:
            if worker is not None and worker.staged is not None:
                staged, worker.staged = worker.staged, None
                return staged
        return None

    def _start_idle_slots(self) -> None:
        """Start workers in the slots emptied by ``idle_timeout``, as many as work needs."""
        wanted = self._pending.items - sum(1 for w in self._slots if w is not None)
        for slot, worker in enumerate(self._slots):
            if wanted <= 0 or self._terminating or self._broken is not None:
                return
            if worker is None:
                self._start_worker(slot)
                wanted -= 1

    def _take_batch(self, worker: ProcessWorker) -> list[Unit]:
        head = self._pending.head(start=False)
        if head is None:
            return []
        # A fair share of what is pending among *all* workers, not the idle ones: the first
        # worker to come back must not take the whole tail (long tasks often end an input).
        if head.isolate:
            size = 1
        else:
            size = head.job.chunksize or self._batcher.size(
                self._pending.items, self.workers, head.job.fn
            )
        if self._max_tasks is not None:
            size = max(1, min(size, self._max_tasks - worker.done))
        return self._pending.take_batch(size)

    def _prepare(self, parts: list[Unit]) -> Batch | None:
        """Pickle a batch; None if that failed (its items were failed or split apart)."""
        first = parts[0]
        function = self._function_id(first.job, parts)
        if function is None:
            return None
        fn_id, fn_blob = function
        if len(parts) == 1:
            calls = first.job.calls[first.start : first.stop]
        else:
            calls = [c for part in parts for c in part.job.calls[part.start : part.stop]]
        began = time.perf_counter()
        try:
            if len(calls) == 1:
                what = f"an argument of {first.job.describe(first.start)}"
            else:
                what = "the arguments"
            blob, segments = pack_calls(calls, what, self._arg_prefix, self._main_by_value)
        except Unpicklable as exc:
            if len(calls) == 1:
                first.job.sink.fail(first.start, exc.error)  # not retried: it would fail again
            else:  # find the culprit: one item per batch from now on
                self._push_front([one for part in parts for one in part.singles()])
            return None
        batch_id = next(self._ids)
        if self.events.per_task is not None:  # insights=True: each item's end time
            mode = TRACED
        elif any(part.job.options.timeout for part in parts):
            mode = TIMED
        elif len(calls) >= BULK_MIN and first.job.kind != CALL:
            mode = BULK
        else:
            mode = INDEXED
        message = dumps(("batch", batch_id, fn_id, first.job.kind, mode, blob))
        batch = Batch(batch_id, parts, segments, fn_id, fn_blob, message)
        batch.pickling = time.perf_counter() - began
        return batch

    def _send(self, worker: ProcessWorker, batch: Batch) -> None:
        """Hand ``batch`` to the idle ``worker`` (its function first, if it lacks it) --
        unless one of its jobs was cancelled while the batch waited (a future is cancellable
        until here): then the rest goes back to the queue and ``worker`` stays idle."""
        if not all(part.job.sink.start() for part in batch.parts):
            if batch.segments:
                discard(batch.segments)
            wanted = []
            for part in batch.parts:
                if part.job.sink.wanted():
                    wanted.append(part)
                else:
                    part.job.sink.discarded(len(part))
            self._push_front(wanted)
            return
        worker.batch = batch
        batch.sent_at = time.monotonic()
        try:
            if batch.fn_id not in worker.fns:
                worker.conn.send_bytes(dumps(("fn", batch.fn_id, batch.fn_blob)))
                worker.fns.add(batch.fn_id)
            worker.conn.send_bytes(batch.message)
        except OSError:
            pass  # the worker died: its sentinel reports it and the batch is recovered

    def _function_id(self, job: Job, parts: list[Unit]) -> tuple[int, bytes] | None:
        """The id and pickle of ``job``'s function; None if it cannot be pickled (then every
        item of it, sent or queued, failed with the error)."""
        fn = job.fn
        # A main-script function defined after the template was forked is not in the
        # workers' main module: it travels by value.
        by_value = self._main_by_value or (
            self._template is not None and not self._template.knows(fn)
        )
        try:
            function = self._functions.get(fn, by_value=by_value)
        except Unpicklable as exc:
            doomed = parts + self._pending.extract(lambda unit: unit.job.fn is fn)
            for unit in doomed:
                for index in range(unit.start, unit.stop):
                    unit.job.sink.fail(index, exc.error)
            function = None
        for fn_id in self._functions.evicted():
            self._forget(fn_id)
        return function

    def _forget(self, fn_id: int) -> None:
        """Have the workers that hold function ``fn_id`` drop it (evicted from the cache)."""
        for worker in self._slots:
            if worker is not None and fn_id in worker.fns:
                worker.fns.discard(fn_id)
                try:  # ordered after any batch already sent that still needs it
                    worker.conn.send_bytes(dumps(("forget", fn_id)))
                except OSError:
                    pass
