"""The process backend's worker lifecycle: starting, replacing and stopping workers, their
init and idle limits, and breaking the pool when workers cannot start.

Part of :class:`~._core.ProcessEngine` (see :mod:`._manager`); runs in the manager thread,
except the first workers, started in the caller's thread by ``ProcessEngine.__init__``.
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Any

from ..._errors import PoolBroken
from ..._scheduler._units import Unit
from ..._serialize import dumps
from ..._sharing import sweep_created_by
from ..._signals import unblocked
from ._manager import ManagerState
from ._template import Template, TemplateProcess
from ._wire import ProcessWorker
from ._worker import worker_main
from ._zerocopy import make_prefix, sweep

__all__ = ["STOP_GRACE", "WorkerLifecycle"]

STOP_GRACE = 2.0  # seconds a worker gets to exit after "stop" before it is killed


class WorkerLifecycle(ManagerState):
    """Workers coming and going (part of ``ProcessEngine``)."""

    def _lifecycle_tick(self) -> float | None:
        """Seconds until a worker's initializer or idle time runs out (None: no such limit)."""
        if self._init_timeout is None and self._idle_timeout is None:
            return None
        now, soonest = time.monotonic(), None
        for worker in self._slots:
            if worker is None:
                continue
            limit = self._init_timeout if not worker.ready else None
            if worker.ready and worker.batch is None and not self._pending:
                limit = self._idle_timeout
            if limit is not None:
                left = max(0.001, worker.since + limit - now)
                soonest = left if soonest is None else min(soonest, left)
        return soonest

    def _check_lifecycles(self) -> None:
        now = time.monotonic()
        for worker in self._slots:
            if worker is None or worker.kill_reason is not None:
                continue
            if not worker.ready:
                if self._init_timeout is not None and now - worker.since > self._init_timeout:
                    self._kill(worker, ("init_timeout", None, 0))
            elif (
                worker.batch is None and not self._pending and self._idle_timeout is not None
                and now - worker.since > self._idle_timeout
            ):  # fmt: skip
                self._stop_idle(worker)

    def _stop_idle(self, worker: ProcessWorker) -> None:
        """Let a worker idle past ``idle_timeout`` go; ``_dispatch`` starts one on demand."""
        self.events.worker_stopped(worker.pid, "idle past the pool's idle_timeout")
        self._slots[worker.slot] = None
        try:
            worker.conn.send_bytes(dumps(("stop",)))
        except OSError:
            pass
        worker.reap(STOP_GRACE)

    def _retire(self, worker: ProcessWorker, why: str, cause: str) -> None:
        self.events.worker_exited(worker.pid, cause)
        self.events.worker_replaced(worker.pid, why)
        self._slots[worker.slot] = None
        batch = self._end_batch(worker)
        if batch is not None:  # never sent by _dispatch; kept as a safety net
            self._push_front(batch.parts)
        worker.reap(STOP_GRACE)
        self._replace(worker.slot)

    def _replace(self, slot: int) -> None:
        """Start a worker in an emptied slot, unless the pool is winding down idle."""
        if self._terminating or self._broken is not None:
            return
        if self._closing and not self._pending and not self._inbox:
            return
        self._start_worker(slot)

    def _start_worker(self, slot: int, *, directly: bool = False) -> None:
        """Start a worker in ``slot``; under fork, from the template unless ``directly``
        (the first workers, started before the pool runs a thread of its own)."""
        self._board.clear(slot)
        parent_conn, child_conn = self._ctx.Pipe()
        limits = (self._max_tasks, self._result_prefix(slot))
        shared = None if self._shared is None else self._shared.handle()
        board = self._board.handle()
        args = (child_conn, board, self.workers, slot, self._setup, shared, *limits)
        name = f"workhorse-worker-{slot}"
        try:
            if self._template is None or directly:
                process = self._ctx.Process(target=worker_main, args=args, name=name)
                with unblocked():  # the manager thread masks them (see _signals)
                    process.start()
            else:
                process = self._fork_from_template(args, name)
        finally:
            child_conn.close()
        self._slots[slot] = ProcessWorker(slot, process, parent_conn)
        self.events.worker_started(process.pid)

    def _fork_from_template(self, args: tuple[Any, ...], name: str) -> TemplateProcess:
        template = self._template
        assert template is not None
        process = TemplateProcess(target=worker_main, args=args, name=name)
        process._wh_template = template
        try:
            process.start()
        except OSError:
            if template.alive():
                raise
            # Killed from outside: fork a new template from this (manager) thread -- the
            # stdlib fork pool's risk, taken only now (see _template).
            template.close()
            self._template = template = Template()
            process = TemplateProcess(target=worker_main, args=args, name=name)
            process._wh_template = template
            process.start()
        return process

    def _clean_up_after(self, worker: ProcessWorker) -> None:
        """Remove what a worker that exited left in /dev/shm: results it had begun to send,
        and the primitives its tasks created (it may have been killed before removing them)."""
        sweep(self._result_prefix(worker.slot))
        if worker.pid is not None:
            sweep_created_by(worker.pid)

    def _result_prefix(self, slot: int) -> str:
        return make_prefix(self._shm_tag, "r", slot)

    def _break(self, cause: BaseException, why: str) -> None:
        # The cause's traceback holds the manager's frames, whose locals reach futures, whose
        # exceptions' tracebacks reach the callers' frames: a cycle through this engine that
        # would keep every pool object alive forever. The frames' text is kept.
        traceback.clear_frames(cause.__traceback__)
        with self._lock:
            if self._broken is not None:
                return
            error = PoolBroken(f"{why}: {type(cause).__name__}: {cause}")
            error.__cause__ = cause
            self._broken = error
        self.events.broken(error)
        self._unstage_all()
        victims = self._pending.clear()
        for worker in self._slots:
            batch = None if worker is None else self._end_batch(worker)
            if batch is not None:
                victims.extend(batch.parts)
        for kind, payload in self._inbox:
            if kind == "job":
                victims.append(Unit(payload, 0, len(payload.calls)))
        self._inbox.clear()
        for unit in victims:
            for index in range(unit.start, unit.stop):
                broken = PoolBroken(str(error))  # each its own: no shared growing traceback
                broken.__cause__ = cause
                unit.job.sink.fail(index, broken)

    def _stop_workers(self) -> None:
        self._unstage_all()
        workers = [w for w in self._slots if w is not None]
        leftovers = self._pending.clear()
        for worker in workers:
            batch = self._end_batch(worker)
            if batch is not None:
                leftovers.extend(batch.parts)
            if self._terminating or self._broken is not None:
                worker.kill_tree()
            else:
                try:
                    worker.conn.send_bytes(dumps(("stop",)))
                except OSError:
                    pass
        deadline = time.monotonic() + STOP_GRACE
        for worker in workers:
            worker.reap(max(0.0, deadline - time.monotonic()))
            self._clean_up_after(worker)
            self.events.worker_stopped(worker.pid, "the pool shut down", "shutdown")
        for kind, payload in self._inbox:
            if kind == "job":
                leftovers.append(Unit(payload, 0, len(payload.calls)))
        self._inbox.clear()
        for unit in leftovers:
            unit.job.sink.drop(unit.start, unit.stop)
        self._slots = [None] * self.workers
        self._board.close()
        if self._template is not None:
            self._template.close()
        if self._shared is not None:
            self._shared.close()
        with self._lock:
            self._wake_closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)
