"""The loop of one ``workhorse map``/``run``: submit records to the pool, commit what finishes,
write it out.

Records go to the pool's engine as map jobs (its adaptive batching, per-item crash isolation
and timeouts), a window of them at a time; each filled range of results lands on a queue, and
one wake-up commits every result that is in, in one transaction, *then* writes their lines.
A record that failed with tries left goes back to the queue. Once ``--halt`` stopped the
commands (see :class:`._shell.Command`), nothing more is submitted; what it stopped stays
pending.

Example::

    counts = Runner(job, Call(fn), records, journal, output, stderr).run(pool)
"""

from __future__ import annotations

import json
import sys
from collections import deque
from queue import Empty, SimpleQueue
from typing import Any, TextIO

from .._progress_bar import make_bar
from .._scheduler._job import ITEM, Failed, Job, ListSink
from ._call import error_fields
from ._inputs import Record
from ._journal import Journal

__all__ = ["Row", "Runner"]

#: A finished record's journal row: (position, key, status, output record, attempts).
Row = tuple[int, str, str, str, int]
_STOPPED = ("Halted",)  # error types of records --halt stopped: they stay pending


class Runner:
    """The submit/commit/write loop (see the module docstring)."""

    def __init__(
        self, job: Any, call: Any, records: list[Record], journal: Journal,
        output: TextIO | None, stderr: TextIO, *, chunk: int, window: int,
    ) -> None:  # fmt: skip
        self.job, self.call, self.records = job, call, records
        self.journal, self.output, self.chunk, self.window = journal, output, chunk, window
        statuses = journal.statuses()
        self.pending = [i for i in range(len(records)) if i not in statuses]
        self.queue: deque[int] = deque(self.pending)
        self.attempts: dict[int, int] = {}
        self.waiting: dict[int, str] = {}  # ordered: written lines wait for their turn
        self.next_line = 0  # ordered: the position of the next pending record to write
        self.counts: dict[str, Any] = {"ran": 0, "failed": 0, "interrupted": False, "halted": False}
        quiet = job.quiet or job.json_summary
        self.bar = make_bar(
            False if quiet else stderr.isatty() and stderr, len(self.pending), job.kind
        )
        self.finished: SimpleQueue[tuple[ListSink, list[int], int, int]] = SimpleQueue()
        self.in_flight = 0
        self.workers_json: dict[str | None, str] = {}  # each worker's name, as JSON

    def run(self, pool: Any) -> dict[str, Any]:
        """Run every pending record on ``pool`` (an executor face); returns the counts."""
        self.front = pool._front
        try:
            self._refill()
            while self.in_flight:
                done = [_next(self.finished)]
                while not self.finished.empty():
                    done.append(self.finished.get())
                rows: list[Row] = []
                for sink, positions, start, stop in done:
                    self.in_flight -= stop - start
                    for offset in range(start, stop):
                        row = self._row(sink.results[offset], positions[offset])
                        if row is not None:
                            rows.append(row)
                self.journal.commit(rows)  # durable before the lines are written
                self._write(rows)
                if self.bar is not None and rows:
                    self.bar.update(len(rows))
                self._refill()
        except KeyboardInterrupt:  # what is committed stays committed; the rest stops now
            self.counts["interrupted"] = True
            kill_all = getattr(self.call, "kill_all", None)  # run: its commands' groups
            if kill_all is not None:
                kill_all()
            pool.terminate()
            # A thread cannot be killed: a --threads map leaves its running calls behind
            # (daemon threads) rather than wait for them.
            pool.shutdown(wait=not self.job.threads)
        else:
            pool.shutdown(wait=True)
        finally:
            if self.bar is not None:
                self.bar.close()
        self.counts["halted"] = self.halted
        return self.counts

    def _refill(self) -> None:
        """Submit queued records while fewer than ``window`` are in flight."""
        queue, backend, options = self.queue, self.front.backend, self.front.options
        while queue and self.in_flight < self.window and not self.halted:
            size = min(self.chunk, len(queue), self.window - self.in_flight)
            chunk = [queue.popleft() for _ in range(size)]
            for position in chunk:
                self.attempts[position] = self.attempts.get(position, 0) + 1

            def ready(sink: ListSink, start: int, stop: int, chunk: list[int] = chunk) -> None:
                self.finished.put((sink, chunk, start, stop))  # (in the pool's thread)

            sink = ListSink(len(chunk), ready, backend.events.counts)
            self.in_flight += len(chunk)
            values = [self.records[position].value for position in chunk]
            backend.run(Job(self.call, values, options, sink, ITEM, self.job.chunksize))

    def _row(self, result: Any, position: int) -> Row | None:
        """The journal row of a finished try; None if the record runs again (or was stopped
        by ``--halt``: it stays pending)."""
        attempts = self.attempts[position]
        if isinstance(result, Failed):  # the pool's own: WorkerCrashed, TaskTimeout...
            ok, text, where, seconds = False, error_fields(result.error), None, None
        else:
            ok, text, where, seconds = result
        if not ok and json.loads(text).get("type") in _STOPPED:
            return None
        if not ok and attempts <= self.job.retries and not self.halted:
            self.queue.appendleft(position)  # runs again (--retries)
            return None
        # The line is assembled by hand: the parent formats every record of the job, and
        # json.dumps of a dict per record cost more than the workers' calls (10 us a record).
        key = self.records[position].key
        quoted = f'"{key}"' if key.isalnum() else json.dumps(key)
        shown = self.workers_json.get(where)
        if shown is None:
            shown = self.workers_json[where] = json.dumps(where)
        took = "null" if seconds is None else f"{seconds:.6f}"
        outcome = f'"result": {text}' if ok else f'"error": {text}'
        line = (
            f'{{"key": {quoted}, "index": {position}, {outcome}, "attempts": {attempts}, '
            f'"worker": {shown}, "seconds": {took}}}'
        )
        self.counts["ran"] += 1
        if not ok:
            self.counts["failed"] += 1
            if self.bar is not None:
                self.bar.describe(f"{self.job.kind}, {self.counts['failed']} failed")
        return (position, key, "done" if ok else "failed", line, attempts)

    @property
    def halted(self) -> bool:
        """``--halt`` stopped the job (the command runner counts the failures, where they
        happen: see :class:`._shell.Command`)."""
        return bool(getattr(self.call, "halted", False))

    def _write(self, rows: list[Row]) -> None:
        """Write (or, for ``run`` without ``-o``, print) the finished records; ``--ordered``:
        each once every record before it is out."""
        if not rows:
            return
        if self.job.ordered:
            for row in rows:
                self.waiting[row[0]] = row[3]
            texts, pending = [], self.pending
            while self.next_line < len(pending) and pending[self.next_line] in self.waiting:
                texts.append(self.waiting.pop(pending[self.next_line]))
                self.next_line += 1
        else:
            texts = [row[3] for row in rows]
        if self.output is not None:
            self.output.write("".join(text + "\n" for text in texts))
            self.output.flush()
            return
        for text in texts:  # no -o (run): each command's output, grouped, as GNU parallel does
            fields = json.loads(text)
            shown = fields.get("result") or fields.get("error") or {}
            sys.stdout.write(shown.get("stdout", ""))
            sys.stdout.flush()
            sys.stderr.write(shown.get("stderr", ""))


def _next(finished: SimpleQueue[Any]) -> Any:
    """The next filled range; waits in slices, so that Ctrl-C is seen at once."""
    while True:
        try:
            return finished.get(timeout=0.25)
        except Empty:
            continue
