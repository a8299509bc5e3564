"""Lazy maps: how ``Executor.map`` and ``Pool.imap``/``imap_unordered`` feed their input to a
backend and hand back results, for every pool face and backend.

A :class:`Feed` pulls the input a chunk at a time (each chunk one job whose results land in
a :class:`~._scheduler._job.ListSink`), keeps a bounded window of calls in flight and is
drained or cut when the pool shuts down; a :class:`ResultIterator` reads the results in
input or completion order. The input may be infinite: memory stays flat.

Example::

    feed = Feed(backend, abs, iter([-1, -2]), ITEM, options, ordered=True, bar=None)
    assert list(ResultIterator(feed)) == [1, 2]
"""

from __future__ import annotations

import itertools
import pickle
import queue
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any, TypeVar

from ._backend import Backend
from ._options import TaskOptions
from ._progress_bar import ProgressBar
from ._scheduler._job import MISSING, Failed, Job, ListSink
from ._serialize import PROTOCOL
from ._signals import start_quietly

__all__ = [
    "MAP_READ_AHEAD_BYTES_PER_WORKER",
    "MAP_WINDOW_PER_WORKER",
    "MAX_MAP_WINDOW_PER_WORKER",
    "Feed",
    "ResultIterator",
    "describe",
    "input_length",
]

T = TypeVar("T")
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


class Feed:
    """The state of one lazy map: its input, the chunks in flight and their results.

    The input is pulled a chunk at a time; each chunk is one job whose results land in a
    :class:`ListSink`. Shared by its :class:`ResultIterator`, the pool (``drain``/``cut`` at
    shutdown) and the iterator's finalizer, so it must not refer to the iterator. ``lock``
    guards the input and the bookkeeping; waiting for a result happens outside it.
    """

    def __init__(
        self, engine: Backend, fn: Callable[..., Any], calls: Iterator[Any], kind: str,
        options: TaskOptions, *, ordered: bool, bar: ProgressBar | None,
        sized: bool = False, chunksize: int | None = None,
    ) -> None:  # fmt: skip
        self.engine, self.fn, self.kind, self.options = engine, fn, kind, options
        self.chunksize = chunksize  # asked for by the call (None: adaptive)
        self._workers = engine.workers
        self._inline = engine.inline
        self.base_window = 1 if self._inline else max(64, MAP_WINDOW_PER_WORKER * self._workers)
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
        self.sized = sized  # the input has a length: it ends
        self.dropping = False  # nobody will read: results are not kept (see abandon)
        # A dropped Executor.map that was being read cancels what has not started, as the
        # stdlib's generator does when it is closed (see abandon).
        self.cancel_when_dropped = False
        engine.feeds.add(self)  # shutdown and the interpreter's exit drain it

    @property
    def window(self) -> int:
        """How many calls may be in flight: the base window, larger while items are fast
        (in big batches), so that every worker has a few batches' worth of work ahead; and
        never more than :data:`MAP_READ_AHEAD_BYTES_PER_WORKER` per worker of input, by the
        sampled size of its items (but at least two per worker: one running, one next)."""
        items = self.base_window
        if not self._inline:
            ahead = 4 * self.engine.recent_batch * self._workers
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
            # the window (and so the step) follows the sampled item size: after the first
            # item, pulled alone, the chunks grow to an eighth of the window
            step = 1 if self.item_bytes is None else max(1, self.window // 8)
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
        on_ready = self._ready if (self.bar or not self.ordered) else None
        sink = ListSink(len(chunk), on_ready, self.engine.events.counts)
        job = Job(self.fn, chunk, self.options, sink, self.kind, self.chunksize)
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
        self, feed: Feed, *, deadline: float | None = None, stop_on_error: bool = False,
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

    def has_ready(self) -> bool:
        """Whether ``next()`` would return (or raise) without waiting."""
        return bool(self._ready)

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
