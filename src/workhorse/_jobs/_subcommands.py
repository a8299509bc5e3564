"""The ``map``, ``run``, ``status`` and ``example`` subcommands of ``workhorse``: their
arguments and what they print.

Example::

    $ workhorse map mymodule:score items.jsonl -o scores.jsonl -j 4
    $ workhorse run -j 4 --halt now,fail=1 'convert {} {.}.png' ::: *.jpg
    $ workhorse status scores.jsonl.journal --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from ._inputs import FORMATS
from ._journal import Journal, JournalError
from ._map import EXIT_USAGE, MapJob, UsageError, run_map

__all__ = ["add_commands", "run_command"]


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _retries(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def add_commands(commands: Any) -> None:
    """Add ``map`` and ``status`` to the ``workhorse`` parser's subcommands."""
    run = commands.add_parser(
        "map",
        help="call a Python function on every record of a file, resumably",
        description=(
            "Call MODULE:FUNCTION on each record of INPUT (JSON Lines, CSV rows as objects, or "
            "one string per line; - for stdin) on a workhorse pool, and write one JSON Lines "
            "record per input to OUTPUT: key, index, result or error (type, message, "
            "traceback), attempts, worker, seconds. A journal (SQLite, OUTPUT.journal) "
            "records every finished item before it is written: after a crash, kill -9 or "
            "Ctrl-C, the same command with --resume redoes nothing that finished. Exit "
            "status: 0 all succeeded, 1 some failed, 2 bad usage or input, 130 interrupted."
        ),
        epilog="example: workhorse map mymodule:score items.jsonl -o scores.jsonl -j 4",
    )
    run.add_argument("target", metavar="MODULE:FUNCTION", help="the function to call")
    run.add_argument("input", metavar="INPUT", help="the records (- for standard input)")
    run.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="JSON Lines out")
    run.add_argument("-j", "--jobs", type=_count, metavar="N", help="workers (default: CPUs)")
    run.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="per-record limit")
    run.add_argument("--retries", type=_retries, default=0, metavar="N", help="reruns on error")
    order = run.add_mutually_exclusive_group()
    order.add_argument("--ordered", action="store_true", help="output in input order")
    order.add_argument("--unordered", action="store_false", dest="ordered", help="(default)")
    run.add_argument("--chunksize", type=_count, metavar="N", help="records per batch")
    run.add_argument("--start-method", choices=("fork", "spawn", "forkserver"))
    run.add_argument("--threads", action="store_true", help="threads instead of processes")
    run.add_argument("--format", choices=FORMATS, dest="input_format", help="of INPUT")
    run.add_argument("--key", metavar="FIELD", help="the field naming each record")
    run.add_argument("--journal", metavar="PATH", help="default: OUTPUT.journal")
    run.add_argument("--resume", action="store_true", help="go on where the journal stops")
    run.add_argument("--no-journal", action="store_false", dest="use_journal",
                     help="keep no journal (nothing to resume from)")  # fmt: skip
    run.add_argument("--dask", nargs="?", const="", metavar="ADDRESS",
                     help="run on a Dask cluster (no ADDRESS: an embedded one)")  # fmt: skip
    run.add_argument("--retry-failed", action="store_true", help="with --resume: rerun failures")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    run.add_argument("--json", action="store_true", dest="json_summary", help="JSON summary")
    shell = commands.add_parser(
        "run",
        help="run a shell command for each input (GNU parallel's habits), resumably",
        description=(
            "Run COMMAND once per input: the arguments after ':::', else the lines of -a FILE "
            "or of standard input. Placeholders: {} the input, {.} without extension, {/} base "
            "name, {//} directory, {/.} base name without extension, {#} the job number (each "
            "shell-quoted; without any, ' {}' is appended). Each command runs in a process "
            "group of its own, its stdout and stderr captured apart: printed as each ends, or "
            "with -o written as JSON lines (command, exit, stdout, stderr, attempts, seconds) "
            "beside a journal, so that --resume redoes nothing that finished."
        ),
        epilog="example: workhorse run -j 4 --halt now,fail=1 'gzip -k {}' ::: a.csv b.csv",
    )
    shell.add_argument("-j", "--jobs", type=_count, metavar="N", help="at once (default: CPUs)")
    shell.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                       help="kill a command's process group past it")  # fmt: skip
    shell.add_argument("--retries", type=_retries, default=0, metavar="N", help="reruns")
    shell.add_argument("--halt", type=_halt, metavar="WHEN,fail=N",
                       help="now,fail=N: kill the running commands at N failures; soon,fail=N: "
                       "start no more (default: never)")  # fmt: skip
    shell.add_argument("-o", "--output", metavar="OUTPUT", help="JSON Lines results")
    shell.add_argument("--dask", nargs="?", const="", metavar="ADDRESS",
                       help="run on Dask workers (no ADDRESS: an embedded cluster)")  # fmt: skip
    shell.add_argument("-a", "--arg-file", metavar="FILE", help="inputs, one per line")
    shell.add_argument("--journal", metavar="PATH", help="default: OUTPUT.journal")
    shell.add_argument("--resume", action="store_true", help="go on where the journal stops")
    shell.add_argument("--retry-failed", action="store_true", help="with --resume")
    shell.add_argument("--ordered", "--keep-order", action="store_true", dest="ordered",
                       help="output in input order")  # fmt: skip
    shell.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    shell.add_argument("--json", action="store_true", dest="json_summary", help="JSON summary")
    shell.add_argument("template", metavar="COMMAND", help="the command template")
    shell.add_argument("args", nargs=argparse.REMAINDER, metavar="::: ARG ...")
    example = commands.add_parser(
        "example",
        help="run a bundled map job (with a journal), then show its status",
        description=(
            "Run 'workhorse map' on a bundled example -- the Collatz stopping time of 1,000 "
            "200-digit numbers -- then 'workhorse status' on its journal, printing each "
            "command first."
        ),
    )
    example.add_argument("--dir", metavar="DIR", help="where to write (default: a new temp dir)")
    example.add_argument("-j", "--jobs", type=_count, metavar="N", help="workers (default: CPUs)")
    status = commands.add_parser(
        "status",
        help="what a map journal holds: done, failed, pending, and the failures",
        description="Show a journal's done/failed/pending counts and its first failures.",
    )
    status.add_argument("journal", metavar="JOURNAL")
    status.add_argument("--json", action="store_true", help="as one JSON object")


def run_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run ``map`` or ``status``; a usage error is one line on stderr and status 2."""
    try:
        if args.command == "status":
            return _status(args.journal, args.json, out)
        if args.command == "example":
            return _example(args.dir, args.jobs, out)
        if args.command == "run":
            return run_map(_run_job(args), stdout=out)
        if args.retry_failed and not args.resume:
            raise UsageError("--retry-failed goes with --resume")
        job = MapJob(
            target=args.target, input=args.input, output=args.output, journal=args.journal,
            workers=args.jobs, timeout=args.timeout, retries=args.retries,
            ordered=args.ordered, chunksize=args.chunksize, start_method=args.start_method,
            threads=args.threads, input_format=args.input_format, key=args.key,
            resume=args.resume, retry_failed=args.retry_failed, quiet=args.quiet,
            json_summary=args.json_summary, dask=args.dask, use_journal=args.use_journal,
        )  # fmt: skip
        return run_map(job, stdout=out)
    except (UsageError, JournalError) as exc:
        print(f"workhorse {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _halt(text: str) -> tuple[str, int]:
    when, _, rule = text.partition(",")
    count = rule.removeprefix("fail=")
    if when not in ("now", "soon") or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"must be now,fail=N or soon,fail=N, not {text!r}")
    return when, int(count)


def _run_job(args: argparse.Namespace) -> MapJob:
    inputs: tuple[str, ...] | None = None
    if args.args:
        if args.args[0] != ":::":
            raise UsageError(f"after COMMAND comes '::: ARG ...', not {args.args[0]!r}")
        if args.arg_file:
            raise UsageError("give the inputs after ':::' or with -a FILE, not both")
        inputs = tuple(args.args[1:])
    if args.retry_failed and not args.resume:
        raise UsageError("--retry-failed goes with --resume")
    if args.dask is not None and args.halt is not None and args.halt[0] == "now":
        raise UsageError("--halt now cannot kill commands on Dask workers: use --halt soon")
    return MapJob(
        target=args.template, input=args.arg_file or "-", output=args.output, kind="run",
        args=inputs, journal=args.journal, workers=args.jobs, timeout=args.timeout,
        retries=args.retries, ordered=args.ordered, resume=args.resume,
        retry_failed=args.retry_failed, quiet=args.quiet, json_summary=args.json_summary,
        halt=args.halt, dask=args.dask,
    )  # fmt: skip


def _example(folder: str | None, workers: int | None, out: TextIO) -> int:
    where = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="workhorse-example-"))
    where.mkdir(parents=True, exist_ok=True)
    numbers = Path(__file__).with_name("numbers.jsonl")
    output = where / "steps.jsonl"
    target = "workhorse._jobs._example:collatz_steps"
    jobs = f" -j {workers}" if workers else ""
    print(f"$ workhorse map {target} {numbers} -o {output}{jobs}", file=out, flush=True)
    job = MapJob(target=target, input=str(numbers), output=str(output), workers=workers)
    code = run_map(job, stdout=out)
    print(f"$ workhorse status {output}.journal", file=out, flush=True)
    code = code or _status(f"{output}.journal", False, out)
    print(f"(the results: head -3 {output})", file=out)
    return code


def _status(path: str, as_json: bool, out: TextIO) -> int:
    journal = Journal.open(path, create=False)
    try:
        meta = journal.meta()
        if not meta:
            raise JournalError(f"journal {path} holds no job")
        counts, failures = journal.counts(), journal.failures()
    finally:
        journal.close()
    if as_json:
        print(json.dumps({**counts, "target": meta.get("target"), "failures": failures}), file=out)
    else:
        print(
            f"{meta.get('target')}: {counts['done']} done, {counts['failed']} failed, "
            f"{counts['pending']} pending",
            file=out,
        )
        for failure in failures:
            error = failure.get("error", {})
            print(f"  {failure['key']}: {error.get('type')}: {error.get('message')}", file=out)
    return 0 if not counts["failed"] and not counts["pending"] else 1
