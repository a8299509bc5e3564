"""``workhorse map MODULE:FUNCTION INPUT -o OUTPUT``: a function over every record of a file,
on a workhorse pool, with a journal that makes the job resumable.

The order of things is what makes ``--resume`` exact:

1. The input is read and checked whole; the journal is bound to this job (the function, the
   input's format and a digest of its records) or refused if it is another job's.
2. The output is rewritten from the journal: whatever a killed run left in it (a line cut in
   half, lines of items whose commit was lost) is replaced by exactly the finished items.
3. Each result is committed to the journal *before* its line is written: an item is reported
   done only once it is durable, and an item committed is never run again.

Every guarantee of the pools holds: a record that crashes its worker fails alone
(``WorkerCrashed``), ``--timeout`` kills a task past it, ``--retries`` runs a failed record
again (any error: the runner counts the attempts itself, so the output says how many it took).

Exit status: 0 when every record succeeded, 1 when some failed, 2 for bad usage or input
(nothing already done is lost), 130 when interrupted (resume with ``--resume``).

Example::

    $ workhorse map mymodule:score items.jsonl -o scores.jsonl -j 4 --timeout 60
    $ workhorse map mymodule:score items.jsonl -o scores.jsonl --resume
    $ workhorse status scores.jsonl.journal
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, TextIO

from .._progress_bar import make_bar
from .._scheduler._job import ITEM, Failed, Job, ListSink
from ._call import Call, error_fields
from ._inputs import InputError, Record, read_records
from ._journal import Journal, JournalError, digest

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "MapJob", "UsageError", "run_map"]

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
JOB_ITEMS = 10_000  # records per map job given to the pool (bounds each job's result list)


class UsageError(ValueError):
    """Bad arguments or input: one line on stderr, exit status 2."""


@dataclass(frozen=True)
class MapJob:
    """The arguments of one ``workhorse map`` run."""

    target: str
    input: str
    output: str
    journal: str | None = None
    workers: int | None = None
    timeout: float | None = None
    retries: int = 0
    ordered: bool = False
    chunksize: int | None = None
    start_method: str | None = None
    threads: bool = False
    input_format: str | None = None
    key: str | None = None
    resume: bool = False
    retry_failed: bool = False
    quiet: bool = False
    json_summary: bool = False
    dask: str | None = None  # a scheduler address; "" for an embedded LocalCluster
    use_journal: bool = True


def load_target(target: str) -> Any:
    """The callable named ``module:function`` (the current directory is importable, as with
    ``python -m``)."""
    module_name, colon, name = target.partition(":")
    if not colon or not module_name or not name:
        raise UsageError(f"FUNCTION must be MODULE:NAME, not {target!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import module {module_name!r}: {exc}") from None
    fn: Any = module
    for part in name.split("."):
        if not hasattr(fn, part):
            raise UsageError(f"module {module_name!r} has no attribute {name!r}")
        fn = getattr(fn, part)
    if not callable(fn):
        raise UsageError(f"{target} is not callable (it is a {type(fn).__name__})")
    return fn


def run_map(job: MapJob, stderr: TextIO = sys.stderr, stdout: TextIO = sys.stdout) -> int:
    """Run ``job``; returns the exit status (see the module docstring)."""
    began = time.monotonic()
    fn = load_target(job.target)
    try:
        records = read_records(job.input, job.input_format, job.key)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if not job.use_journal and (job.resume or job.journal):
        raise UsageError("--no-journal leaves nothing to --resume from (nor a --journal)")
    # Without a journal the same bookkeeping runs in memory: nothing survives the run.
    journal_path = Path(job.journal or f"{job.output}.journal") if job.use_journal else None
    identity = {
        "kind": "map", "target": job.target, "format": job.input_format or "",
        "key": job.key or "", "input": digest(r.source for r in records),
    }  # fmt: skip
    try:
        journal = Journal.open(journal_path or ":memory:")
        journal.start(identity, len(records), resume=job.resume)
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    try:
        if job.retry_failed:
            journal.forget_failed()
        output = _rebuild(job.output, journal)
        try:
            counts = _Runner(job, fn, records, journal, output, stderr).run()
        finally:
            output.close()
        if job.ordered:  # the lines written in this run went in order; now the whole file
            _rebuild(job.output, journal).close()
        totals = journal.counts()
    finally:
        journal.close()
    seconds = time.monotonic() - began
    summary = {
        "items": len(records), **totals, "ran now": counts["ran"],
        "failed now": counts["failed"], "seconds": round(seconds, 3),
        "output": job.output, "journal": journal_path and str(journal_path),
        "interrupted": counts["interrupted"],
    }  # fmt: skip
    if job.json_summary:
        print(json.dumps(summary), file=stdout)
    elif not job.quiet:
        _say_summary(summary, stderr)
    if counts["interrupted"]:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if totals["failed"] or totals["pending"] else 0


def _rebuild(path: str, journal: Journal) -> TextIO:
    """The output file holding exactly the journal's finished items, open for appending."""
    try:
        output = open(path, "w", encoding="utf-8")  # noqa: SIM115 -- returned open
    except OSError as exc:
        raise UsageError(f"output {path}: cannot be written: {exc.strerror or exc}") from None
    for record in journal.records():
        output.write(record + "\n")
    output.flush()
    return output


def _say_summary(summary: dict[str, Any], out: TextIO) -> None:
    state = "interrupted: " if summary["interrupted"] else ""
    print(
        f"{state}{summary['items']} items: {summary['done']} done, {summary['failed']} failed, "
        f"{summary['pending']} pending ({summary['ran now']} run now) in "
        f"{summary['seconds']:.1f} s; output {summary['output']}, journal {summary['journal']}",
        file=out,
    )
    if summary["journal"] and (summary["interrupted"] or summary["pending"]):
        print("go on with the same command and --resume", file=out)


class _Runner:
    """The submit/commit/write loop of one run (see the module docstring)."""

    def __init__(
        self, job: MapJob, fn: Any, records: list[Record], journal: Journal, output: TextIO,
        stderr: TextIO,
    ) -> None:  # fmt: skip
        self.job, self.records, self.journal, self.output = job, records, journal, output
        self.call = Call(fn)
        statuses = journal.statuses()
        self.pending = [i for i in range(len(records)) if i not in statuses]
        self.attempts: dict[int, int] = {}
        self.waiting: dict[int, str] = {}  # ordered: written lines wait for their turn
        self.next_line = 0  # ordered: the position of the next pending record to write
        self.counts = {"ran": 0, "failed": 0, "interrupted": False}
        progress: Any = False if job.quiet or job.json_summary else stderr.isatty() and stderr
        self.bar = make_bar(progress, len(self.pending), "map")

    def run(self) -> dict[str, Any]:
        import workhorse

        job = self.job
        cluster: Any = None
        if job.dask is not None:
            cluster = workhorse.dask(address=job.dask or None)
            pool: Any = cluster.ProcessPoolExecutor(job.workers, timeout=job.timeout)
        elif job.threads:
            pool = workhorse.ThreadPoolExecutor(job.workers, timeout=job.timeout)
        else:
            context = workhorse.get_context(job.start_method) if job.start_method else None
            pool = workhorse.ProcessPoolExecutor(
                job.workers, mp_context=context, timeout=job.timeout
            )
        # The records go to the pool's engine as map jobs (its adaptive batching, per-item
        # crash isolation and timeouts); each filled range of results lands here, and one
        # wake-up commits every result that is in, in one transaction.
        self.front = pool._front
        self.finished: SimpleQueue[tuple[ListSink, list[int], int, int]] = SimpleQueue()
        self.in_flight = 0
        try:
            self._submit(self.pending)
            while self.in_flight:
                done = [_next(self.finished)]
                while not self.finished.empty():
                    done.append(self.finished.get())
                rows, again = [], []
                for sink, positions, start, stop in done:
                    self.in_flight -= stop - start
                    for offset in range(start, stop):
                        row = self._row(sink.results[offset], positions[offset])
                        if row is None:
                            again.append(positions[offset])  # runs again (--retries)
                        else:
                            rows.append(row)
                self.journal.commit(rows)  # durable before the lines are written
                self._write(rows)
                self._submit(again)
        except KeyboardInterrupt:  # what is committed stays committed; the rest stops now
            self.counts["interrupted"] = True
            pool.terminate()
            pool.shutdown(wait=True)
        else:
            pool.shutdown(wait=True)
        finally:
            if self.bar is not None:
                self.bar.close()
            if cluster is not None:
                cluster.close()
        return self.counts

    def _submit(self, positions: list[int]) -> None:
        """Queue the records at ``positions`` (in order), as map jobs of at most JOB_ITEMS."""
        records, finished, backend = self.records, self.finished, self.front.backend
        for first in range(0, len(positions), JOB_ITEMS):
            chunk = positions[first : first + JOB_ITEMS]
            for position in chunk:
                self.attempts[position] = self.attempts.get(position, 0) + 1

            def ready(sink: ListSink, start: int, stop: int, chunk: list[int] = chunk) -> None:
                finished.put((sink, chunk, start, stop))  # (in the pool's thread)

            sink = ListSink(len(chunk), ready, backend.events.counts)
            self.in_flight += len(chunk)
            values = [records[position].value for position in chunk]
            backend.run(Job(self.call, values, self.front.options, sink, ITEM, self.job.chunksize))

    def _row(self, result: Any, position: int) -> tuple[int, str, str, str, int] | None:
        """The journal row of a finished try, or None if the record runs again."""
        attempts = self.attempts[position]
        if isinstance(result, Failed):  # the pool's own: WorkerCrashed, TaskTimeout...
            ok, text, where, seconds = False, error_fields(result.error), None, None
        else:
            ok, text, where, seconds = result
        if not ok and attempts <= self.job.retries:
            return None
        key = self.records[position].key
        fields = [f'"key": {json.dumps(key)}', f'"index": {position}']
        fields.append(f'"result": {text}' if ok else f'"error": {text}')
        fields += [f'"attempts": {attempts}', f'"worker": {json.dumps(where)}']
        fields.append(f'"seconds": {json.dumps(None if seconds is None else round(seconds, 6))}')
        self.counts["ran"] += 1
        if not ok:
            self.counts["failed"] += 1
        if self.bar is not None:
            self.bar.update()
        return (position, key, "done" if ok else "failed", "{" + ", ".join(fields) + "}", attempts)

    def _write(self, rows: list[tuple[int, str, str, str, int]]) -> None:
        if not rows:
            return
        if not self.job.ordered:
            self.output.write("".join(row[3] + "\n" for row in rows))
        else:
            for row in rows:
                self.waiting[row[0]] = row[3]
            pending = self.pending
            lines = []
            while self.next_line < len(pending) and pending[self.next_line] in self.waiting:
                lines.append(self.waiting.pop(pending[self.next_line]) + "\n")
                self.next_line += 1
            self.output.write("".join(lines))
        self.output.flush()


def _next(finished: SimpleQueue[Any]) -> Any:
    """The next filled range; waits in slices, so that Ctrl-C is seen at once."""
    while True:
        try:
            return finished.get(timeout=0.25)
        except Empty:
            continue
