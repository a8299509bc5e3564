"""The process backend's results: messages from workers, deaths, deadlines, stopped tasks.

Part of :class:`~._core.ProcessEngine` (see :mod:`._manager`); runs in the manager thread.
A worker's death is read against its progress slot, so exactly the item that was running
fails (``WorkerCrashed``, or ``TaskTimeout`` when the manager killed it past its timeout);
the rest of its batch runs again. See the invariants in :mod:`._core`.
"""

from __future__ import annotations

import os
import time
from multiprocessing import connection
from typing import TYPE_CHECKING, Any

from ..._errors import DeserializationError, TaskTimeout, WorkerCrashed
from ..._remote import load_exception
from ..._scheduler._events import describe_exit
from ..._scheduler._job import Job
from ..._scheduler._outcomes import deliver, timeout_error
from ..._scheduler._units import Unit
from ._manager import ManagerState
from ._wire import Batch, ProcessWorker, load_task_exception
from ._worker import BULK_INDEX, DONE, MEMORY_GROWTH_ENV, memory_growth_limit
from ._zerocopy import discard, unpack

__all__ = ["STARTUP_FAILURES_BEFORE_BROKEN", "Results"]

STARTUP_FAILURES_BEFORE_BROKEN = 3
UNREADABLE_RESULTS = "the result of {task} could not be unpickled: {exc!r}"


class Results(ManagerState):
    """What comes back from workers, and what happens when they die (part of
    ``ProcessEngine``)."""

    if TYPE_CHECKING:

        def _send(self, worker: ProcessWorker, batch: Batch) -> None: ...
        def _break(self, cause: BaseException, why: str) -> None: ...
        def _replace(self, slot: int) -> None: ...
        def _retire(self, worker: ProcessWorker, why: str, cause: str) -> None: ...
        def _clean_up_after(self, worker: ProcessWorker) -> None: ...
        def _lifecycle_tick(self) -> float | None: ...

    def _wait_and_handle(self) -> None:
        by_handle: dict[Any, tuple[str, ProcessWorker | None]] = {self._wake_r: ("wake", None)}
        for worker in self._slots:
            if worker is not None:
                by_handle[worker.conn] = ("conn", worker)
                by_handle[worker.exit_handle] = ("died", worker)
        ready = connection.wait(list(by_handle), timeout=self._tick())
        # Messages first: a worker that sent its results and then died lost nothing.
        ready.sort(key=lambda h: by_handle[h][0] != "conn")
        for handle in ready:
            kind, worker = by_handle[handle]
            if kind == "wake":
                # Read, then clear: a caller waking us in between sees the flag still set and
                # writes nothing, but its inbox entry is drained right after this. Clearing
                # first would let the read swallow that caller's byte while the flag stays
                # set, and no later caller would ever wake us again.
                os.read(self._wake_r, 4096)
                self._wake_sent = False
            elif worker is not None and self._slots[worker.slot] is worker:
                if kind == "conn":
                    self._receive(worker)
                else:
                    self._on_death(worker)

    def _tick(self) -> float | None:
        soonest = self._lifecycle_tick()
        now = time.monotonic_ns()
        for worker in self._slots:
            if worker is None or worker.batch is None:
                continue
            if not any(p.job.options.timeout for p in worker.batch.parts):
                continue
            left = 0.05
            running = self._running_item(worker)
            if running is not None and running[0].job.options.timeout:
                timeout = running[0].job.options.timeout
                left = min(left, (running[2] + timeout * 1e9 - now) / 1e9)
            soonest = left if soonest is None else min(soonest, left)
        return None if soonest is None else max(0.001, soonest)

    def _receive(self, worker: ProcessWorker) -> None:
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._on_death(worker)
            return
        self._handle(worker, data)

    def _drain(self, worker: ProcessWorker) -> None:
        """Handle what an exited worker sent before it exited: a worker at its task limit
        sends its last results, then "retire", then exits, and one wait can report the exit
        with only the results read (it was then taken for a crash)."""
        while self._slots[worker.slot] is worker:
            try:
                if not worker.conn.poll(0):
                    return
                data = worker.conn.recv_bytes()
            except (EOFError, OSError):
                return
            self._handle(worker, data)

    def _handle(self, worker: ProcessWorker, data: bytes) -> None:
        if data[:1] == DONE:
            self._on_done(worker, memoryview(data)[1:])
            return
        try:
            message = unpack(data)
        except BaseException as exc:
            self._undecodable(self._end_batch(worker), exc, UNREADABLE_RESULTS)
            return
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            worker.since = time.monotonic()
            self._startup_failures = 0
        elif kind == "unpack_failed":
            self._on_unpack_failed(worker, load_exception(message[2]))
        elif kind == "init_failed":
            error = load_exception(message[1])
            self._break(error, message[2] if len(message) > 2 else "the pool's initializer raised")
        elif kind == "retire":
            if message[2] is not None and not self._warned_memory:
                self._warned_memory = True  # once per pool: every worker leaks alike
                limit = f"{memory_growth_limit()} bytes, {MEMORY_GROWTH_ENV}"
                self.events.memory_grew(worker.pid, message[2], message[1], limit)
            if message[2] is None:
                self._retire(worker, "it reached its task limit", "task limit")
            else:
                self._retire(worker, "its memory grew", "memory")

    def _on_done(self, worker: ProcessWorker, data: memoryview) -> None:
        # The batch leaves the worker, but its argument segments stay until its results are
        # unpickled: a result may refer to one (see _zerocopy.pack's reply_to).
        batch, worker.batch = worker.batch, None
        if batch is None:
            return
        if worker.staged is not None:  # first keep the worker busy, then read the results
            staged, worker.staged = worker.staged, None
            self._send(worker, staged)
        began = time.perf_counter()
        try:
            _, values, failures, seconds, pickled, started, ends = unpack(data)
        except BaseException as exc:
            self._undecodable(batch, exc, UNREADABLE_RESULTS)
            return
        finally:
            if batch.segments:
                discard(batch.segments)
        pickling = batch.pickling + pickled + time.perf_counter() - began
        first = batch.parts[0]
        self.events.ran(
            worker.pid, batch.size, seconds, pickling, job=first.job, index=first.start,
            started=started, ends=ends,
            parts=None if ends is None else [(p.job, p.start, len(p)) for p in batch.parts],
        )  # fmt: skip
        worker.since = time.monotonic()
        worker.done += batch.size
        # The worker's own time running the items: the round trip (and the manager's delay in
        # reading the reply, while it pickles another batch) says nothing about the items.
        self._batcher.observe(batch.size, seconds, batch.parts[-1].job.fn)
        if not failures and len(batch.parts) == 1:
            part = batch.parts[0]
            part.job.sink.ok(part.start, values)
            return
        for part, offset in zip(batch.parts, batch.offsets, strict=True):
            end = offset + len(part)
            errors = {
                item: load_task_exception(failures[at], part.job, item, self._traceback_type)
                for at in failures
                if offset <= at < end
                for item in (part.start + at - offset,)
            }
            part_values = values[offset:end]
            requeue = self._requeue_for(part)
            deliver(part.job, part.start, part_values, errors, part.attempt, requeue, self.events)

    def _on_unpack_failed(self, worker: ProcessWorker, exc: BaseException) -> None:
        how = "the arguments of {task} could not be unpickled in the worker: {name}: {exc}"
        self._undecodable(self._end_batch(worker), exc, how)

    def _undecodable(self, batch: Batch | None, exc: BaseException, how: str) -> None:
        """A worker's ``batch`` could not be decoded (``how`` says where): a batch of one
        fails with ``DeserializationError``; a larger one runs again one item per batch, so
        that only the guilty item fails."""
        if batch is None:
            return
        if batch.size == 1:
            part = batch.parts[0]
            task = part.job.describe(part.start)
            error = DeserializationError(how.format(task=task, exc=exc, name=type(exc).__name__))
            error.__cause__ = exc
            self._fail(part, part.start, error)
        else:
            self._push_front(_singles(batch.parts))

    def _on_death(self, worker: ProcessWorker) -> None:
        self._drain(worker)
        if self._slots[worker.slot] is not worker:
            return  # it retired: handled
        self._slots[worker.slot] = None
        # With a pidfd the process has exited: reaping it cannot block (a sentinel may be
        # held open by a grandchild the task started, so without one, wait a bounded time).
        worker.process.join(None if worker.pidfd is not None else 1.0)
        worker.close_pidfd()
        exitcode = worker.process.exitcode
        kill = worker.kill_reason
        self.events.worker_exited(worker.pid, "crashed" if kill is None else _CAUSES[kill[0]])
        worker.release()
        self._unstage(worker)
        batch = self._end_batch(worker)
        self._clean_up_after(worker)
        how = describe_exit(exitcode)
        if batch is not None and not worker.ready:  # died starting: the batch is not to blame
            self._push_front(batch.parts)
        elif batch is not None:
            self._recover(worker, batch, exitcode)
        if worker.kill_reason is None and (batch is None or not worker.ready):
            self.events.worker_died(worker.pid, how, None if worker.ready else "its start-up")
        if worker.kill_reason is not None and worker.kill_reason[0] == "init_timeout":
            error = TaskTimeout(
                f"a pool worker's initializer (pid {worker.pid}) ran longer than the pool's "
                f"init_timeout of {self._init_timeout} s and was killed"
            )
            self._break(error, "the pool's initializer timed out")
            return
        if not worker.ready:
            self._startup_failures += 1
            if self._startup_failures >= STARTUP_FAILURES_BEFORE_BROKEN:
                reason = None
                if self._start_method in ("spawn", "forkserver") and exitcode == 1:
                    reason = (
                        f"while starting under {self._start_method!r}: importing the main "
                        "module or unpickling the initializer failed (the worker printed why "
                        "on stderr)"
                    )
                cause = WorkerCrashed("a new pool worker", worker.pid, exitcode, reason)
                self._break(cause, "pool workers keep dying while they start")
                return
        if not (self._terminating or self._broken is not None):
            self.events.worker_replaced(worker.pid, _why_replaced(worker.kill_reason, how))
        self._replace(worker.slot)

    def _recover(self, worker: ProcessWorker, batch: Batch, exitcode: int | None) -> None:
        batch_id, index, _ = self._board.read(worker.slot)
        stage = ""
        if batch_id == batch.id and index == BULK_INDEX:  # somewhere in a bulk batch
            self._push_front(_singles(batch.parts))
            return
        if batch_id != batch.id:  # died before its first item: unpickling, most likely
            if batch.size > 1 or not batch.parts[0].isolate:
                self._push_front(_singles(batch.parts))
                return
            index, stage = 0, "before the task started (unpickling its arguments?)"
        elif index >= batch.size:  # every item ran; died while pickling the results
            if batch.size > 1:
                self._push_front(_singles(batch.parts))
                return
            index, stage = 0, "after the task returned, while pickling its result"
        running, item = batch.locate(index)
        # Every other item goes back: those before it lost their results with the worker.
        rest: list[Unit] = []
        for part in batch.parts:
            if part is not running:
                rest.append(part)
                continue
            if part.start < item:
                rest.append(Unit(part.job, part.start, item, part.attempt))
            if item + 1 < part.stop:
                rest.append(Unit(part.job, item + 1, part.stop, part.attempt))
        self._push_front(rest)
        reason = worker.kill_reason
        if reason is not None and reason[1] is running.job and reason[2] == item:
            if reason[0] == "cancel":
                return  # its future is already cancelled, or its map stopped reading
            error: BaseException = timeout_error(
                running.job, item, f"its worker (pid {worker.pid}) was killed and replaced"
            )
        else:
            task = running.job.describe(item)
            error = WorkerCrashed(task, worker.pid, exitcode)
            if stage:
                error.add_note(f"the worker died {stage}")
            self.events.worker_died(worker.pid, describe_exit(exitcode), task)
        self._fail(running, item, error)

    def _check_deadlines(self) -> None:
        now = time.monotonic_ns()
        for worker in self._slots:
            if worker is None or worker.kill_reason is not None:
                continue
            running = self._running_item(worker)
            if running is None:
                continue
            part, item, started = running
            timeout = part.job.options.timeout
            if timeout is not None and now - started > timeout * 1e9:
                what = f"killing its worker {worker.pid}"
                self.events.timed_out(part.job.describe(item), timeout, what)
                # Its worker will never report it: its time is counted (and drawn) here.
                seconds = (now - started) / 1e9
                self.events.ran(worker.pid, 1, seconds, job=part.job, index=item)
                self._kill(worker, ("timeout", part.job, item))

    def _stop_running(self, job: Job) -> None:
        for worker in self._slots:  # not run yet: back to the queue, where it is skipped
            staged = None if worker is None else worker.staged
            if staged is not None and any(part.job is job for part in staged.parts):
                assert worker is not None
                self._unstage(worker)
        for worker in self._slots:
            if worker is None or worker.kill_reason is not None:
                continue
            running = self._running_item(worker)
            if running is not None and running[0].job is job:
                self._kill(worker, ("cancel", job, running[1]))


# A kill reason's cause, as pool.stats() counts exits.
_CAUSES = {"timeout": "timeout", "cancel": "cancelled", "init_timeout": "init timeout"}


def _why_replaced(kill_reason: tuple[str, Any, int] | None, how: str) -> str:
    """Why a worker that exited is replaced, in words."""
    if kill_reason is None:
        return f"it died ({how})"
    if kill_reason[0] == "timeout":
        return "it was killed: its task ran past its timeout"
    if kill_reason[0] == "cancel":
        return "it was killed: its running task was cancelled"
    return f"it was killed ({kill_reason[0]})"


def _singles(parts: list[Unit]) -> list[Unit]:
    """Every item of ``parts`` as a unit of its own (to find the one that fails)."""
    return [one for part in parts for one in part.singles()]
