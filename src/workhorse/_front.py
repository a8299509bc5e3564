"""The pool front end: what every pool face does with its config and its backend.

``Pool``/``ThreadPool`` (:mod:`._pool`), the two executors (:mod:`._executor`) and the Dask
faces are views over one :class:`Front`: it holds the validated
:class:`~._config.PoolConfig`, the backend made from it (:mod:`._registry`) and the task
options of the view, and turns the faces' calls into jobs -- one call (``submit``), a whole
list (``Pool.map``) or a lazy map (:mod:`._lazy_map`). The faces only keep the stdlib's
shapes: argument names, return types, error types.

Example::

    front = Front.open(PoolConfig.build(default_backend="threads", default_workers=2))
    assert front.run_one(pow, (2, 10), {}).result() == 1024
    front.close(wait=True)
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from ._backend import Backend
from ._config import PoolConfig
from ._futures import count_outcome
from ._lazy_map import Feed, ResultIterator, describe, input_length
from ._options import Progress, TaskOptions, check_progress
from ._progress_bar import ProgressBar, SubmitBars, make_bar
from ._registry import make_backend
from ._scheduler._exit import cut_feeds, drain_feeds
from ._scheduler._job import Job, ListSink
from ._stats import PoolStats
from ._task_times import TaskTimes
from ._trace import Timeline, insights

__all__ = ["UNSET", "Front", "FrontView", "View"]

T = TypeVar("T")


class _Unset:
    """A ``with_options`` argument that was not given: the view keeps the pool's value
    (``help()`` shows it as ``<the pool's>``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<the pool's>"


UNSET: Any = _Unset()


class Front:
    """One pool's config, backend and task options; views share the first two (and the
    progress bars of ``submit`` calls)."""

    __slots__ = ("__weakref__", "backend", "bars", "config", "options", "progress")

    def __init__(
        self, config: PoolConfig, backend: Backend, options: TaskOptions, progress: Progress,
        bars: SubmitBars | None = None,
    ) -> None:  # fmt: skip
        self.config, self.backend = config, backend
        self.options, self.progress = options, progress
        self.bars = SubmitBars() if bars is None else bars

    @classmethod
    def open(cls, config: PoolConfig, owner: object | None = None) -> Front:
        """Make the backend of ``config``; it shuts down (without waiting) once ``owner``
        (the face) is garbage-collected."""
        backend = make_backend(config)
        if config.trace is not None:
            backend.events.timeline = Timeline(config.trace, backend.events.name)
        if config.insights:
            backend.events.per_task = TaskTimes()
        front = cls(config, backend, config.options, config.progress)
        if owner is not None:
            weakref.finalize(owner, backend.shutdown, False)
        return front

    @property
    def workers(self) -> int:
        """How many tasks run at once."""
        return self.backend.workers

    def view(self, given: Mapping[str, Any]) -> Front:
        """The front of a ``with_options`` view: the ``given`` options replace this one's
        (validated), sharing the backend."""
        changes = {name: value for name, value in given.items() if name != "progress"}
        progress = given.get("progress", UNSET)
        shown = self.progress if progress is UNSET else check_progress(progress)
        options = self.options.updated(**changes)
        return Front(self.config, self.backend, options, shown, self.bars)

    def run_one(
        self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Future[T]:
        """Queue ``fn(*args, **kwargs)``."""
        future = self.backend.submit(fn, args, kwargs, self.options)
        tally = self.backend.events.counts
        if tally is not None:
            tally.accepted(1)
            count_outcome(future, tally)
        if self.progress:
            self.bars.track(self.progress, future)
        return future

    def run_all(
        self, fn: Callable[..., Any], calls: list[Any], kind: str, chunksize: int | None = None
    ) -> tuple[ListSink, ProgressBar | None]:
        """Run every call as one job; its sink fills a list in input order (``chunksize``:
        the batch size the call asked for, else adaptive)."""
        bar = make_bar(self.progress, len(calls), describe(fn))
        on_ready = None if bar is None else (lambda _s, start, stop: bar.update(stop - start))
        sink = ListSink(len(calls), on_ready, self.backend.events.counts)
        if calls:
            self.backend.run(Job(fn, calls, self.options, sink, kind, chunksize))
        return sink, bar

    def lazy_map(
        self, fn: Callable[..., T], calls: Iterator[Any], kind: str, inputs: Iterable[Any],
        *, ordered: bool, chunksize: int | None = None, **iteration: Any,
    ) -> ResultIterator[T]:  # fmt: skip
        """A lazy map of ``fn`` over ``calls`` (pulled from ``inputs``); ``chunksize``: the
        batch size the call asked for, else adaptive; ``iteration``:
        :class:`ResultIterator`'s keyword arguments."""
        length = input_length(*inputs)
        bar = make_bar(self.progress, length, describe(fn))
        feed = Feed(
            self.backend, fn, calls, kind, self.options, ordered=ordered, bar=bar,
            sized=length is not None, chunksize=chunksize,
        )  # fmt: skip
        return ResultIterator(feed, **iteration)

    def close(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more tasks: the open lazy maps submit their rest (or are cut, with
        ``cancel_futures``), then the backend shuts down."""
        if cancel_futures:
            cut_feeds(self.backend)
        else:
            drain_feeds(self.backend)
        self.backend.shutdown(wait, cancel_futures=cancel_futures)
        self.bars.close(wait)
        self.write_trace()

    def terminate(self) -> None:
        """Stop now: lazy maps are cut, running tasks stopped, queued ones cancelled."""
        cut_feeds(self.backend)
        self.backend.terminate()
        self.bars.close()
        self.write_trace()

    def write_trace(self) -> None:
        """(Re)write the pool's ``trace=`` file, if it has one."""
        timeline = self.backend.events.timeline
        if timeline is None:
            return
        try:
            timeline.write()
        except OSError as exc:  # the pool's work is done: a trace that cannot be written
            self.backend.events.logger.warning("%s: cannot write trace: %s", timeline.pool, exc)


class FrontView:
    """A pool face or view: everything it does goes through its :class:`Front`."""

    _front: Front

    def stats(self) -> PoolStats:
        """What the pool has done so far (always on; a view reports its pool's): tasks
        submitted, done, failed, cancelled, retried and timed out, worker starts and exits by
        cause, each worker's busy and idle time, and time spent pickling.

        Example::

            with workhorse.Pool(2) as pool:
                pool.map(abs, range(100))
                print(pool.stats().done)   # 100
        """
        return self._front.backend.events.tally.snapshot()

    def insights(self) -> str:
        """What the pool did, in words: its counts, each worker's tasks, busy time and
        utilization, and the slowest batches it ran (the slowest tasks, when they ran alone)
        with their calls; with ``insights=True``, also how long tasks ran and waited in the
        queue (mean, median, p95, max) and the slowest tasks. Pools created with
        ``trace="run.json"`` also write a timeline at shutdown that https://ui.perfetto.dev
        opens, one track per worker.

        Example::

            with workhorse.Pool(2) as pool:
                pool.map(work, items)
                print(pool.insights())
        """
        events = self._front.backend.events
        tasks = None if events.per_task is None else events.per_task.summary()
        return insights(events.name, events.tally.snapshot(), events.slowest.entries(), tasks)


class View(FrontView):
    """A pool seen with other task options (``with_options``): its own front (options,
    progress) over its owner's backend."""

    def __init__(self, owner: Any, front: Front) -> None:
        self._owner, self._front = owner, front

    def __repr__(self) -> str:
        return f"<workhorse.{type(self).__name__} of {self._owner!r} with {self._front.options}>"
