"""The process pool engine: one manager thread, one duplex pipe per worker.

::

    caller threads            manager thread (owns every scheduling structure)       workers
    --------------            ------------------------------------------------       -------
    run(job) ──► inbox ──────► pending (deque of units: item ranges of jobs)
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
  it starts any item, is split into batches of one, so only the guilty task fails. So is a
  *bulk* batch (many fast items run in C, without a per-item index: ``_worker.BULK``) whose
  worker dies: the item that kills a worker then runs twice and fails alone.
* A future becomes RUNNING when its batch is *sent* (``_send``), not when the batch is taken
  from the queue or staged: until then ``cancel()`` works, and a batch holding a job that
  was cancelled meanwhile goes back to the queue without it.
* A worker's next batch is pickled while it is busy (``staged``) and sent when it is done;
  staged batches are not sent ahead, so an idle worker can take one from a busy worker, and
  a pool of N workers always runs N tasks at once (tasks may wait for each other).
* After its last item the worker sets the slot's index one past the end while it pickles
  and sends the results, so a death there (a result whose pickling crashes) is not blamed
  on the last item's run: a batch of many is split into ones, a batch of one fails with
  ``WorkerCrashed`` noting the stage. Pickling errors of any kind (``SystemExit`` from a
  ``__reduce__`` included) fail only their task, in the parent and in the worker.
* An idle worker (ready or still starting) is never left idle while tasks are pending:
  ``_dispatch`` loops until it holds a batch, because nothing would wake the manager again
  (a batch can come out empty when its tasks were cancelled, or fail to pickle). A worker
  that dies before it was ready is not blamed for its batch: the batch goes back.
* A forked worker forgets the parent's engines (see :mod:`._exit`): its exit must not run
  their at-exit shutdown (which could block on a lock copied while held).
* Outcomes go to each job's sink (see :mod:`._job`) only from the manager thread: a
  ``submit``'s future is settled with ``settle`` (cancelled futures are skipped; a
  done-callback that raises cannot kill the manager); a map's results are written into its
  list a batch at a time. No object is made per item: a batch is a list of units, and the
  worker's result message is the list of values plus a dict of the items that raised.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import os
import signal
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing import connection, get_context
from typing import Any

from .._errors import (
    DeserializationError,
    PoolBroken,
    RemoteTraceback,
    SerializationError,
    TaskTimeout,
    WorkerCrashed,
)
from .._options import TaskOptions
from .._process import PidFd, main_importable
from .._remote import load_exception
from .._serialize import dumps
from .._sharing import sweep_created_by
from .._signals import start_quietly, unblocked
from . import _exit
from ._batching import Batcher
from ._job import CALL, Job, submit_one
from ._progress import ProgressBoard
from ._template import Template, TemplateProcess
from ._worker import (
    BULK,
    BULK_INDEX,
    INDEXED,
    MEMORY_GROWTH_ENV,
    TIMED,
    memory_growth_limit,
    worker_main,
)
from ._zerocopy import discard, make_prefix, pack, sweep, unpack

__all__ = ["ProcessEngine"]

STARTUP_FAILURES_BEFORE_BROKEN = 3
FUNCTION_CACHE = 256  # functions kept pickled here and loaded in the workers
STOP_GRACE = 2.0  # seconds a worker gets to exit after "stop" before it is killed
BULK_MIN = 64  # a batch this large is of fast items: run it in C (see _worker.BULK)

_log = logging.getLogger("workhorse")


class _Unit:
    """Items ``start:stop`` of a job, waiting for a worker or sent in a batch. Every item of
    a unit has been tried ``attempt`` times before; ``isolate`` sends it alone."""

    __slots__ = ("attempt", "isolate", "job", "start", "stop")

    def __init__(self, job: Job, start: int, stop: int, attempt: int = 0) -> None:
        self.job, self.start, self.stop, self.attempt = job, start, stop, attempt
        self.isolate = False

    def __len__(self) -> int:
        return self.stop - self.start


class _Batch:
    """What one worker runs: consecutive parts (units) of jobs of one function."""

    __slots__ = (
        "fn_blob", "fn_id", "id", "message", "offsets", "parts", "segments", "sent_at", "size",
    )  # fmt: skip

    def __init__(
        self, batch_id: int, parts: list[_Unit], segments: list[str], fn_id: int,
        fn_blob: bytes, message: bytes,
    ) -> None:  # fmt: skip
        self.id, self.parts, self.sent_at = batch_id, parts, time.monotonic()
        self.segments = segments  # shared memory holding its large arguments
        # What to send: the function (if the worker lacks it) and the batch message.
        self.fn_id, self.fn_blob, self.message = fn_id, fn_blob, message
        self.offsets: list[int] = []
        size = 0
        for part in parts:
            self.offsets.append(size)
            size += len(part)
        self.size = size

    def locate(self, index: int) -> tuple[_Unit, int]:
        """The part holding item ``index`` of the batch, and that item's index in its job."""
        at = bisect.bisect_right(self.offsets, index) - 1
        part = self.parts[at]
        return part, part.start + index - self.offsets[at]


class _Worker:
    __slots__ = (
        "batch", "conn", "done", "fns", "kill_reason", "pid", "pidfd", "process", "ready",
        "since", "slot", "staged",
    )  # fmt: skip

    def __init__(self, slot: int, process: Any, conn: connection.Connection) -> None:
        self.slot, self.process, self.conn = slot, process, conn
        self.pid: int | None = process.pid
        # Readable when the worker exits; the sentinel is the fallback (see _on_death).
        self.pidfd = PidFd.open(self.pid)
        self.fns: set[int] = set()
        self.batch: _Batch | None = None
        # The batch it runs next, pickled while it is busy and sent the moment it is done (so
        # it does not wait for the manager). Not sent: another worker that goes idle takes
        # it, so a long task never holds back work that an idle worker could run.
        self.staged: _Batch | None = None
        self.done = 0
        self.ready = False
        self.since = time.monotonic()  # started, or idle since
        # why the manager killed it: ("timeout" | "cancel" | "init_timeout", job, item index)
        self.kill_reason: tuple[str, Job | None, int] | None = None

    @property
    def exit_handle(self) -> Any:
        return self.process.sentinel if self.pidfd is None else self.pidfd

    def close_pidfd(self) -> None:
        if self.pidfd is not None:
            self.pidfd.close()

    def kill_tree(self) -> None:
        """SIGKILL the worker and the processes its tasks started: a worker leads its own
        process group (see ``_worker``), so a subprocess a timed-out task left running dies
        with it. Before it is a group leader (or if it could not become one), the worker
        alone."""
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class ProcessEngine:
    """Runs jobs on ``workers`` processes; never loses a task, never hangs.

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
        start_method: str = "fork",
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_worker: int | None = None,
        options: TaskOptions | None = None,
        chunksize: int | None = None,
        init_timeout: float | None = None,
        idle_timeout: float | None = None,
        name: str = "workhorse-pool",
        remote_traceback: Callable[[str], BaseException] | None = None,
    ) -> None:
        self.workers = workers
        # The type of a task exception's __cause__ (the worker's traceback as text): the
        # face's stdlib class, which code may check by type (see _remote.load_exception).
        self._traceback_type = remote_traceback or RemoteTraceback
        self._init_timeout, self._idle_timeout = init_timeout, idle_timeout
        self.options = options or TaskOptions()
        self._ctx: Any = get_context(start_method)
        # Fork pools fork their workers from a template taken now, in the caller's thread
        # (see _template); spawn and forkserver children import the main script again, so
        # its functions travel by reference unless they cannot import it (stdin, -c).
        self._start_method = start_method
        self._template = Template() if start_method == "fork" else None
        self._main_by_value = start_method != "fork" and not main_importable()
        self._setup = dumps(
            (initializer, initargs), what="initializer", main_by_value=self._main_by_value
        )
        self._max_tasks = max_tasks_per_worker
        self._batcher = Batcher(chunksize)
        self._board = ProgressBoard.create(workers)
        # Large arguments and results travel in shared memory named from these prefixes.
        self._shm_tag = os.urandom(3).hex()
        self._arg_prefix = make_prefix(self._shm_tag, "a")
        self._inbox: deque[tuple[str, Any]] = deque()
        self._wake_r, self._wake_w = os.pipe()
        self._wake_sent = False
        self._wake_closed = False
        self._pending: deque[_Unit] = deque()
        self._pending_items = 0
        self._slots: list[_Worker | None] = [None] * workers
        # id(fn) -> (a weak reference to fn where it takes one, its id, its pickle): the
        # cache must not keep a bound method's object alive (CPython's
        # test_no_stale_references); fn is checked to be the same object on each hit.
        self._fn_ids: dict[int, tuple[Callable[[], Any], int, bytes]] = {}
        self._ids = itertools.count(1)
        self._startup_failures = 0
        self._warned_memory = False
        self._closing = False
        self._terminating = False
        self._broken: BaseException | None = None
        self._lock = threading.Lock()
        self.feeds: weakref.WeakSet[Any] = weakref.WeakSet()  # the lazy maps open on it
        self._thread = threading.Thread(target=self._run, name=f"{name}-manager", daemon=True)
        # The first workers start here, in the caller's thread, as the stdlib's pools start
        # theirs: a spawn child's preparation reads the main module, which the interpreter
        # strips of its __file__ once the script's last line has run.
        try:
            for slot in range(workers):
                self._start_worker(slot)
        except Exception as exc:  # fork() failing: the pool is broken, every call says why
            self._break(exc, "a pool worker could not be started")
        _exit.register(self)
        start_quietly(self._thread)

    # -- called from any thread -------------------------------------------------------

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:  # fmt: skip
        """Queue one task; returns its future."""
        return submit_one(self.run, self.stop_job, fn, args, kwargs, options)

    def run(self, job: Job) -> None:
        """Queue every call of ``job``; outcomes go to its sink."""
        _exit.check_accepting()
        with self._lock:
            if self._broken is not None:
                raise PoolBroken(f"the pool is broken: {self._broken}") from self._broken
            if self._closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._inbox.append(("job", job))
        self._wake()

    def stop_job(self, job: Job) -> None:
        """Stop the items of ``job`` that are running now (their workers are killed)."""
        self._inbox.append(("stop", job))
        self._wake()

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
        """Kill the workers now; every unfinished task is cancelled."""
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

    def _wake(self) -> None:
        if not self._wake_sent:
            with self._lock:
                # Once the manager is gone its pipe is closed, and the descriptor number may
                # already belong to someone else's file: never write to it again.
                if self._wake_closed or self._wake_sent:
                    return
                self._wake_sent = True
                os.write(self._wake_w, b"!")

    # -- the manager thread: queue ----------------------------------------------------

    def _run(self) -> None:
        try:
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
                self._check_lifecycles()
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
            if kind == "job":
                if payload.calls:
                    self._pending.append(_Unit(payload, 0, len(payload.calls)))
                    self._pending_items += len(payload.calls)
            elif kind == "stop":
                self._stop_running(payload)
            elif kind == "cancel_pending":
                self._cancel_pending()

    def _cancel_pending(self) -> None:
        """``shutdown(cancel_futures=True)``: cancel what waits, as the stdlib would.

        The stdlib's executor moves tasks to its call queue as soon as they are submitted,
        up to one per worker and one more besides those running, and those run even though
        no worker has taken them yet: so as many tasks at the head of the queue are kept
        (the rest is cancelled), whether or not the workers have started.
        """
        self._unstage_all()
        keep = len(self._slots) + 1
        kept: list[_Unit] = []
        for unit in self._pending:
            n = min(keep, len(unit))
            keep -= n
            if n < len(unit):
                unit.job.sink.drop(unit.start + n, unit.stop)
                unit.stop = unit.start + n
            if n:
                kept.append(unit)
        self._pending.clear()
        self._pending.extend(kept)
        self._pending_items = sum(map(len, kept))

    def _push_front(self, units: list[_Unit], *, isolate: bool = False) -> None:
        for unit in units:
            unit.isolate = unit.isolate or isolate
            self._pending_items += len(unit)
        self._pending.extendleft(reversed(units))

    def _fail(self, unit: _Unit, index: int, error: BaseException) -> None:
        """Item ``index`` of ``unit``'s job failed: run it again if its retries allow."""
        job = unit.job
        if job.options.should_retry(unit.attempt, error) and not job.sink.cancelled:
            retry = _Unit(job, index, index + 1, unit.attempt + 1)
            retry.isolate = unit.isolate
            self._push_front([retry])
        else:
            job.sink.fail(index, error)

    # -- dispatch ---------------------------------------------------------------------

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

    def _steal_staged(self) -> _Batch | None:
        """A batch staged for a busy worker, for one that is idle."""
        for worker in self._slots:
            if worker is not None and worker.staged is not None:
                staged, worker.staged = worker.staged, None
                return staged
        return None

    def _unstage(self, worker: _Worker) -> None:
        """Put ``worker``'s staged batch back in front of the queue."""
        staged, worker.staged = worker.staged, None
        if staged is not None:
            if staged.segments:
                discard(staged.segments)
            self._push_front(staged.parts)

    def _start_idle_slots(self) -> None:
        """Start workers in the slots emptied by ``idle_timeout``, as many as work needs."""
        wanted = self._pending_items - sum(1 for w in self._slots if w is not None)
        for slot, worker in enumerate(self._slots):
            if wanted <= 0 or self._terminating or self._broken is not None:
                return
            if worker is None:
                self._start_worker(slot)
                wanted -= 1

    def _take_batch(self, worker: _Worker) -> list[_Unit]:
        pending = self._pending
        head = pending[0]
        # A fair share of what is pending among *all* workers, not the idle ones: the first
        # worker to come back must not take the whole tail (long tasks often end an input).
        size = 1 if head.isolate else self._batcher.size(self._pending_items, self.workers)
        if self._max_tasks is not None:
            size = max(1, min(size, self._max_tasks - worker.done))
        fn, kind = head.job.fn, head.job.kind
        parts: list[_Unit] = []
        taken = 0
        while pending and taken < size:
            unit = pending[0]
            job = unit.job
            if job.fn is not fn or job.kind != kind or (parts and unit.isolate):
                break
            if not job.sink.wanted():  # cancelled while queued
                pending.popleft()
                self._pending_items -= len(unit)
                continue
            count = min(size - taken, len(unit))
            if count == len(unit):
                pending.popleft()
                part = unit
            else:
                part = _Unit(job, unit.start, unit.start + count, unit.attempt)
                unit.start += count
            self._pending_items -= count
            parts.append(part)
            taken += count
        return parts

    def _prepare(self, parts: list[_Unit]) -> _Batch | None:
        """Pickle a batch; None if that failed (its items were failed or split apart)."""
        first = parts[0]
        fn_id = self._function_id(first.job, parts)
        if fn_id is None:
            return None
        if len(parts) == 1:
            calls = first.job.calls[first.start : first.stop]
        else:
            calls = [c for part in parts for c in part.job.calls[part.start : part.stop]]
        try:
            if len(calls) == 1:
                what = f"an argument of {first.job.describe(first.start)}"
            else:
                what = "the arguments"
            blob, segments = _pack(calls, what, self._arg_prefix, self._main_by_value)
        except _Unpicklable as exc:
            if len(calls) == 1:
                first.job.sink.fail(first.start, exc.error)  # not retried: it would fail again
            else:  # find the culprit: one item per batch from now on
                self._push_front(_singles(parts), isolate=True)
            return None
        batch_id = next(self._ids)
        if any(part.job.options.timeout for part in parts):
            mode = TIMED
        elif len(calls) >= BULK_MIN and first.job.kind != CALL:
            mode = BULK
        else:
            mode = INDEXED
        message = dumps(("batch", batch_id, fn_id, first.job.kind, mode, blob))
        fn_blob = self._fn_ids[id(first.job.fn)][2]
        return _Batch(batch_id, parts, segments, fn_id, fn_blob, message)

    def _send(self, worker: _Worker, batch: _Batch) -> None:
        """Hand ``batch`` to the idle ``worker`` (its function first, if it lacks it) --
        unless one of its jobs was cancelled while the batch waited (a future is cancellable
        until here): then the rest goes back to the queue and ``worker`` stays idle."""
        if not all(part.job.sink.start() for part in batch.parts):
            if batch.segments:
                discard(batch.segments)
            self._push_front([part for part in batch.parts if part.job.sink.wanted()])
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

    def _function_id(self, job: Job, parts: list[_Unit]) -> int | None:
        fn = job.fn
        key = id(fn)
        entry = self._fn_ids.pop(key, None)
        if entry is not None and entry[0]() is fn:
            self._fn_ids[key] = entry  # most recently used last
            return entry[1]
        if entry is not None:  # id reused by another object: the stale entry goes
            self._fn_ids[key] = entry
            self._forget(key)
        try:
            # A main-script function defined after the template was forked is not in the
            # workers' main module: it travels by value.
            by_value = self._main_by_value or (
                self._template is not None and not self._template.knows(fn)
            )
            blob = _dumps(fn, "function", main_by_value=by_value)
        except _Unpicklable as exc:
            doomed = parts + [u for u in self._pending if u.job.fn is fn]
            self._pending = deque(u for u in self._pending if u.job.fn is not fn)
            self._pending_items = sum(len(u) for u in self._pending)
            for unit in doomed:
                for index in range(unit.start, unit.stop):
                    unit.job.sink.fail(index, exc.error)
            return None
        fn_id = next(self._ids)
        self._fn_ids[key] = (_weak(fn), fn_id, blob)
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

    # -- waiting and outcomes -----------------------------------------------------------

    def _wait_and_handle(self) -> None:
        by_handle: dict[Any, tuple[str, _Worker | None]] = {self._wake_r: ("wake", None)}
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

    def _running_item(self, worker: _Worker) -> tuple[_Unit, int, int] | None:
        """``(part, item index in its job, start time ns)`` of the item ``worker`` runs."""
        batch = worker.batch
        if batch is None:
            return None
        batch_id, index, started = self._board.read(worker.slot)
        if batch_id != batch.id or not 0 <= index < batch.size:
            return None
        part, item = batch.locate(index)
        return part, item, started

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

    def _stop_idle(self, worker: _Worker) -> None:
        """Let a worker idle past ``idle_timeout`` go; ``_dispatch`` starts one on demand."""
        self._slots[worker.slot] = None
        try:
            worker.conn.send_bytes(dumps(("stop",)))
        except OSError:
            pass
        worker.process.join(STOP_GRACE)
        if worker.process.is_alive():
            worker.kill_tree()
            worker.process.join()
        worker.conn.close()
        worker.close_pidfd()

    def _receive(self, worker: _Worker) -> None:
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._on_death(worker)
            return
        try:
            message = unpack(data)
        except BaseException as exc:
            self._unreadable_results(worker, exc)
            return
        kind = message[0]
        if kind == "done":
            self._on_done(worker, message[2], message[3])
        elif kind == "ready":
            worker.ready = True
            worker.since = time.monotonic()
            self._startup_failures = 0
        elif kind == "unpack_failed":
            self._on_unpack_failed(worker, load_exception(message[2]))
        elif kind == "init_failed":
            error = load_exception(message[1])
            self._break(error, "the pool's initializer raised")
        elif kind == "retire":
            if message[2] is not None and not self._warned_memory:
                self._warned_memory = True
                _log.warning(
                    "a pool worker (pid %s) grew by %d MB over %d tasks, a likely memory "
                    "leak: it was replaced (limit: %s bytes, %s)",
                    worker.pid, message[2] // 2**20, message[1], memory_growth_limit(),
                    MEMORY_GROWTH_ENV,
                )  # fmt: skip
            self._retire(worker)

    def _end_batch(self, worker: _Worker) -> _Batch | None:
        """Take ``worker``'s batch off it; its argument segments are no longer needed."""
        batch, worker.batch = worker.batch, None
        if batch is not None and batch.segments:
            discard(batch.segments)
        return batch

    def _on_done(self, worker: _Worker, values: list[Any], failures: dict[int, bytes]) -> None:
        batch = self._end_batch(worker)
        if batch is None:
            return
        if worker.staged is not None:  # first keep the worker busy, then read the results
            staged, worker.staged = worker.staged, None
            self._send(worker, staged)
        worker.since = time.monotonic()
        worker.done += batch.size
        self._batcher.observe(batch.size, time.monotonic() - batch.sent_at)
        if not failures and len(batch.parts) == 1:
            part = batch.parts[0]
            part.job.sink.ok(part.start, values)
            return
        for part, offset in zip(batch.parts, batch.offsets, strict=True):
            sink = part.job.sink
            run_start = part.start  # a run of successes is delivered at once
            for index in range(len(part)):
                if offset + index in failures:
                    item = part.start + index
                    if run_start < item:
                        sink.ok(run_start, values[offset + run_start - part.start : offset + index])
                    payload = failures[offset + index]
                    error = _load_exception(payload, part.job, item, self._traceback_type)
                    self._fail(part, item, error)
                    run_start = item + 1
            if run_start < part.stop:
                sink.ok(run_start, values[offset + run_start - part.start : offset + len(part)])

    def _unreadable_results(self, worker: _Worker, exc: BaseException) -> None:
        batch = self._end_batch(worker)
        if batch is None:
            return
        if batch.size == 1:
            part = batch.parts[0]
            error = DeserializationError(
                f"the result of {part.job.describe(part.start)} could not be unpickled: {exc!r}"
            )
            error.__cause__ = exc
            self._fail(part, part.start, error)
        else:
            self._push_front(_singles(batch.parts), isolate=True)

    def _on_unpack_failed(self, worker: _Worker, exc: BaseException) -> None:
        batch = self._end_batch(worker)
        if batch is None:
            return
        if batch.size == 1:
            part = batch.parts[0]
            error = DeserializationError(
                f"the arguments of {part.job.describe(part.start)} could not be unpickled in "
                f"the worker: {type(exc).__name__}: {exc}"
            )
            error.__cause__ = exc
            self._fail(part, part.start, error)
        else:
            self._push_front(_singles(batch.parts), isolate=True)

    # -- deaths, deadlines, kills -------------------------------------------------------

    def _on_death(self, worker: _Worker) -> None:
        self._slots[worker.slot] = None
        # With a pidfd the process has exited: reaping it cannot block (a sentinel may be
        # held open by a grandchild the task started, so without one, wait a bounded time).
        worker.process.join(None if worker.pidfd is not None else 1.0)
        worker.close_pidfd()
        exitcode = worker.process.exitcode
        worker.conn.close()
        self._unstage(worker)
        batch = self._end_batch(worker)
        self._clean_up_after(worker)
        if batch is not None and not worker.ready:  # died starting: the batch is not to blame
            self._push_front(batch.parts)
        elif batch is not None:
            self._recover(worker, batch, exitcode)
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
        self._replace(worker.slot)

    def _recover(self, worker: _Worker, batch: _Batch, exitcode: int | None) -> None:
        batch_id, index, _ = self._board.read(worker.slot)
        stage = ""
        if batch_id == batch.id and index == BULK_INDEX:  # somewhere in a bulk batch
            self._push_front(_singles(batch.parts), isolate=True)
            return
        if batch_id != batch.id:  # died before its first item: unpickling, most likely
            if batch.size > 1 or not batch.parts[0].isolate:
                self._push_front(_singles(batch.parts), isolate=True)
                return
            index, stage = 0, "before the task started (unpickling its arguments?)"
        elif index >= batch.size:  # every item ran; died while pickling the results
            if batch.size > 1:
                self._push_front(_singles(batch.parts), isolate=True)
                return
            index, stage = 0, "after the task returned, while pickling its result"
        running, item = batch.locate(index)
        # Every other item goes back: those before it lost their results with the worker.
        rest: list[_Unit] = []
        for part in batch.parts:
            if part is not running:
                rest.append(part)
                continue
            if part.start < item:
                rest.append(_Unit(part.job, part.start, item, part.attempt))
            if item + 1 < part.stop:
                rest.append(_Unit(part.job, item + 1, part.stop, part.attempt))
        self._push_front(rest)
        reason = worker.kill_reason
        if reason is not None and reason[1] is running.job and reason[2] == item:
            if reason[0] == "cancel":
                return  # its future is already cancelled, or its map stopped reading
            timeout = running.job.options.timeout
            error: BaseException = TaskTimeout(
                f"{running.job.describe(item)} ran longer than its timeout of {timeout} s and "
                f"was stopped (its worker, pid {worker.pid}, was killed and replaced)"
            )
        else:
            error = WorkerCrashed(running.job.describe(item), worker.pid, exitcode)
            if stage:
                error.add_note(f"the worker died {stage}")
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

    def _kill(self, worker: _Worker, reason: tuple[str, Job | None, int]) -> None:
        worker.kill_reason = reason
        worker.kill_tree()

    # -- worker lifecycle ---------------------------------------------------------------

    def _retire(self, worker: _Worker) -> None:
        self._slots[worker.slot] = None
        batch = self._end_batch(worker)
        if batch is not None:  # never sent by _dispatch; kept as a safety net
            self._push_front(batch.parts)
        worker.process.join(STOP_GRACE)
        if worker.process.is_alive():
            worker.kill_tree()
            worker.process.join()
        worker.conn.close()
        worker.close_pidfd()
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
        limits = (self._max_tasks, self._result_prefix(slot))
        args = (child_conn, self._board.name, self.workers, slot, self._setup, *limits)
        name = f"workhorse-worker-{slot}"
        try:
            if self._template is None:
                process = self._ctx.Process(target=worker_main, args=args, name=name)
                with unblocked():  # this is the masked manager thread: see _signals
                    process.start()
            else:
                process = self._fork_from_template(args, name)
        finally:
            child_conn.close()
        self._slots[slot] = _Worker(slot, process, parent_conn)

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

    def _clean_up_after(self, worker: _Worker) -> None:
        """Remove what a worker that exited left in /dev/shm: results it had begun to send,
        and the primitives its tasks created (it may have been killed before removing them)."""
        sweep(self._result_prefix(worker.slot))
        if worker.pid is not None:
            sweep_created_by(worker.pid)

    def _result_prefix(self, slot: int) -> str:
        return make_prefix(self._shm_tag, "r", slot)

    def _unstage_all(self) -> None:
        for worker in self._slots:
            if worker is not None:
                self._unstage(worker)

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
        self._unstage_all()
        victims = list(self._pending)
        self._pending.clear()
        self._pending_items = 0
        for worker in self._slots:
            batch = None if worker is None else self._end_batch(worker)
            if batch is not None:
                victims.extend(batch.parts)
        for kind, payload in self._inbox:
            if kind == "job":
                victims.append(_Unit(payload, 0, len(payload.calls)))
        self._inbox.clear()
        for unit in victims:
            for index in range(unit.start, unit.stop):
                broken = PoolBroken(str(error))  # each its own: no shared growing traceback
                broken.__cause__ = cause
                unit.job.sink.fail(index, broken)

    def _stop_workers(self) -> None:
        self._unstage_all()
        workers = [w for w in self._slots if w is not None]
        leftovers = list(self._pending)
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
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.kill_tree()
                worker.process.join()
            worker.conn.close()
            worker.close_pidfd()
            self._clean_up_after(worker)
        for kind, payload in self._inbox:
            if kind == "job":
                leftovers.append(_Unit(payload, 0, len(payload.calls)))
        self._inbox.clear()
        for unit in leftovers:
            unit.job.sink.drop(unit.start, unit.stop)
        self._slots = [None] * self.workers
        self._board.close()
        if self._template is not None:
            self._template.close()
        with self._lock:
            self._wake_closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)


def _weak(obj: Any) -> Callable[[], Any]:
    """A weak reference to ``obj``, or a strong one for what takes none (builtins, which
    live as long as their module anyway)."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


def _singles(parts: list[_Unit]) -> list[_Unit]:
    """Every item of ``parts`` as a unit of its own (to find the one that fails)."""
    return [_Unit(p.job, i, i + 1, p.attempt) for p in parts for i in range(p.start, p.stop)]


class _Unpicklable(Exception):
    """Pickling for a task failed; ``error`` is what its future (or map item) gets."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


def _dumps(obj: object, what: str, *, main_by_value: bool = False) -> bytes:
    """``dumps`` for the manager thread: any failure -- a ``__reduce__`` calling
    ``sys.exit`` too, which must not stop this thread -- becomes :class:`_Unpicklable`
    carrying the stdlib-typed error (see ``SerializationError.wrapping``)."""
    try:
        return dumps(obj, what=what, main_by_value=main_by_value)
    except SerializationError as exc:
        raise _Unpicklable(exc) from None
    except BaseException as exc:
        message = f"cannot pickle {what}: {type(exc).__name__}: {exc} (raised while pickling)"
        raise _Unpicklable(SerializationError.wrapping(exc, message)) from None


def _pack(calls: list[Any], what: str, prefix: str, main_by_value: bool) -> tuple[bytes, list[str]]:
    """The arguments of a batch, large buffers in shared memory (see :mod:`._zerocopy`)."""
    try:
        return pack(calls, prefix=prefix, what=what, hold=True, main_by_value=main_by_value)
    except SerializationError as exc:
        raise _Unpicklable(exc) from None
    except OSError:  # /dev/shm full or unavailable: send them in the pipe
        return _dumps(calls, what, main_by_value=main_by_value), []
    except BaseException as exc:
        message = f"cannot pickle {what}: {type(exc).__name__}: {exc} (raised while pickling)"
        raise _Unpicklable(SerializationError.wrapping(exc, message)) from None


def _load_exception(
    payload: bytes, job: Job, index: int, traceback_type: Callable[[str], BaseException]
) -> BaseException:
    """A task's exception from its worker; if it cannot be rebuilt here, say so."""
    try:
        return load_exception(payload, traceback_type)
    except BaseException as exc:  # SystemExit too: it must not stop the manager
        error = DeserializationError(
            f"the exception raised by {job.describe(index)} could not be unpickled: {exc!r}"
        )
        error.__cause__ = exc
        return error
