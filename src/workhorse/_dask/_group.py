"""Task groups on a Dask cluster: each member is one task on a worker of the cluster.

:class:`~workhorse._taskgroup.TaskGroup` needs a worker class with ``start``, ``is_alive``,
``result`` and ``exception``; :class:`DaskTask` is one, over a :class:`~._engine.DaskEngine`
shared by the group's members. So a member gets everything the engine gives a submitted
task: its exception (with the remote traceback) is the member's failure, a member whose
worker died fails with ``WorkerCrashed``, and stopping a running member (the group does it
when a sibling fails) kills its worker process, which the nanny restarts -- a Dask task
cannot be stopped any other way.

What differs from processes and threads: a member runs on a worker *thread* of the cluster,
so members beyond the cluster's threads wait for one to be free (Dask queues them); members
that wait on each other need at least as many threads as members.

Example::

    with workhorse.dask() as cluster:
        with cluster.group() as g:
            g.start(pow, 2, 10)
            g.start(pow, 3, 2)
        print(g.results)   # [1024, 9]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future
from concurrent.futures import wait as wait_futures
from typing import Any

from ._engine import DaskEngine

__all__ = ["DaskTask", "member_class"]

# The engine holds back batches beyond 2 x this; members must never wait behind each other
# in the engine (they may block on one another), so Dask alone decides when each runs.
UNBOUNDED = 1 << 20


class DaskTask:
    """One member of a task group: ``target(*args, **kwargs)`` as a task on the cluster.

    Made by ``cluster.group().start(...)``; the ``Process``-like surface the group uses.

    Example::

        with cluster.group() as g:
            task = g.start(sum, [1, 2])
        assert task.result() == 3
    """

    def __init__(
        self,
        engine: DaskEngine,
        target: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self._engine = engine
        self._target, self._args, self._kwargs = target, tuple(args), dict(kwargs or {})
        self._future: Future[Any] | None = None

    def start(self) -> None:
        """Submit the task (once)."""
        if self._future is not None:
            raise RuntimeError("a task can only be started once")
        engine = self._engine
        # A group stops a running member by cancelling its future: the task must really stop.
        options = engine.options.updated(cancel_running=True)
        self._future = engine.submit(self._target, self._args, self._kwargs, options)

    def _started(self) -> Future[Any]:
        if self._future is None:
            raise RuntimeError("the task has not been started")
        return self._future

    def is_alive(self) -> bool:
        """True from ``start()`` until the task's outcome is known."""
        return self._future is not None and not self._future.done()

    def result(self, timeout: float | None = None) -> Any:
        """The return value (waits up to ``timeout``); re-raises the task's exception."""
        return self._started().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's exception, or None; ``CancelledError`` if the group stopped it."""
        future = self._started()
        try:
            return future.exception(timeout)
        except CancelledError as stopped:
            return stopped

    def terminate(self) -> None:
        """Stop the task: a running one by killing its worker process (see the module)."""
        if self._future is not None:
            self._future.cancel()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the task's outcome is known."""
        if self._future is not None:
            wait_futures([self._future], timeout)

    # The group's hooks: wake its watcher when the outcome arrives (no handle to wait on).
    def _wh_on_finish(self, callback: Callable[[], None]) -> None:
        self._started().add_done_callback(lambda _: callback())

    def _wh_finished(self) -> bool:
        return self._future is not None and self._future.done()

    def __repr__(self) -> str:
        state = "new" if self._future is None else ("running" if self.is_alive() else "done")
        return f"<workhorse.dask task {getattr(self._target, '__name__', self._target)} {state}>"


def member_class(client: Any) -> Callable[..., DaskTask]:
    """The worker class of one group: :class:`DaskTask` bound to a new engine on ``client``."""
    engine = DaskEngine(client, UNBOUNDED)

    def make(
        target: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> DaskTask:
        return DaskTask(engine, target, args, kwargs)

    return make
