"""The process backend's manager: the state its parts share, and the small steps all use.

:class:`~._core.ProcessEngine` is assembled from three parts, each a module you can read
in one sitting: dispatch (:mod:`._dispatch`: batches to idle workers), results
(:mod:`._results`: messages, deaths, deadlines) and worker lifecycle (:mod:`._lifecycle`:
starting, replacing, stopping workers; breaking the pool). They share the state declared
here, which only the manager thread touches (see the invariants in :mod:`._core`).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ..._options import TaskOptions
from ..._scheduler._batching import Batcher
from ..._scheduler._events import PoolEvents
from ..._scheduler._job import Job
from ..._scheduler._outcomes import Requeue, fail_or_retry
from ..._scheduler._units import Pending, Unit
from ._progress import ProgressBoard
from ._shared import SharedData
from ._template import Template
from ._wire import Batch, FunctionCache, ProcessWorker
from ._zerocopy import discard

__all__ = ["ManagerState"]


class ManagerState:
    """The manager's state (set by ``ProcessEngine.__init__``) and the steps every part uses."""

    workers: int
    options: TaskOptions
    events: PoolEvents
    _slots: list[ProcessWorker | None]
    _pending: Pending
    _inbox: deque[tuple[str, Any]]
    _batcher: Batcher
    _board: ProgressBoard
    _functions: FunctionCache
    _ids: itertools.count[int]
    _template: Template | None
    _shared: SharedData | None
    _ctx: Any
    _start_method: str
    _main_by_value: bool
    _setup: bytes
    _max_tasks: int | None
    _init_timeout: float | None
    _idle_timeout: float | None
    _traceback_type: Callable[[str], BaseException]
    _shm_tag: str
    _arg_prefix: str
    _startup_failures: int
    _warned_memory: bool
    _closing: bool
    _terminating: bool
    _broken: BaseException | None
    _lock: threading.Lock
    _wake_r: int
    _wake_w: int
    _wake_sent: bool
    _wake_closed: bool

    def _push_front(self, units: list[Unit], *, isolate: bool = False) -> None:
        self._pending.push_front(units, isolate=isolate)

    def _fail(self, unit: Unit, index: int, error: BaseException) -> None:
        """Item ``index`` of ``unit``'s job failed: run it again if its retries allow."""
        fail_or_retry(unit.job, index, unit.attempt, error, self._requeue_for(unit), self.events)

    def _requeue_for(self, unit: Unit) -> Requeue:
        """How a failed item of ``unit`` runs again: alone, at the front of the queue."""

        def requeue(item: int, attempt: int) -> None:
            self._pending.retry(unit.job, item, attempt, isolate=unit.isolate)

        return requeue

    def _end_batch(self, worker: ProcessWorker) -> Batch | None:
        """Take ``worker``'s batch off it; its argument segments are no longer needed."""
        batch, worker.batch = worker.batch, None
        if batch is not None and batch.segments:
            discard(batch.segments)
        return batch

    def _unstage(self, worker: ProcessWorker) -> None:
        """Put ``worker``'s staged batch back in front of the queue."""
        staged, worker.staged = worker.staged, None
        if staged is not None:
            if staged.segments:
                discard(staged.segments)
            self._push_front(staged.parts)

    def _unstage_all(self) -> None:
        for worker in self._slots:
            if worker is not None:
                self._unstage(worker)

    def _running_item(self, worker: ProcessWorker) -> tuple[Unit, int, int] | None:
        """``(part, item index in its job, start time ns)`` of the item ``worker`` runs."""
        batch = worker.batch
        if batch is None:
            return None
        batch_id, index, started = self._board.read(worker.slot)
        if batch_id != batch.id or not 0 <= index < batch.size:
            return None
        part, item = batch.locate(index)
        return part, item, started

    def _kill(self, worker: ProcessWorker, reason: tuple[str, Job | None, int]) -> None:
        worker.kill_reason = reason
        worker.kill_tree()
