"""``workhorse map`` and ``workhorse run``: a function (or a shell command) over every record
of an input, on a workhorse pool, with a journal that makes the job resumable.

The order of things is what makes ``--resume`` exact:

1. The input is read and checked whole; the journal is bound to this job (the function or
   command, the input's format and a digest of its records) or refused if it is another job's.
2. The output is rewritten from the journal: whatever a killed run left in it (a line cut in
   half, lines of items whose commit was lost) is replaced by exactly the finished items.
3. Each result is committed to the journal *before* its line is written (see :mod:`._runner`):
   an item is reported done only once it is durable, and an item committed never runs again.

Every guarantee of the pools holds: a record that crashes its worker fails alone
(``WorkerCrashed``), ``--timeout`` kills a task past it, ``--retries`` runs a failed record
again (any error: the runner counts the attempts itself, so the output says how many it took).

Exit status: 0 when every record succeeded, 1 when some failed (or were left by ``--halt``), 2
for bad usage or input (nothing already done is lost), 130 when interrupted (resume with
``--resume``).

Example::

    $ workhorse map mymodule:score items.jsonl -o scores.jsonl -j 4 --timeout 60
    $ workhorse map mymodule:score items.jsonl -o scores.jsonl --resume
    $ workhorse run -j 8 'gzip -k {}' ::: *.csv
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
from typing import Any, TextIO

from ._call import Call
from ._inputs import InputError, Record, read_records
from ._journal import Journal, JournalError, digest
from ._runner import Runner
from ._shell import Command

__all__ = [
    "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "JOB_ITEMS", "MapJob", "UsageError",
    "load_target", "run_map",
]  # fmt: skip

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
JOB_ITEMS = 10_000  # records per map job given to the pool (bounds each job's result list)


class UsageError(ValueError):
    """Bad arguments or input: one line on stderr, exit status 2."""


@dataclass(frozen=True)
class MapJob:
    """The arguments of one ``workhorse map`` (``kind="map"``: ``target`` is MODULE:FUNCTION)
    or ``workhorse run`` (``kind="run"``: ``target`` is the command template, the inputs come
    from ``args`` or ``input``) run."""

    target: str
    input: str | None
    output: str | None
    kind: str = "map"
    args: tuple[str, ...] | None = None
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
    halt: tuple[str, int] | None = None  # ("now" | "soon", failures)


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
    call: Command | Call = (
        Command(job.target, job.timeout, job.halt, job.retries)
        if job.kind == "run"
        else Call(load_target(job.target))
    )
    records = _records(job)
    journal, journal_path = _journal(job, records)
    try:
        if job.retry_failed:
            journal.forget_failed()
        output = None if job.output is None else _rebuild(job.output, journal)
        try:
            pool, cluster = _pool(job)
            # run: each command its own task, the next one at hand for each thread
            workers = pool._front.workers
            chunk, window = (1, 2 * workers) if job.kind == "run" else (JOB_ITEMS, 2 * JOB_ITEMS)
            runner = Runner(job, call, records, journal, output, stderr, chunk=chunk, window=window)
            try:
                counts = runner.run(pool)
            finally:
                if cluster is not None:
                    cluster.close()
        finally:
            if output is not None:
                output.close()
        if job.ordered and job.output is not None:  # now the whole file, in input order
            _rebuild(job.output, journal).close()
        totals = journal.counts()
    finally:
        journal.close()
    summary = {
        "items": len(records), **totals, "ran now": counts["ran"],
        "failed now": counts["failed"], "seconds": round(time.monotonic() - began, 3),
        "output": job.output, "journal": journal_path and str(journal_path),
        "interrupted": counts["interrupted"], "halted": counts["halted"],
    }  # fmt: skip
    if job.json_summary:
        print(json.dumps(summary), file=stdout)
    elif not job.quiet:
        _say_summary(summary, stderr)
    if counts["interrupted"]:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if totals["failed"] or totals["pending"] else 0


def _journal(job: MapJob, records: list[Record]) -> tuple[Journal, Path | None]:
    """The job's journal, bound to it, and its path (``None``: kept in memory)."""
    if not job.use_journal and (job.resume or job.journal):
        raise UsageError("--no-journal leaves nothing to --resume from (nor a --journal)")
    if job.resume and job.journal is None and job.output is None:
        raise UsageError("--resume needs the journal: give -o OUTPUT or --journal PATH")
    # Without a journal the same bookkeeping runs in memory: nothing survives the run.
    default = None if job.output is None else f"{job.output}.journal"
    named = job.journal or default
    path = Path(named) if job.use_journal and named else None
    identity = {
        "kind": job.kind, "target": job.target, "format": job.input_format or "",
        "key": job.key or "", "input": digest(r.source for r in records),
    }  # fmt: skip
    try:
        journal = Journal.open(path or ":memory:")
        journal.start(identity, len(records), resume=job.resume)
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    return journal, path


def _records(job: MapJob) -> list[Record]:
    if job.kind == "run" and job.args is not None:  # ::: a b c
        return [Record(value, (n, value), value) for n, value in enumerate(job.args, start=1)]
    try:
        records = read_records(
            job.input or "-", "lines" if job.kind == "run" else job.input_format, job.key
        )
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if job.kind == "run":  # each line a command's input, numbered for {#}
        return [Record(r.value, (n, r.value), r.source) for n, r in enumerate(records, start=1)]
    return records


def _pool(job: MapJob) -> tuple[Any, Any]:
    """The executor ``job`` runs on, and the Dask cluster to close after it (or None)."""
    import workhorse

    if job.dask is not None:
        cluster = workhorse.dask(address=job.dask or None)
        return cluster.ProcessPoolExecutor(job.workers, timeout=job.timeout), cluster
    if job.kind == "run":  # the work is in the commands' processes: threads wait for them
        return workhorse.ThreadPoolExecutor(job.workers or os.cpu_count() or 1), None
    if job.threads:
        return workhorse.ThreadPoolExecutor(job.workers, timeout=job.timeout), None
    context = workhorse.get_context(job.start_method) if job.start_method else None
    return workhorse.ProcessPoolExecutor(job.workers, mp_context=context, timeout=job.timeout), None


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
    state = "interrupted: " if summary["interrupted"] else "halted: " if summary["halted"] else ""
    where = f"; output {summary['output']}" if summary["output"] else ""
    where += f", journal {summary['journal']}" if summary["journal"] else ""
    print(
        f"{state}{summary['items']} items: {summary['done']} done, {summary['failed']} failed, "
        f"{summary['pending']} pending ({summary['ran now']} run now) in "
        f"{summary['seconds']:.1f} s{where}",
        file=out,
    )
    if summary["journal"] and (summary["interrupted"] or summary["pending"]):
        print("go on with the same command and --resume", file=out)
