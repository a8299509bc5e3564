"""The backend contract: what a pool's front end asks of the engine that runs its tasks.

Every pool face (``Pool``, ``ThreadPool``, the two executors, the Dask faces) is a view over
one :class:`~._config.PoolConfig` and one object satisfying :class:`Backend`. The front end
validates arguments, feeds lazy maps and shapes results; the backend only runs jobs (see
:mod:`._scheduler._job`: a job is calls of one function whose outcomes go to a sink). The
built-in backends are ``process`` (:mod:`._backends.process`), ``thread``
(:mod:`._backends.thread`), ``serial`` (:mod:`._backends.serial`) and ``dask``
(:mod:`._dask._engine`); :mod:`._registry` finds them by name.

What a backend must guarantee (the tests in ``tests/test_backends.py`` check each one):

* **Every item of an accepted job gets exactly one outcome** on its sink: ``ok``, ``fail``
  or ``drop`` (the last only for items of a cancelled sink). Nothing is lost, nothing is
  reported twice, whatever dies and when.
* **A worker that dies** (segfault, ``os._exit``, OOM kill, a killed Dask worker) fails
  only the item it was running, with :class:`~workhorse.WorkerCrashed` naming the task,
  the pid where known and the exit code or signal where known. Items of the same batch that
  had not started, or whose results died with the worker, run again; a backend that cannot
  tell which item was running re-runs the batch's items one by one so that the next death
  names the culprit. The pool goes on with a replacement worker.
* **A task past its timeout** (``job.options.timeout``) fails with
  :class:`~workhorse.TaskTimeout` on time, and is stopped for real where the backend can
  stop it (a process is killed, a Dask worker restarted); a thread is asked to stop at its
  next workhorse call and replaced. Retries (``job.options.should_retry``) apply to
  ``WorkerCrashed`` and ``TaskTimeout`` as to any exception; every retry path goes through
  :func:`~._scheduler._outcomes.fail_or_retry`.
* **A result or argument that cannot be encoded or decoded** fails only its own item, with
  :class:`~workhorse.SerializationError` (encoding) or
  :class:`~workhorse.DeserializationError` (decoding), naming the task and the type.
* **A task's exception** reaches the sink as itself (same type, same args), with the
  worker's traceback attached as ``__cause__`` where it ran elsewhere.
* ``stop_job(job)`` stops the job's running items (``cancel_running``); ``shutdown`` waits
  for (or, with ``cancel_futures``, drops) what was accepted; ``terminate`` stops at once and
  drops the rest; after either, ``run`` raises ``RuntimeError`` (the stdlib's words).
* A backend whose workers cannot start (an initializer that raises, a start method that
  cannot import the main module) fails every pending item with
  :class:`~workhorse.PoolBroken` and refuses new work: it never retries forever.
* **It says what it did** through a :class:`~._scheduler._events.PoolEvents` (a worker
  died, a task timed out, a worker was replaced, the pool broke; retries are logged by
  ``fail_or_retry``), so that a log record means the same on every backend. The same calls
  feed ``pool.stats()``; on top of them a backend reports each worker's exit and why
  (``worker_exited``/``worker_stopped``) and the batches each worker ran
  (``ran``: items, seconds, seconds spent pickling). Outcomes are counted by the sinks.

Example::

    from workhorse._registry import make_backend

    backend = make_backend(config)          # config: a PoolConfig
    future = backend.submit(pow, (2, 10), {}, config.options)
    assert future.result() == 1024
    backend.shutdown()
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ._options import TaskOptions
    from ._scheduler._batching import Batcher
    from ._scheduler._events import PoolEvents
    from ._scheduler._job import Job

__all__ = ["Backend", "BackendBase"]


@runtime_checkable
class Backend(Protocol):
    """What a pool's front end needs from the engine that runs its tasks (see the module
    docstring for the contract on deaths, timeouts and encoding errors)."""

    #: how many tasks run at once (the front end sizes lazy maps' windows by it)
    workers: int
    #: the lazy maps open on this backend: shutdown and the interpreter's exit drain them
    feeds: weakref.WeakSet[Any]
    #: calls run in the caller as they are queued (the serial backend): a lazy map then
    #: pulls its input one call at a time, when it is read
    inline: bool
    #: its log records and the counts behind ``pool.stats()``
    events: PoolEvents

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:  # fmt: skip
        """Queue one call; its future is a real :class:`concurrent.futures.Future`."""
        ...

    def run(self, job: Job) -> None:
        """Queue every call of ``job``; outcomes go to ``job.sink``. Raises ``RuntimeError``
        after shutdown and :class:`~workhorse.PoolBroken` once broken."""
        ...

    def stop_job(self, job: Job) -> None:
        """Stop the running calls of ``job`` (its sink is already cancelled)."""
        ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept nothing more; ``wait`` for what was accepted (or drop what has not started)."""
        ...

    def terminate(self) -> None:
        """Stop now: running calls are stopped, pending ones dropped, workers gone."""
        ...

    @property
    def alive(self) -> bool:
        """Whether any worker still runs (``Pool.join(timeout)`` polls it)."""
        ...

    @property
    def recent_batch(self) -> int:
        """Items per batch lately (1 when nothing is batched): a lazy map keeps a few
        batches per worker in flight."""
        ...


class BackendBase:
    """What the built-in backends share: ``submit`` as a job of one call (its sink is the
    future), and the batch-size hint from their :class:`~._scheduler._batching.Batcher`. A
    backend subclasses it and provides the rest of :class:`Backend`."""

    inline = False
    _batcher: Batcher

    @property
    def recent_batch(self) -> int:
        """Items per batch lately (see :class:`Backend`)."""
        return self._batcher.recent

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:  # fmt: skip
        """Queue one call; returns its future."""
        from ._scheduler._job import submit_one  # the engines import this module

        return submit_one(self.run, self.stop_job, fn, args, kwargs, options)

    def run(self, job: Job) -> None:  # pragma: no cover - every backend defines it
        raise NotImplementedError

    def stop_job(self, job: Job) -> None:  # pragma: no cover - every backend defines it
        raise NotImplementedError
