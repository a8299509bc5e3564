"""The process pool engine: one manager thread, one duplex pipe per worker.

::

    caller threads            manager thread (owns every scheduling structure)       workers
    --------------            ------------------------------------------------       -------
    submit() ──► inbox ──────► pending (deque of tasks)
                 + wake pipe    dispatch: a batch per idle worker ──── pipe ───────► run items
                                                                               (progress slot)
                                wait(conns, sentinels, wake, timeout=next deadline)
                                "done"  ◄─────────────────────────────── pipe ◄──── outcomes
                                death (sentinel): read the progress slot
                                deadline passed: read the progress slot, SIGKILL

Invariants:

* Only the manager thread touches ``pending``, workers and batches; callers talk to it
  through ``inbox`` (a deque, whose appends are atomic) and a wake-up pipe.
* A worker holds at most one batch. Its progress slot says which item of that batch runs and
  since when, so a death fails exactly that item (``WorkerCrashed``, or ``TaskTimeout``/
  cancellation when the manager killed it on purpose). Items of the batch that had not
  started go back to the front of ``pending``; items that had finished lost their results
  with the worker and go back too -- so, with batches of more than one item, an item can run
  twice when a sibling crashes its worker. With ``chunksize=1`` no item ever runs twice
  unless ``retries`` says so.
* A batch that fails to pickle, or to unpickle in the worker, or whose worker dies before
  it starts any item, is split into batches of one, so only the guilty task fails.
* After its last item the worker sets the slot's index one past the end while it pickles
  and sends the results, so a death there (a result whose pickling crashes) is not blamed
  on the last item's run: a batch of many is split into ones, a batch of one fails with
  ``WorkerCrashed`` noting the stage. Pickling errors of any kind (``SystemExit`` from a
  ``__reduce__`` included) fail only their task, in the parent and in the worker.
* An idle ready worker is never left idle while tasks are pending: ``_dispatch`` loops until
  it holds a batch, because nothing would wake the manager again (a batch can come out empty
  when its tasks were cancelled, or fail to pickle).
* A forked worker forgets the parent's engines (``register_at_fork``): its exit must not run
  their at-exit shutdown (which could block on a lock copied while held).
* Futures are settled only by the manager thread, with ``settle`` (cancelled futures are
  skipped; a done-callback that raises cannot kill the manager).
"""

from __future__ import annotations

import itertools
import os
import reprlib
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures._base import PENDING, RUNNING
from multiprocessing import connection, get_context
from typing import Any

from .._errors import (
    PoolBroken,
    SerializationError,
    TaskTimeout,
    WorkerCrashed,
)
from .._futures import TaskFuture, force_cancel, settle, start_running
from .._options import TaskOptions
from .._remote import load_exception
from .._serialize import dumps, loads
from ._batching import Batcher
from ._progress import ProgressBoard
from ._worker import worker_main

__all__ = ["ProcessEngine"]

STARTUP_FAILURES_BEFORE_BROKEN = 3
FUNCTION_CACHE = 256  # functions kept pickled here and loaded in the workers
STOP_GRACE = 2.0  # seconds a worker gets to exit after "stop" before it is killed

_live_engines: weakref.WeakSet[ProcessEngine] = weakref.WeakSet()


class _Task:
    __slots__ = ("args", "attempt", "fn", "future", "isolate", "kwargs", "options")

    def __init__(
        self, future: TaskFuture[Any], fn: Callable[..., Any], args: Any, kwargs: Any,
        options: TaskOptions,
    ) -> None:  # fmt: skip
        self.future, self.fn, self.args, self.kwargs = future, fn, args, kwargs
        self.options, self.attempt, self.isolate = options, 0, False

    def describe(self) -> str:
        try:
            name = getattr(self.fn, "__qualname__", None) or repr(self.fn)
            shown = [reprlib.repr(a) for a in self.args]
            shown += [f"{k}={reprlib.repr(v)}" for k, v in self.kwargs.items()]
            return f"task {name}({', '.join(shown)})"
        except Exception:  # a user __repr__ that raises must not hide the real error
            return f"task {getattr(self.fn, '__qualname__', '?')}(...)"


class _Batch:
    __slots__ = ("id", "sent_at", "tasks")

    def __init__(self, batch_id: int, tasks: list[_Task]) -> None:
        self.id, self.tasks, self.sent_at = batch_id, tasks, time.monotonic()


class _Worker:
    __slots__ = ("batch", "conn", "done", "fns", "kill_reason", "pid", "process", "ready", "slot")

    def __init__(self, slot: int, process: Any, conn: connection.Connection) -> None:
        self.slot, self.process, self.conn = slot, process, conn
        self.pid: int | None = process.pid
        self.fns: set[int] = set()
        self.batch: _Batch | None = None
        self.done = 0
        self.ready = False
        self.kill_reason: tuple[str, _Task] | None = None


class ProcessEngine:
    """Runs tasks on ``workers`` processes; never loses a task, never hangs.

    Example::

        engine = ProcessEngine(2)
        future = engine.submit(pow, (2, 10), {}, engine.options)
        assert future.result() == 1024
        engine.shutdown()
    """

    def __init__(
        self,
        workers: int,
        *,
        start_method: str = "forkserver",
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_worker: int | None = None,
        options: TaskOptions | None = None,
        chunksize: int | None = None,
        name: str = "workhorse-pool",
    ) -> None:
        self.workers = workers
        self.options = options or TaskOptions()
        self._ctx: Any = get_context(start_method)
        self._setup = dumps((initializer, initargs), what="initializer", by_value=True)
        self._max_tasks = max_tasks_per_worker
        self._batcher = Batcher(chunksize)
        self._board = ProgressBoard.create(workers)
        self._inbox: deque[tuple[str, Any]] = deque()
        self._wake_r, self._wake_w = os.pipe()
        self._wake_sent = False
        self._pending: deque[_Task] = deque()
        self._slots: list[_Worker | None] = [None] * workers
        self._fn_ids: dict[int, tuple[Callable[..., Any], int, bytes]] = {}
        self._ids = itertools.count(1)
        self._startup_failures = 0
        self._closing = False
        self._terminating = False
        self._broken: BaseException | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"{name}-manager", daemon=True)
        _live_engines.add(self)
        self._thread.start()

    # -- called from any thread -------------------------------------------------------

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:  # fmt: skip
        """Queue one task; returns its future."""
        return self.submit_many(fn, [(args, kwargs)], options)[0]

    def submit_many(
        self, fn: Callable[..., Any], calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
        options: TaskOptions,
    ) -> list[Future[Any]]:  # fmt: skip
        """Queue several calls of ``fn`` at once (one wake-up for all)."""
        with self._lock:
            if self._broken is not None:
                raise PoolBroken(f"the pool is broken: {self._broken}") from self._broken
            if self._closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            tasks: list[_Task] = []
            for args, kwargs in calls:
                future: TaskFuture[Any] = TaskFuture()
                future._stop_running = self._request_stop
                tasks.append(_Task(future, fn, args, kwargs, options))
            self._inbox.append(("tasks", tasks))
        self._wake()
        return [task.future for task in tasks]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; finish (or cancel) what is queued; stop the workers."""
        with self._lock:
            self._closing = True
            if cancel_futures:
                self._inbox.append(("cancel_pending", None))
        self._wake()
        if wait and threading.current_thread() is not self._thread:
            try:
                self._thread.join()
            except BaseException:  # Ctrl-C while waiting: stop now, leave no worker behind
                self.terminate()
                raise

    def terminate(self) -> None:
        """Kill the workers now; every unfinished future is cancelled."""
        with self._lock:
            self._closing = self._terminating = True
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    @property
    def alive(self) -> bool:
        """True until the manager thread has stopped every worker."""
        return self._thread.is_alive()

    def worker_pids(self) -> list[int]:
        """The pids of the current workers (for tests and introspection)."""
        return [w.pid for w in self._slots if w is not None and w.pid is not None]

    def _request_stop(self, future: TaskFuture[Any]) -> None:
        self._inbox.append(("stop", future))
        self._wake()

    def _wake(self) -> None:
        if not self._wake_sent:
            self._wake_sent = True
            try:
                os.write(self._wake_w, b"!")
            except OSError:
                pass  # closed: the manager is gone

    # -- the manager thread -----------------------------------------------------------

    def _run(self) -> None:
        try:
            for slot in range(self.workers):
                self._start_worker(slot)
            while True:
                self._drain_inbox()
                if self._terminating:
                    break
                # Dispatch before the check: it discards cancelled tasks, which may be all
                # that kept a closing pool alive (and nothing would wake us afterwards).
                self._dispatch()
                if self._finished():
                    break
                self._wait_and_handle()
                self._check_deadlines()
        except BaseException as exc:
            self._break(exc, "the pool's manager thread crashed")
        finally:
            self._stop_workers()

    def _finished(self) -> bool:
        if self._broken is not None:
            return True
        if not self._closing or self._inbox:
            return False
        return not self._pending and all(w is None or w.batch is None for w in self._slots)

    def _drain_inbox(self) -> None:
        inbox = self._inbox
        while inbox:
            kind, payload = inbox.popleft()
            if kind == "tasks":
                self._pending.extend(payload)
            elif kind == "stop":
                self._stop_running(payload)
            elif kind == "cancel_pending":
                for task in self._pending:
                    force_cancel(task.future)
                self._pending.clear()

    def _dispatch(self) -> None:
        pending = self._pending
        for worker in self._slots:
            if worker is None or not worker.ready:
                continue
            if self._max_tasks is not None and worker.done >= self._max_tasks:
                continue  # it is about to retire: a batch sent now would die with it
            # Loop: a batch can come out empty (cancelled tasks) or fail to pickle, and the
            # worker must not stay idle while tasks wait -- nothing else would wake us.
            while pending and worker.batch is None:
                tasks = self._take_batch(worker)
                if tasks:
                    self._send_batch(worker, tasks)

    def _take_batch(self, worker: _Worker) -> list[_Task]:
        pending = self._pending
        idle = sum(1 for w in self._slots if w is not None and w.batch is None) or 1
        size = 1 if pending[0].isolate else self._batcher.size(len(pending), idle)
        if self._max_tasks is not None:
            size = max(1, min(size, self._max_tasks - worker.done))
        tasks: list[_Task] = []
        fn = pending[0].fn
        while pending and len(tasks) < size and pending[0].fn is fn:
            if tasks and pending[0].isolate:
                break
            task = pending.popleft()
            state = task.future._state
            if state == PENDING and not start_running(task.future):
                continue  # cancelled while queued
            if state not in (PENDING, RUNNING):
                continue  # cancelled while waiting for a retry
            tasks.append(task)
        return tasks

    def _send_batch(self, worker: _Worker, tasks: list[_Task]) -> None:
        fn_id = self._function_id(tasks[0])
        if fn_id is None:
            return
        try:
            blob = _dumps([(t.args, t.kwargs) for t in tasks], "the arguments")
        except SerializationError:
            tasks = self._drop_unpicklable(tasks)
            if not tasks:
                return
            blob = _dumps([(t.args, t.kwargs) for t in tasks], "the arguments")
        batch = _Batch(next(self._ids), tasks)
        try:
            if fn_id not in worker.fns:
                worker.conn.send_bytes(dumps(("fn", fn_id, self._fn_ids[id(tasks[0].fn)][2])))
                worker.fns.add(fn_id)
            worker.batch = batch
            worker.conn.send_bytes(dumps(("batch", batch.id, fn_id, blob)))
        except OSError:
            pass  # the worker died: its sentinel reports it and the batch is recovered

    def _function_id(self, task: _Task) -> int | None:
        key = id(task.fn)
        entry = self._fn_ids.pop(key, None)
        if entry is not None and entry[0] is task.fn:
            self._fn_ids[key] = entry  # most recently used last
            return entry[1]
        try:
            blob = _dumps(task.fn, "function", by_value=True)
        except SerializationError as exc:
            for other in [task, *[t for t in self._pending if t.fn is task.fn]]:
                settle(other.future, False, exc)
            self._pending = deque(t for t in self._pending if t.fn is not task.fn)
            return None
        fn_id = next(self._ids)
        self._fn_ids[key] = (task.fn, fn_id, blob)
        if len(self._fn_ids) > FUNCTION_CACHE:
            self._forget(next(iter(self._fn_ids)))
        return fn_id

    def _forget(self, key: int) -> None:
        """Drop the least recently used function here and in the workers that hold it, so a
        program submitting ever new lambdas does not grow without bound."""
        _, fn_id, _ = self._fn_ids.pop(key)
        for worker in self._slots:
            if worker is not None and fn_id in worker.fns:
                worker.fns.discard(fn_id)
                try:  # ordered after any batch already sent that still needs it
                    worker.conn.send_bytes(dumps(("forget", fn_id)))
                except OSError:
                    pass

    def _drop_unpicklable(self, tasks: list[_Task]) -> list[_Task]:
        kept = []
        for task in tasks:
            try:
                _dumps((task.args, task.kwargs), f"an argument of {task.describe()}")
            except SerializationError as exc:
                settle(task.future, False, exc)
            else:
                kept.append(task)
        return kept

    def _wait_and_handle(self) -> None:
        by_handle: dict[Any, tuple[str, _Worker | None]] = {self._wake_r: ("wake", None)}
        for worker in self._slots:
            if worker is not None:
                by_handle[worker.conn] = ("conn", worker)
                by_handle[worker.process.sentinel] = ("died", worker)
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
        soonest: float | None = None
        now = time.monotonic_ns()
        for worker in self._slots:
            if worker is None or worker.batch is None:
                continue
            if not any(t.options.timeout for t in worker.batch.tasks):
                continue
            batch_id, index, started = self._board.read(worker.slot)
            tasks = worker.batch.tasks
            task = tasks[index] if batch_id == worker.batch.id and index < len(tasks) else None
            left = 0.05
            if task is not None and task.options.timeout:
                left = min(left, (started + task.options.timeout * 1e9 - now) / 1e9)
            soonest = left if soonest is None else min(soonest, left)
        return None if soonest is None else max(0.001, soonest)

    def _receive(self, worker: _Worker) -> None:
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._on_death(worker)
            return
        try:
            message = loads(data)
        except BaseException as exc:
            self._unreadable_results(worker, exc)
            return
        kind = message[0]
        if kind == "done":
            self._on_done(worker, message[2])
        elif kind == "ready":
            worker.ready = True
            self._startup_failures = 0
        elif kind == "unpack_failed":
            self._on_unpack_failed(worker, load_exception(message[2]))
        elif kind == "init_failed":
            error = load_exception(message[1])
            self._break(error, "the pool's initializer raised")
        elif kind == "retire":
            self._retire(worker)

    def _on_done(self, worker: _Worker, outcomes: list[tuple[bool, Any]]) -> None:
        batch = worker.batch
        worker.batch = None
        if batch is None:
            return
        worker.done += len(batch.tasks)
        self._batcher.observe(len(batch.tasks), time.monotonic() - batch.sent_at)
        for task, (ok, payload) in zip(batch.tasks, outcomes, strict=True):
            if ok:
                settle(task.future, True, payload)
            else:
                self._fail(task, _load_exception(payload, task))

    def _unreadable_results(self, worker: _Worker, exc: BaseException) -> None:
        batch, worker.batch = worker.batch, None
        if batch is None:
            return
        if len(batch.tasks) == 1:
            error = SerializationError(
                f"the result of {batch.tasks[0].describe()} could not be unpickled: {exc!r}"
            )
            error.__cause__ = exc
            self._fail(batch.tasks[0], error)
        else:
            self._requeue(batch.tasks, isolate=True)

    def _on_unpack_failed(self, worker: _Worker, exc: BaseException) -> None:
        batch, worker.batch = worker.batch, None
        if batch is None:
            return
        if len(batch.tasks) == 1:
            error = SerializationError(
                f"the arguments of {batch.tasks[0].describe()} could not be unpickled in "
                f"the worker: {type(exc).__name__}: {exc}"
            )
            error.__cause__ = exc
            self._fail(batch.tasks[0], error)
        else:
            self._requeue(batch.tasks, isolate=True)

    def _fail(self, task: _Task, error: BaseException) -> None:
        if task.options.should_retry(task.attempt, error) and not task.future.cancelled():
            task.attempt += 1
            self._pending.appendleft(task)
        else:
            settle(task.future, False, error)

    def _requeue(self, tasks: list[_Task], *, isolate: bool = False) -> None:
        for task in tasks:
            task.isolate = task.isolate or isolate
        self._pending.extendleft(reversed(tasks))

    def _on_death(self, worker: _Worker) -> None:
        self._slots[worker.slot] = None
        worker.process.join(1.0)
        exitcode = worker.process.exitcode
        worker.conn.close()
        batch = worker.batch
        if batch is not None:
            self._recover(worker, batch, exitcode)
        if not worker.ready:
            self._startup_failures += 1
            if self._startup_failures >= STARTUP_FAILURES_BEFORE_BROKEN:
                cause = WorkerCrashed("a new pool worker", worker.pid, exitcode)
                self._break(cause, "pool workers keep dying while they start")
                return
        self._replace(worker.slot)

    def _recover(self, worker: _Worker, batch: _Batch, exitcode: int | None) -> None:
        batch_id, index, _ = self._board.read(worker.slot)
        stage = ""
        if batch_id != batch.id:  # died before its first item: unpickling, most likely
            if len(batch.tasks) > 1 or not batch.tasks[0].isolate:
                self._requeue(batch.tasks, isolate=True)
                return
            index, stage = 0, "before the task started (unpickling its arguments?)"
        elif index >= len(batch.tasks):  # every item ran; died while pickling the results
            if len(batch.tasks) > 1:
                self._requeue(batch.tasks, isolate=True)
                return
            index, stage = 0, "after the task returned, while pickling its result"
        running = batch.tasks[index]
        self._requeue(batch.tasks[:index] + batch.tasks[index + 1 :])
        reason = worker.kill_reason
        if reason is not None and reason[1] is running and reason[0] == "cancel":
            return  # its future is already cancelled
        if reason is not None and reason[1] is running:
            timeout = running.options.timeout
            error: BaseException = TaskTimeout(
                f"{running.describe()} ran longer than its timeout of {timeout} s and was "
                f"stopped (its worker, pid {worker.pid}, was killed and replaced)"
            )
        else:
            error = WorkerCrashed(running.describe(), worker.pid, exitcode)
            if stage:
                error.add_note(f"the worker died {stage}")
        self._fail(running, error)

    def _check_deadlines(self) -> None:
        now = time.monotonic_ns()
        for worker in self._slots:
            if worker is None or worker.batch is None or worker.kill_reason is not None:
                continue
            batch_id, index, started = self._board.read(worker.slot)
            if batch_id != worker.batch.id or index >= len(worker.batch.tasks):
                continue
            task = worker.batch.tasks[index]
            timeout = task.options.timeout
            if timeout is not None and now - started > timeout * 1e9:
                self._kill(worker, ("timeout", task))

    def _stop_running(self, future: TaskFuture[Any]) -> None:
        for worker in self._slots:
            if worker is None or worker.batch is None:
                continue
            for index, task in enumerate(worker.batch.tasks):
                if task.future is future:
                    batch_id, running, _ = self._board.read(worker.slot)
                    if batch_id == worker.batch.id and running == index:
                        self._kill(worker, ("cancel", task))
                    return

    def _kill(self, worker: _Worker, reason: tuple[str, _Task]) -> None:
        worker.kill_reason = reason
        if worker.pid is not None:
            try:
                os.kill(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _retire(self, worker: _Worker) -> None:
        self._slots[worker.slot] = None
        if worker.batch is not None:  # never sent by _dispatch; kept as a safety net
            self._requeue(worker.batch.tasks)
            worker.batch = None
        worker.process.join(STOP_GRACE)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()
        self._replace(worker.slot)

    def _replace(self, slot: int) -> None:
        """Start a worker in an emptied slot, unless the pool is winding down idle."""
        if self._terminating or self._broken is not None:
            return
        if self._closing and not self._pending and not self._inbox:
            return
        self._start_worker(slot)

    def _start_worker(self, slot: int) -> None:
        self._board.clear(slot)
        parent_conn, child_conn = self._ctx.Pipe()
        process = self._ctx.Process(
            target=worker_main,
            args=(child_conn, self._board.name, self.workers, slot, self._setup, self._max_tasks),
            name=f"workhorse-worker-{slot}",
        )
        process.start()
        child_conn.close()
        self._slots[slot] = _Worker(slot, process, parent_conn)

    def _break(self, cause: BaseException, why: str) -> None:
        with self._lock:
            if self._broken is not None:
                return
            error = PoolBroken(f"{why}: {type(cause).__name__}: {cause}")
            error.__cause__ = cause
            self._broken = error
        victims = list(self._pending)
        self._pending.clear()
        for worker in self._slots:
            if worker is not None and worker.batch is not None:
                victims.extend(worker.batch.tasks)
        for kind, payload in self._inbox:
            if kind == "tasks":
                victims.extend(payload)
        self._inbox.clear()
        for task in victims:
            broken = PoolBroken(str(error))
            broken.__cause__ = cause
            settle(task.future, False, broken)

    def _stop_workers(self) -> None:
        workers = [w for w in self._slots if w is not None]
        leftovers = list(self._pending)
        for worker in workers:
            if worker.batch is not None:
                leftovers.extend(worker.batch.tasks)
            if self._terminating or self._broken is not None:
                worker.process.kill()
            else:
                try:
                    worker.conn.send_bytes(dumps(("stop",)))
                except OSError:
                    pass
        deadline = time.monotonic() + STOP_GRACE
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        for task in leftovers:
            force_cancel(task.future)
        self._slots = [None] * self.workers
        self._board.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _dumps(obj: object, what: str, *, by_value: bool = False) -> bytes:
    """``dumps`` that also turns a ``__reduce__`` calling ``sys.exit`` (or raising any
    ``BaseException``) into a ``SerializationError``: it runs in the manager thread."""
    try:
        return dumps(obj, what=what, by_value=by_value)
    except SerializationError:
        raise
    except BaseException as exc:
        error = SerializationError(
            f"cannot pickle {what}: {type(exc).__name__}: {exc} (raised while pickling)"
        )
        raise error from exc


def _load_exception(payload: bytes, task: _Task) -> BaseException:
    """A task's exception from its worker; if it cannot be rebuilt here, say so."""
    try:
        return load_exception(payload)
    except BaseException as exc:  # SystemExit too: it must not stop the manager
        error = SerializationError(
            f"the exception raised by {task.describe()} could not be unpickled: {exc!r}"
        )
        error.__cause__ = exc
        return error


def _shutdown_at_exit() -> None:
    for engine in list(_live_engines):
        engine.shutdown(wait=True)


# A forked worker inherits ``_live_engines`` -- and maybe a copy of an engine lock that
# another parent thread held at fork time. Its exit must not shut down the parent's pools.
os.register_at_fork(after_in_child=_live_engines.clear)


threading._register_atexit(_shutdown_at_exit)  # type: ignore[attr-defined]
