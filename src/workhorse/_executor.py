"""``ProcessPoolExecutor`` and ``ThreadPoolExecutor``: the stdlib's faces on workhorse's engines.

Both are real :class:`concurrent.futures.Executor` subclasses returning real
:class:`concurrent.futures.Future` objects, so ``wait``, ``as_completed`` and
``asyncio.wrap_future`` work unchanged. This module also holds :class:`ResultIterator`, the
lazy, bounded result stream behind ``Executor.map`` and ``Pool.imap``/``imap_unordered``.

Differences from the stdlib (deliberate):

* A worker that dies (segfault, ``os._exit``, OOM kill) fails only the task it was running,
  with :class:`~workhorse.WorkerCrashed` (a ``BrokenProcessPool``); the pool replaces the
  worker and goes on. The stdlib breaks the whole pool.
* With ``cancel_running=True``, ``future.cancel()`` stops a *running* task (its worker is
  killed and replaced) and returns True; by default it returns False, as the stdlib's.
* ``map`` pulls its input lazily: the first calls are submitted by ``map()`` itself, the
  rest as results are read, so an infinite iterator works and memory stays flat (the stdlib
  reads the whole input inside ``map()``, and hangs on an infinite one). Every call still
  runs, read or not, when the input has a length or nobody started reading: ``shutdown()``,
  the interpreter's exit and dropping the unread iterator submit the rest, as the stdlib
  would have. An input without a length that is being read runs as far as it is read.
  Consequence: an error raised by the input iterable is raised by ``next()`` at its
  position, not by ``map()``. ``shutdown(cancel_futures=True)`` drops the unread rest.
* ``map(chunksize=)`` is validated and otherwise ignored: batching is adaptive, or fixed by
  the ``chunksize=`` of the constructor, for every call.
* ``max_tasks_per_child`` works with every start method (the stdlib refuses ``fork``).
* Leaving a ``with`` block on ``KeyboardInterrupt`` (or another ``BaseException``) stops
  the work at once (``terminate()``) instead of waiting for it.
* Extras as keyword arguments of the constructor: ``timeout`` (per task), ``retries`` and
  ``retry_on``, ``max_tasks_per_worker``, ``progress``, ``chunksize`` (``"auto"`` by
  default); per-call overrides only through :meth:`with_options`, never as keyword
  arguments of ``submit``/``map``, which belong to the task.
"""

from __future__ import annotations

import concurrent.futures.process
import itertools
import multiprocessing
import os
import pickle
import queue
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from ._engine._batching import Batcher
from ._engine._core import ProcessEngine
from ._engine._exit import cut_feeds, drain_feeds
from ._engine._job import ARGS, ITEM, MISSING, Failed, Job, ListSink
from ._engine._threads import ThreadEngine
from ._options import (
    Progress,
    TaskOptions,
    check_chunksize,
    check_initializer,
    check_max_tasks,
    check_progress,
    check_seconds,
    check_workers,
)
from ._process import check_not_bootstrapping
from ._progress_bar import ProgressBar, make_bar
from ._serialize import PROTOCOL
from ._signals import start_quietly

__all__ = [
    "MAP_READ_AHEAD_BYTES_PER_WORKER",
    "MAP_WINDOW_PER_WORKER",
    "MAX_MAP_WINDOW_PER_WORKER",
    "OptionsView",
    "ProcessPoolExecutor",
    "ResultIterator",
    "ThreadPoolExecutor",
]

T = TypeVar("T")
Engine = ProcessEngine | ThreadEngine
# The __cause__ type of a task's exception, as the stdlib's executor makes it (typeshed does
# not declare it; code checks it by type).
_STDLIB_REMOTE_TRACEBACK: Any = concurrent.futures.process._RemoteTraceback
UNSET: Any = object()
MAP_WINDOW_PER_WORKER = 8192  # calls in flight per worker while a lazy map streams its input
# ... and up to this many when items are fast (large batches): a few batches per worker.
MAX_MAP_WINDOW_PER_WORKER = 4 * MAP_WINDOW_PER_WORKER
# ... and never more than this many bytes of input per worker (an estimate, from a sample of
# the items pulled): 8,192 items of 4 MiB would be 32 GiB.
MAP_READ_AHEAD_BYTES_PER_WORKER = 32 * 2**20


class _InputError:
    """The input iterable raised here: ``next()`` raises ``error`` at this position."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Feed:
    """The state of one lazy map: its input, the chunks in flight and their results.

    The input is pulled a chunk at a time; each chunk is one job whose results land in a
    :class:`ListSink`. Shared by its :class:`ResultIterator`, the pool (``drain``/``cut`` at
    shutdown) and the iterator's finalizer, so it must not refer to the iterator. ``lock``
    guards the input and the bookkeeping; waiting for a result happens outside it.
    """

    def __init__(
        self, engine: Engine, fn: Callable[..., Any], calls: Iterator[Any], kind: str,
        options: TaskOptions, window: int, *, ordered: bool, bar: ProgressBar | None,
    ) -> None:  # fmt: skip
        self.engine, self.fn, self.kind, self.options = engine, fn, kind, options
        self.base_window = window
        self._batcher: Batcher | None = getattr(engine, "_batcher", None)
        self._workers: int = getattr(engine, "workers", 1)
        self.calls: Iterator[Any] | None = calls
        self.ordered, self.bar = ordered, bar
        self.lock = threading.Lock()
        self.jobs: deque[Job] = deque()  # submitted, maybe unfinished (for cut)
        self.entries: deque[ListSink | _InputError] = deque()  # ordered: in input order
        self.head = 0  # ordered: the next index to take from ``entries[0]``
        self.finished: queue.SimpleQueue[tuple[ListSink, int, int] | _InputError] = (
            queue.SimpleQueue()
        )
        self.outstanding = 0  # items submitted (and input errors) not yet taken
        self.taken = 0
        self.item_bytes: float | None = None  # the pickled size of an input item, sampled
        self.started = False  # the consumer asked for a first result
        self.sized = False  # the input has a length: it ends
        self.dropping = False  # nobody will read: results are not kept (see abandon)
        # A dropped Executor.map that was being read cancels what has not started, as the
        # stdlib's generator does when it is closed (see abandon).
        self.cancel_when_dropped = False
        feeds = getattr(engine, "feeds", None)
        if feeds is not None:  # shutdown and the interpreter's exit drain it
            feeds.add(self)

    @property
    def window(self) -> int:
        """How many calls may be in flight: the base window, larger while items are fast
        (in big batches), so that every worker has a few batches' worth of work ahead; and
        never more than :data:`MAP_READ_AHEAD_BYTES_PER_WORKER` per worker of input, by the
        sampled size of its items (but at least two per worker: one running, one next)."""
        items = self.base_window
        if self._batcher is not None:
            ahead = 4 * self._batcher.recent * self._workers
            items = max(items, min(ahead, MAX_MAP_WINDOW_PER_WORKER * self._workers))
        if self.item_bytes:
            budget = MAP_READ_AHEAD_BYTES_PER_WORKER * self._workers / self.item_bytes
            items = min(items, max(2 * self._workers, int(budget)))
        return items

    def _sample(self, item: object) -> None:
        """Fold the pickled size of one input item into ``item_bytes`` (large buffers counted
        without copying them)."""
        size = 0

        def count(buffer: pickle.PickleBuffer) -> bool:
            nonlocal size
            size += buffer.raw().nbytes
            return False

        try:
            size += len(pickle.dumps(item, PROTOCOL, buffer_callback=count))
        except Exception:
            size += sys.getsizeof(item)
        known = self.item_bytes
        self.item_bytes = size if known is None else 0.7 * known + 0.3 * size

    def refill(self, limit: int) -> None:
        """Pull and submit calls until ``limit`` are outstanding or the input ends (lock held).

        The first item is pulled alone and sampled, so that the chunks that follow are sized
        by bytes too (see ``window``); then the first item of each chunk is sampled."""
        step = max(1, self.window // 8)
        if self.outstanding and self.outstanding > limit - step:
            return  # refill in chunks of ``step``: one submission and wake-up for many calls
        while self.calls is not None and self.outstanding < limit:
            if self.item_bytes is None:
                step = 1
            elif limit < sys.maxsize:
                step = max(1, min(step, self.window // 8))
            chunk: list[Any] = []
            error: BaseException | None = None
            try:
                chunk.extend(itertools.islice(self.calls, min(step, limit - self.outstanding)))
                if not chunk:
                    self.calls = None
                else:
                    self._sample(chunk[0])
                    if limit < sys.maxsize:
                        limit = min(limit, self.window)
            except Exception as exc:
                error, self.calls = exc, None
            finally:  # a KeyboardInterrupt in the input must not lose what was pulled
                if chunk:
                    self._submit(chunk)
            if error is not None:
                self._add(_InputError(error), 1)

    def _submit(self, chunk: list[Any]) -> None:
        sink = ListSink(len(chunk), self._ready if (self.bar or not self.ordered) else None)
        job = Job(self.fn, chunk, self.options, sink, self.kind)
        try:
            self.engine.run(job)
        except Exception as exc:  # shut down or broken meanwhile: raised at this position
            exc.add_note(
                "workhorse pulls map/imap input lazily; the pool stopped accepting tasks "
                "before this input was consumed"
            )
            self.calls = None
            self._add(_InputError(exc), 1)
            return
        while self.jobs and self.jobs[0].sink.remaining <= 0:  # type: ignore[attr-defined]
            self.jobs.popleft()
        self.jobs.append(job)
        self._add(sink, len(chunk))

    def _add(self, entry: ListSink | _InputError, items: int) -> None:
        if self.dropping:
            return
        self.outstanding += items
        if self.ordered:
            self.entries.append(entry)
        elif isinstance(entry, _InputError):
            self.finished.put(entry)

    def _ready(self, sink: ListSink, start: int, stop: int) -> None:
        if self.bar is not None:
            self.bar.update(stop - start)
        if not self.ordered:
            self.finished.put((sink, start, stop))

    @property
    def must_complete(self) -> bool:
        """Whether every call of the input must run, read or not, as the stdlib's eager
        maps run them: yes for an input with a length, and for one nobody started to read.
        An input without a length that is being read may be infinite (the lazy streaming
        only workhorse offers -- the stdlib's maps hang on such an input): it runs as far
        as it is read."""
        return self.sized or not self.started

    def drain(self) -> None:
        """Submit the rest of the input (the pool is about to stop accepting tasks) if it
        ``must_complete``, so that every call runs and its result can still be read; else
        reading past what was submitted raises at that position."""
        with self.lock:
            if self.must_complete:
                self.refill(sys.maxsize)

    def in_flight(self) -> int:
        """Calls submitted and not yet finished (lock held)."""
        while self.jobs and self.jobs[0].sink.remaining <= 0:  # type: ignore[attr-defined]
            self.jobs.popleft()
        return sum(job.sink.remaining for job in self.jobs)  # type: ignore[attr-defined]

    def pump(self) -> None:
        """Run every call of an input nobody reads, a window at a time (see ``abandon``)."""
        while True:
            with self.lock:
                if self.in_flight() < self.window:
                    self.outstanding = self.in_flight()  # nothing is taken: count what runs
                    self.refill(self.window)
                if self.calls is None:
                    return
                oldest = self.jobs[0] if self.jobs else None
            if oldest is not None:
                oldest.sink.wait_done()  # type: ignore[attr-defined]

    def cut(self, *, stop_running: bool = False) -> None:
        """Read no more input and dispatch no more of its calls. Running calls finish in the
        background (as with the stdlib's ``Future.cancel``), their results dropped, unless
        ``stop_running`` (a ``map`` past its timeout): then they are stopped for real."""
        with self.lock:
            self.calls = None
            jobs = list(self.jobs)
        for job in jobs:
            sink = job.sink
            assert isinstance(sink, ListSink)
            if sink.remaining > 0:
                sink.cancel()
                if stop_running:
                    self.engine.stop_job(job)

    def abandon(self) -> None:
        """The iterator was garbage-collected: if the input ``must_complete``, the rest of
        it is pulled in the background and run, the results dropped (an ``imap``'s calls
        all run with the stdlib, as do those of an ``Executor.map`` nobody read); else --
        and for an ``Executor.map`` that was being read, as the stdlib's generator does
        when it is closed -- what has not started is cancelled."""
        if self.bar is not None:
            self.bar.close()
        if (self.cancel_when_dropped and self.started) or not self.must_complete:
            self.cut()
            return
        with self.lock:
            self.dropping = True
            self.entries.clear()
            if self.calls is None:
                return
        thread = threading.Thread(target=self.pump, name="workhorse-map-pump", daemon=True)
        start_quietly(thread)


class ResultIterator(Iterator[T]):
    """The results of a lazy map: ``Executor.map``, ``Pool.imap`` and ``Pool.imap_unordered``.

    An iterator, with ``next(timeout)`` as :class:`multiprocessing.pool.IMapIterator` and a
    ``close()`` that stops reading the input and cancels what has not started (also done
    when the iterator is garbage-collected).

    Example::

        results = pool.imap(work, itertools.count())   # infinite input: fine
        first = results.next(timeout=5)
        results.close()
    """

    def __init__(
        self, feed: _Feed, *, deadline: float | None = None, stop_on_error: bool = False,
        timeout_error: type[BaseException] = TimeoutError,
    ) -> None:  # fmt: skip
        self._feed = feed
        self._deadline, self._stop_on_error = deadline, stop_on_error
        self._timeout_error = timeout_error
        self._consume = threading.Lock()
        self._finished = False
        # Results already in, taken a run at a time: next() is a pop for most items.
        self._ready: deque[Any] = deque()
        feed.cancel_when_dropped = stop_on_error
        self._finalizer = weakref.finalize(self, feed.abandon)
        with feed.lock:  # start the work now, as the stdlib does
            feed.refill(feed.window)

    def __iter__(self) -> ResultIterator[T]:
        return self

    def __next__(self) -> T:
        ready = self._ready  # emptied when the iterator finishes
        if ready:
            try:
                value = ready.popleft()
            except IndexError:  # another consumer thread took it
                pass
            else:
                if type(value) is not Failed:
                    return value  # type: ignore[no-any-return]
                ready.appendleft(value)
        return self.next()

    def next(self, timeout: float | None = None) -> T:
        """The next result; ``timeout`` seconds at most (then a ``TimeoutError`` of the
        pool's kind, and the iterator stays usable for ``Pool.imap``)."""
        with self._consume:
            self._feed.started = True
            if self._finished:
                raise StopIteration
            try:
                value = self._ready.popleft() if self._ready else self._next(timeout)
                if type(value) is Failed:
                    raise value.error
                return value  # type: ignore[no-any-return]
            except StopIteration:
                self._finish()
                raise
            except BaseException as exc:
                if self._stop_on_error:  # Executor.map is a generator: an error ends it
                    expired = self._deadline is not None and time.monotonic() >= self._deadline
                    # past map(timeout=): with cancel_running, what runs is stopped too
                    stop = expired and self._feed.options.cancel_running
                    self._finish(stop_running=stop and isinstance(exc, TimeoutError))
                raise

    def close(self) -> None:
        """Stop: read no more input, cancel the calls that have not started (an addition:
        the stdlib's ``imap`` has no ``close``; dropping an iterator runs all its calls)."""
        self._finish()

    def _finish(self, *, stop_running: bool = False) -> None:
        self._finished = True
        self._finalizer.detach()
        feed = self._feed
        feed.cut(stop_running=stop_running)
        if feed.bar is not None:
            feed.bar.close(done=feed.taken - len(self._ready))
        self._ready.clear()

    def _wait_until(self, timeout: float | None) -> float | None:
        if timeout is not None:
            timeout = max(0.0, timeout)
        if self._deadline is not None:
            left = max(0.0, self._deadline - time.monotonic())
            timeout = left if timeout is None else min(timeout, left)
        return timeout

    def _timed_out(self) -> BaseException:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return TimeoutError("map() did not finish before its timeout")
        return self._timeout_error("no result within the timeout")

    def _next(self, timeout: float | None) -> Any:
        """Take the next run of results that are in (waiting for the first) into ``_ready``
        and return its first value."""
        feed = self._feed
        with feed.lock:
            feed.refill(feed.window)
            if feed.outstanding == 0:
                raise StopIteration
            head = feed.entries[0] if feed.ordered else None
            index = feed.head
        wait = self._wait_until(timeout)
        if feed.ordered:
            if isinstance(head, _InputError):
                with feed.lock:
                    feed.entries.popleft()
                    feed.outstanding -= 1
                raise head.error
            assert isinstance(head, ListSink)
            if not head.wait(index, wait):
                raise self._timed_out()
            results = head.results
            stop = max(index + 1, head.prefix)
            while stop < len(results) and results[stop] is not MISSING:
                stop += 1
            taken = results[index:stop]
            results[index:stop] = [None] * (stop - index)  # ours alone now: see below
            with feed.lock:
                feed.head = stop
                if stop == len(results):
                    feed.entries.popleft()
                    feed.head = 0
                feed.outstanding -= stop - index
                feed.taken += stop - index
        else:
            try:
                entry = feed.finished.get(timeout=wait)
            except queue.Empty:
                raise self._timed_out() from None
            if isinstance(entry, _InputError):
                with feed.lock:
                    feed.outstanding -= 1
                raise entry.error
            sink, index, stop = entry
            taken = sink.results[index:stop]
            sink.results[index:stop] = [None] * (stop - index)
            with feed.lock:
                feed.outstanding -= stop - index
                feed.taken += stop - index
        # The taken results leave the feed (their slots were cleared): once the caller drops
        # a value, nothing here keeps it alive (CPython's test_free_reference), nor keeps a
        # raised exception, whose traceback would pin this iterator and so the feed.
        self._ready.extend(itertools.islice(taken, 1, None))
        return taken[0]


def input_length(*iterables: Iterable[Any]) -> int | None:
    """The number of calls a map over ``iterables`` makes, when every input is sized."""
    if not iterables or not all(isinstance(it, Sized) for it in iterables):
        return None
    return min(len(it) for it in iterables)  # type: ignore[arg-type]


def describe(fn: Any) -> str:
    """A short name for ``fn`` (the progress bar's label)."""
    return str(getattr(fn, "__name__", None) or type(fn).__name__)


class _Submitter:
    """``submit``/``map``/``with_options`` over an engine with a set of task options."""

    _engine: Engine
    _options: TaskOptions
    _progress: Progress
    _workers: int

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)``; returns a :class:`concurrent.futures.Future`.

        Raises ``RuntimeError`` after ``shutdown()`` (the stdlib's message).

        Example::

            future = executor.submit(pow, 2, 10)
            assert future.result() == 1024
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        return self._engine.submit(fn, args, kwargs, self._options)

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[T]:
        """Like the builtin ``map``, run on the pool; results in input order, streamed.

        The input is pulled lazily, a bounded number of calls in flight, so it may be
        infinite. ``timeout`` is the stdlib's: seconds from this call after which ``next()``
        raises ``TimeoutError`` and the calls not yet finished are cancelled. ``chunksize``
        is validated for compatibility; batching is the pool's.

        Example::

            assert list(executor.map(pow, [2, 3], [2, 2])) == [4, 9]
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        deadline = None if timeout is None else time.monotonic() + timeout
        if len(iterables) == 1:
            calls, kind = iter(iterables[0]), ITEM
        else:
            calls, kind = zip(*iterables, strict=False), ARGS
        length = input_length(*iterables)
        bar = make_bar(self._progress, length, describe(fn))
        feed = _Feed(
            self._engine, fn, calls, kind, self._options, self._window(), ordered=True, bar=bar
        )
        feed.sized = length is not None
        return ResultIterator(feed, deadline=deadline, stop_on_error=True)

    def _window(self) -> int:
        return max(64, MAP_WINDOW_PER_WORKER * self._workers)

    def with_options(
        self,
        *,
        timeout: float | None = UNSET,
        retries: int = UNSET,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = UNSET,
        progress: Progress = UNSET,
        cancel_running: bool = UNSET,
    ) -> OptionsView:
        """A light view of this pool whose calls get other options; it shares the pool's
        workers and has ``submit``, ``map`` and ``with_options`` (no ``shutdown``).

        Example::

            quick = executor.with_options(timeout=1.0, retries=2)
            quick.submit(fetch, url)
        """
        given = {
            "timeout": timeout, "retries": retries, "retry_on": retry_on,
            "cancel_running": cancel_running,
        }  # fmt: skip
        options, shown = updated_options(self._options, self._progress, given, progress)
        return OptionsView(self, options, shown)


def updated_options(
    options: TaskOptions, progress: Progress, given: dict[str, Any], new_progress: Any
) -> tuple[TaskOptions, Progress]:
    """The options of a ``with_options`` view: the ``given`` ones that are not ``UNSET``."""
    changes = {name: value for name, value in given.items() if value is not UNSET}
    if new_progress is not UNSET:
        progress = check_progress(new_progress)
    return options.updated(**changes), progress


class OptionsView(_Submitter):
    """An executor seen with other task options (see ``with_options``); shares its workers.

    Example::

        executor.with_options(timeout=5).map(work, items)
    """

    def __init__(self, owner: _Submitter, options: TaskOptions, progress: Progress) -> None:
        self._owner = owner
        self._engine, self._workers = owner._engine, owner._workers
        self._options, self._progress = options, progress

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._owner!r} with {self._options}>"


class _PoolExecutor(_Submitter, Executor):
    def _setup(self, options: TaskOptions, progress: Any) -> None:
        self._options, self._progress = options, check_progress(progress)

    @property
    def _broken(self) -> str | bool:
        # The stdlib executors' flag (False, or why the pool broke): private, but code and
        # tests poll it to wait for a broken pool (CPython's FailingInitializerTest does).
        broken: BaseException | None = getattr(self._engine, "_broken", None)
        return False if broken is None else str(broken)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; ``wait`` for those submitted (or cancel the queued ones).

        Example::

            executor.shutdown(wait=False, cancel_futures=True)
        """
        if cancel_futures:
            cut_feeds(self._engine)
        else:
            drain_feeds(self._engine)
        self._engine.shutdown(wait, cancel_futures=cancel_futures)

    def terminate(self) -> None:
        """Stop now: running tasks are stopped, queued ones cancelled, workers gone.

        Example::

            executor.terminate()
        """
        cut_feeds(self._engine)
        self._engine.terminate()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.terminate()  # Ctrl-C or SystemExit: do not wait for the work
        else:
            self.shutdown(wait=True)


def start_method_of(context: Any, name: str, default: str | None = None) -> str:
    """The start method of a ``multiprocessing`` or workhorse context (``None``: ``default``,
    else multiprocessing's default, which this fixes as the stdlib pools do). Refuses to
    start a pool in a spawn child that is still importing the main script."""
    if context is None:
        method = default or multiprocessing.get_start_method()
    else:
        get = getattr(context, "get_start_method", None)
        if get is None:
            raise TypeError(
                f"{name} must be a multiprocessing or workhorse context, not {context!r}"
            )
        method = str(get())
    check_not_bootstrapping(method, "a pool")
    return method


def max_tasks(stdlib_value: Any, stdlib_name: str, ours: Any) -> int | None:
    """The per-worker task limit from the stdlib's argument or ``max_tasks_per_worker``."""
    first = check_max_tasks(stdlib_value, stdlib_name)
    second = check_max_tasks(ours, "max_tasks_per_worker")
    if first is not None and second is not None and first != second:
        raise ValueError(f"give {stdlib_name} or max_tasks_per_worker, not both")
    return first if first is not None else second


class ProcessPoolExecutor(_PoolExecutor):
    """A process pool that never hangs and never loses a task; a drop-in for
    :class:`concurrent.futures.ProcessPoolExecutor`.

    Args:
        max_workers: number of worker processes (default: the CPU count).
        mp_context: a ``multiprocessing`` or workhorse context choosing the start method
            (default: multiprocessing's, or ``spawn`` when ``max_tasks_per_child`` is given,
            as the stdlib does).
        initializer: called with ``initargs`` in each worker when it starts; if it raises,
            the pool is broken (:class:`~workhorse.PoolBroken`) instead of forking forever.
        max_tasks_per_child: the stdlib's name for ``max_tasks_per_worker``.
        timeout: per-task limit in seconds; a task past it is stopped (its worker killed and
            replaced) and its future raises :class:`~workhorse.TaskTimeout`.
        retries: how many times a failed task is run again; ``retry_on`` limits which
            exceptions count (a crashed worker, ``WorkerCrashed``, included by default).
        max_tasks_per_worker: a worker is replaced after this many tasks.
        progress: a progress bar on ``map`` (see :mod:`workhorse._progress_bar`): ``True``
            on a terminal, ``"always"``, or a stream.
        chunksize: ``"auto"`` (adaptive batching) or a fixed number of tasks per batch.
        init_timeout: seconds a worker's ``initializer`` may take; past it the worker is
            killed and the pool is broken (futures fail with :class:`~workhorse.PoolBroken`
            caused by :class:`~workhorse.TaskTimeout`), never left hanging.
        idle_timeout: seconds a worker may stay idle before it exits; workers are started
            again when work arrives (``None``: they stay until shutdown).
        cancel_running: ``future.cancel()`` of a running task stops it (its worker is killed
            and replaced) and returns True; by default it returns False, as the stdlib does.

    With the environment variable ``WORKHORSE_WORKER_MEMORY_GROWTH`` set (bytes), a worker
    whose memory grows by more than that is replaced after its
    batch, with one warning logged per pool.

    Example::

        with workhorse.ProcessPoolExecutor(timeout=10) as pool:
            futures = [pool.submit(pow, 2, n) for n in range(10)]
            print([f.result() for f in futures])
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        *,
        max_tasks_per_child: int | None = None,
        timeout: float | None = None,
        retries: int = 0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        max_tasks_per_worker: int | None = None,
        progress: Progress = False,
        chunksize: int | str = "auto",
        init_timeout: float | None = None,
        idle_timeout: float | None = None,
        cancel_running: bool = False,
    ) -> None:
        self._workers = check_workers(max_workers, os.cpu_count() or 1)
        initargs = check_initializer(initializer, initargs)
        limit = max_tasks(max_tasks_per_child, "max_tasks_per_child", max_tasks_per_worker)
        # The stdlib's choice: a pool that replaces its workers defaults to spawn.
        default = "spawn" if max_tasks_per_child is not None else None
        method = start_method_of(mp_context, "mp_context", default)
        options = TaskOptions(timeout, retries, retry_on, cancel_running)  # type: ignore[arg-type]
        self._setup(options, progress)
        self._engine = ProcessEngine(
            self._workers,
            start_method=method,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_worker=limit,
            options=self._options,
            chunksize=check_chunksize(chunksize),
            init_timeout=check_seconds(init_timeout, "init_timeout"),
            idle_timeout=check_seconds(idle_timeout, "idle_timeout"),
            remote_traceback=_STDLIB_REMOTE_TRACEBACK,
        )
        weakref.finalize(self, self._engine.shutdown, False)

    def __repr__(self) -> str:
        return f"<workhorse.ProcessPoolExecutor max_workers={self._workers}>"


class ThreadPoolExecutor(_PoolExecutor):
    """A thread pool with per-task timeouts, cancellation of running tasks and retries; a
    drop-in for :class:`concurrent.futures.ThreadPoolExecutor`.

    A thread cannot be killed: a task past its ``timeout`` (or, with ``cancel_running=True``,
    a running task whose future is cancelled) fails on time and its thread is asked to stop
    at its next workhorse call (``workhorse.Cancelled``) and replaced; the result it may
    produce later is discarded.
    ``chunksize`` is accepted and validated; threads pay no transfer cost, so nothing is
    batched.

    Example::

        with workhorse.ThreadPoolExecutor(max_workers=8, timeout=5) as pool:
            statuses = list(pool.map(fetch_status, urls))
    """

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        *,
        timeout: float | None = None,
        retries: int = 0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        max_tasks_per_worker: int | None = None,
        progress: Progress = False,
        chunksize: int | str = "auto",
        cancel_running: bool = False,
    ) -> None:
        self._workers = check_workers(max_workers, min(32, (os.cpu_count() or 1) + 4))
        initargs = check_initializer(initializer, initargs)
        check_chunksize(chunksize)
        limit = check_max_tasks(max_tasks_per_worker, "max_tasks_per_worker")
        options = TaskOptions(timeout, retries, retry_on, cancel_running)  # type: ignore[arg-type]
        self._setup(options, progress)
        self._engine = ThreadEngine(
            self._workers,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_worker=limit,
            options=self._options,
            name=thread_name_prefix or f"ThreadPoolExecutor-{id(self):x}",
        )
        weakref.finalize(self, self._engine.shutdown, False)

    def __repr__(self) -> str:
        return f"<workhorse.ThreadPoolExecutor max_workers={self._workers}>"
