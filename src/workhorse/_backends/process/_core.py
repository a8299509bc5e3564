"""The process pool engine: one manager thread, one duplex pipe per worker.

::

    caller threads            manager thread (owns every scheduling structure)       workers
    --------------            ------------------------------------------------       -------
    run(job) ──► inbox ──────► pending (deque of units: item ranges of jobs)
                 + wake pipe    dispatch: a batch per idle worker ──── pipe ───────► run items
                                                                               (progress slot)
                                wait(conns, sentinels, wake, timeout=next deadline)
                                DONE+results ◄────────────────────────── pipe ◄──── outcomes
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
* A worker's next batch is pickled while it is busy (``staged``) and sent as soon as its
  results arrive, before they are unpickled (a results message starts with
  ``_worker.DONE``, so the manager knows it unread); staged batches are not sent ahead,
  so an idle worker can take one from a busy worker, and a pool of N workers always runs
  N tasks at once (tasks may wait for each other).
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

import itertools
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from multiprocessing import get_context
from typing import Any

from ..._backend import BackendBase
from ..._errors import PoolBroken, RemoteTraceback
from ..._options import TaskOptions
from ..._process import main_importable
from ..._scheduler import _exit
from ..._scheduler._batching import Batcher
from ..._scheduler._events import PoolEvents
from ..._scheduler._job import Job
from ..._scheduler._units import Pending
from ..._serialize import dumps
from ..._signals import start_quietly
from ._dispatch import Dispatch
from ._lifecycle import WorkerLifecycle
from ._progress import ProgressBoard
from ._results import Results
from ._shared import SharedData
from ._template import Template
from ._wire import FUNCTION_CACHE, FunctionCache
from ._zerocopy import make_prefix

__all__ = ["FUNCTION_CACHE", "MIN_BATCH_SECONDS", "ProcessEngine"]

# No batch of a job whose item time is known carries less than this much work: the tail of a
# map of no-ops then ends in a few batches, not in sixty that shrink to one item each (each
# costs a round trip of ~0.1 ms; measured: 17 of a 30 ms map of 100,000 no-ops).
MIN_BATCH_SECONDS = 0.002
# ... but never more items than this for the floor's sake: a worker collects the young garbage
# generation after each batch, so the reference cycles a batch of small tasks leaves stay
# bounded (fewer than 150 of 300 alive at once: loky's test, our fault matrix's E5).
MIN_BATCH_ITEMS = 128
# ... and only for items shorter than a batch's round trip: longer ones gain nothing from it,
# and at the tail of a map two of them in one batch can be two long ones.
FLOOR_ITEMS_UNDER = 0.0001


class ProcessEngine(BackendBase, Dispatch, Results, WorkerLifecycle):
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
        events: PoolEvents | None = None,
        worker_exit: Callable[[], Any] | None = None,
        shared: Any = None,
    ) -> None:
        self.workers = workers
        self.events = events or PoolEvents("processes")
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
        self._main_by_value = start_method != "fork" and not main_importable()
        # Before the template: under fork the workers inherit it from the table it enters.
        self._shared = (
            None
            if shared is None
            else SharedData(shared, start_method=start_method, main_by_value=self._main_by_value)
        )
        self._template = Template() if start_method == "fork" else None
        self._setup = dumps(
            (initializer, initargs, start_method, worker_exit), what="initializer",
            main_by_value=self._main_by_value,
        )  # fmt: skip
        self._max_tasks = max_tasks_per_worker
        self._batcher = Batcher(
            chunksize, floor=MIN_BATCH_SECONDS, floor_items=MIN_BATCH_ITEMS,
            floor_under=FLOOR_ITEMS_UNDER,
        )  # fmt: skip
        self._board = ProgressBoard.create(workers)
        # Large arguments and results travel in shared memory named from these prefixes.
        self._shm_tag = os.urandom(3).hex()
        self._arg_prefix = make_prefix(self._shm_tag, "a")
        self._inbox: deque[tuple[str, Any]] = deque()
        self._wake_r, self._wake_w = os.pipe()
        self._wake_sent = False
        self._wake_closed = False
        self._pending = Pending()
        self._slots = [None] * workers
        self._ids = itertools.count(1)  # of batches and functions
        self._functions = FunctionCache(self._ids)
        self._startup_failures = 0
        self._warned_memory = False
        self._closing = False
        self._terminating = False
        self._broken = None
        self._lock = threading.Lock()
        self.feeds: weakref.WeakSet[Any] = weakref.WeakSet()  # the lazy maps open on it
        self._thread = threading.Thread(target=self._run, name=f"{name}-manager", daemon=True)
        # The first workers start here, in the caller's thread, as the stdlib's pools start
        # theirs: a spawn child's preparation reads the main module, which the interpreter
        # strips of its __file__ once the script's last line has run. Under fork they are
        # forked from this thread at the instant the template was (no thread of this pool
        # runs yet): a direct fork costs a fraction of a template's round trip.
        try:
            for slot in range(workers):
                self._start_worker(slot, directly=True)
        except Exception as exc:  # fork() failing: the pool is broken, every call says why
            self._break(exc, "a pool worker could not be started")
        _exit.register(self)
        self.events.started(workers, f"processes, start method {start_method}")
        start_quietly(self._thread)

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
        self.events.shutting_down(wait, cancel_futures)
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
        self.events.shutting_down(False, True)
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
                self._pending.add(payload)
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
        self._pending.keep_first(len(self._slots) + 1)
