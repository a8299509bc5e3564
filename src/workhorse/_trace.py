"""What a pool's workers did, as a timeline: ``trace="run.json"`` and ``pool.insights()``.

With ``trace=`` a pool records one slice per batch a worker ran (its function, how many tasks,
the first task's call, the time spent pickling), an instant when a worker starts or exits (and
why), and one when a task is retried or times out. At shutdown it writes them as a Chrome
trace-event file -- the JSON that https://ui.perfetto.dev and ``chrome://tracing`` open -- with
one track per worker. Batches, not tasks: slow tasks travel alone (adaptive batching sends an
item of 10 ms or more by itself), so each is its own slice; a batch of thousands of tiny tasks
is one slice; with ``insights=True`` each of its tasks is also a slice inside it (see
:mod:`._task_times`).

:func:`insights` is the summary in words, always available: the pool's counts, each worker's
tasks, busy time and utilization, and the slowest batches seen (the slowest tasks, when they
ran alone) with their calls.

Times are ``time.monotonic()``, one clock for every process of the machine (the Dask backend
places a batch by when its result arrived, minus its duration: a remote worker's clock is its
own).

Example::

    with workhorse.Pool(4, trace="run.json") as pool:
        pool.map(work, items)
    print(pool.insights())     # then open run.json in https://ui.perfetto.dev
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._stats import PoolStats

__all__ = ["SLOWEST", "Slowest", "Timeline", "check_trace", "insights"]

#: Batches kept in the "slowest" list of :func:`insights`.
SLOWEST = 5
#: Events a timeline keeps at most (about 200 bytes each in the file); later ones are counted.
MAX_EVENTS = 1_000_000


def check_trace(value: Any) -> str | None:
    """``trace=``: ``None`` or a path (``str`` or ``os.PathLike``) in a directory that exists."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"trace must be a file path, not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise ValueError(f"trace must be a file path, not {value!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"trace: the folder {folder!r} does not exist")
    return path


class Slowest:
    """The slowest batches a pool ran (thread-safe): ``(seconds, what, worker)``, slowest
    first. A batch's call is put in words only if it makes the list."""

    def __init__(self, keep: int = SLOWEST) -> None:
        self._keep = keep
        self._heap: list[tuple[float, int, str, str]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()

    def offer(self, seconds: float, job: Any, index: int, items: int, worker: object) -> None:
        """A batch of ``items`` of ``job`` from ``index`` ran for ``seconds`` on ``worker``."""
        heap = self._heap
        if len(heap) >= self._keep and seconds <= heap[0][0]:
            return  # the usual case (once per batch): one comparison, nothing allocated
        first: str = job.describe(index)
        what = first if items == 1 else f"{items} tasks, the first {first}"
        with self._lock:
            entry = (seconds, next(self._order), what, str(worker))
            if len(heap) < self._keep:
                heapq.heappush(heap, entry)
            elif seconds > heap[0][0]:
                heapq.heapreplace(heap, entry)

    def entries(self) -> list[tuple[float, str, str]]:
        with self._lock:
            ranked = sorted(self._heap, reverse=True)
        return [(seconds, what, worker) for seconds, _, what, worker in ranked]


class Timeline:
    """The events of one pool, written as a Chrome trace-event file (see the module
    docstring); thread-safe.

    Example::

        timeline = Timeline("run.json", "Pool-1")
        timeline.batch("pid 12", "work", time.monotonic() - 0.5, 0.5, 1, "work(3)", 0.001)
        timeline.write()
    """

    def __init__(self, path: str, pool: str) -> None:
        self.path, self.pool = path, pool
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._tracks: dict[str, int] = {}
        self._dropped = 0
        self._t0 = time.monotonic()

    def _track(self, worker: object) -> int:
        name = str(worker)
        track = self._tracks.get(name)
        if track is None:
            track = self._tracks[name] = len(self._tracks) + 1
        return track

    def _add(self, event: dict[str, Any]) -> None:
        if len(self._events) < MAX_EVENTS:
            self._events.append(event)
        else:
            self._dropped += 1

    def batch(
        self, worker: object, name: str, start: float, seconds: float, items: int, first: str,
        pickling: float,
    ) -> None:  # fmt: skip
        """``worker`` ran ``items`` calls of ``name`` from ``start`` for ``seconds``."""
        args = {"tasks": items, "first task": first, "pickling ms": round(pickling * 1e3, 3)}
        with self._lock:
            self._add({
                "name": name if items == 1 else f"{name} x{items}", "cat": "batch", "ph": "X",
                "ts": self._us(start), "dur": max(0.0, round(seconds * 1e6, 3)), "pid": 1,
                "tid": self._track(worker), "args": args,
            })  # fmt: skip

    def task(self, worker: str, start: float, seconds: float, job: Any, index: int) -> None:
        """One task of a batch (``insights=True``): a slice inside the batch's."""
        fn = job.fn
        name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
        with self._lock:
            self._add({
                "name": name, "cat": "task", "ph": "X", "ts": self._us(start),
                "dur": max(0.0, round(seconds * 1e6, 3)), "pid": 1, "tid": self._track(worker),
                "args": {"index": index},
            })  # fmt: skip

    def instant(self, worker: object | None, name: str, **args: Any) -> None:
        """Something happened at once: on ``worker``'s track, or the pool's (``None``)."""
        with self._lock:
            self._add({
                "name": name, "cat": "event", "ph": "i", "s": "t" if worker else "p",
                "ts": self._us(time.monotonic()), "pid": 1,
                "tid": self._track(worker) if worker is not None else 0, "args": args,
            })  # fmt: skip

    def _us(self, moment: float) -> float:
        return round((moment - self._t0) * 1e6, 3)

    def events(self) -> list[dict[str, Any]]:
        """The file's events: track names first, then what was recorded."""
        with self._lock:
            named = [{"name": "process_name", "ph": "M", "pid": 1, "args": {"name": self.pool}}]
            named.append(
                {"name": "thread_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "pool"}}
            )
            for name, track in self._tracks.items():
                named.append({
                    "name": "thread_name", "ph": "M", "pid": 1, "tid": track,
                    "args": {"name": f"worker {name}"},
                })  # fmt: skip
            return named + list(self._events)

    def write(self) -> None:
        """(Re)write the file: everything recorded so far."""
        document = {
            "traceEvents": self.events(),
            "displayTimeUnit": "ms",
            "otherData": {"pool": self.pool, "events dropped": self._dropped},
        }
        temporary = f"{self.path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(document, f)
        os.replace(temporary, self.path)  # a reader never sees half a file


def insights(
    name: str, stats: PoolStats, slowest: list[tuple[float, str, str]],
    tasks: list[str] | None = None,
) -> str:  # fmt: skip
    """The summary of :meth:`pool.insights() <workhorse.ProcessPoolExecutor.insights>`;
    ``tasks``: the per-task lines of ``insights=True`` (:meth:`.TaskTimes.summary`)."""
    alive = sum(w.alive for w in stats.workers)
    share = f" ({stats.busy / alive:.0%})" if alive > 0 else ""
    lines = [
        f"{name}: {stats.submitted} tasks submitted, {stats.done} done, {stats.failed} failed,"
        f" {stats.cancelled} cancelled, {stats.retried} retried, {stats.timed_out} timed out",
        f"workers: {stats.workers_started} started"
        + "".join(f", {n} {cause}" for cause, n in sorted(stats.worker_exits.items()))
        + f"; busy {stats.busy:.3f} s of {alive:.3f} s alive{share};"
        f" pickling {stats.serialization:.3f} s",
    ]
    for w in stats.workers:
        status = "alive" if w.exit is None else f"exited: {w.exit}"
        lines.append(
            f"  worker {w.worker}: {w.tasks} tasks, busy {w.busy:.3f} s, idle {w.idle:.3f} s"
            f" ({w.utilization:.0%}), {status}"
        )
    if slowest:
        lines.append("slowest batches:")
        lines += [f"  {s:8.3f} s  {what}  (worker {who})" for s, what, who in slowest]
    return "\n".join(lines + (tasks or []))
