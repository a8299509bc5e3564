"""The ``workhorse`` command.

``workhorse map`` calls a Python function on every record of a file, on a pool, with a
resumable journal, and ``workhorse status`` reads that journal (see :mod:`._jobs`).
``workhorse demo`` runs the seed tour: the twenty scenarios of the tutorial workhorse grew from,
each a short script in ``workhorse._tour`` (``examples/seed/`` in the source tree). Each runs in
its own interpreter, as ``python -m workhorse._tour.<module>``, under a timeout.

Example::

    $ workhorse map mymodule:score items.jsonl -o scores.jsonl
    $ workhorse demo --list
    $ workhorse demo 3 8
    $ python -m workhorse --version
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TextIO

__all__ = ["Scenario", "main", "run_scenario", "scenarios"]

TOUR_PACKAGE = "workhorse._tour"
DEFAULT_TIMEOUT = 30.0
_SCRIPT = re.compile(r"s(\d{2})_\w+\.py")


@dataclass(frozen=True)
class Scenario:
    """One script of the tour.

    Attributes:
        number: its number in the seed (1-20).
        module: its module name inside ``workhorse._tour``, e.g. ``"s03_queue"``.
        title: the first line of its docstring.
        explanation: the rest of its docstring, what it shows and which flaw it removes.
    """

    number: int
    module: str
    title: str
    explanation: str


def scenarios() -> list[Scenario]:
    """The tour's scenarios in order, read from the scripts' docstrings without running them.

    Example::

        >>> scenarios()[2].module
        's03_queue'
    """
    spec = importlib.util.find_spec(TOUR_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the tour package {TOUR_PACKAGE} is not installed")
    found = []
    for folder in spec.submodule_search_locations:
        for path in Path(folder).iterdir():
            match = _SCRIPT.fullmatch(path.name)
            if match is None:
                continue
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or path.stem
            title, _, rest = doc.partition("\n")
            explanation = " ".join(rest.replace("``", "").split())
            found.append(Scenario(int(match[1]), path.stem, title.rstrip("."), explanation))
    return sorted(found, key=lambda s: s.number)


def run_scenario(scenario: Scenario, timeout: float, out: TextIO) -> str | None:
    """Run one scenario in a subprocess, copying its output to ``out`` line by line.

    The script runs in a session of its own, so that a timeout kills it together with every
    process it started.

    Returns:
        ``None`` if it exited with status 0, otherwise why it failed.
    """
    command = [sys.executable, "-m", f"{TOUR_PACKAGE}.{scenario.module}"]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    watchdog = threading.Timer(timeout, kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                out.write(f"    {line}")
                out.flush()
        code = proc.wait()
    except BaseException:  # Ctrl-C: the script's session does not get the terminal's SIGINT
        kill()
        proc.wait()
        raise
    finally:
        watchdog.cancel()
        watchdog.join()
    if timed_out.is_set():
        return f"timed out after {timeout:g} s"
    if code != 0:
        return f"exit code {code}"
    return None


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``workhorse demo``: list or run scenarios."""
    tour = scenarios()
    by_number = {s.number: s for s in tour}
    unknown = [n for n in args.scenarios if n not in by_number]
    if unknown:
        parser.error(
            f"unknown scenario {', '.join(map(str, unknown))}: choose from 1 to {len(tour)} "
            "(see 'workhorse demo --list')"
        )
    if args.list:
        for s in tour:
            print(f"{s.number:2d}  {s.title}")
        return 0
    chosen = [by_number[n] for n in args.scenarios] if args.scenarios else tour
    failed: list[int] = []
    started = time.monotonic()
    for s in chosen:
        print(f"[{s.number}/{len(tour)}] {s.title}", flush=True)
        print(textwrap.fill(s.explanation, 100, initial_indent="    ", subsequent_indent="    "))
        print(flush=True)
        problem = run_scenario(s, args.timeout, sys.stdout)
        if problem is not None:
            failed.append(s.number)
            print(f"    FAILED: scenario {s.number} {problem}", flush=True)
        print(flush=True)
    elapsed = time.monotonic() - started
    plural = "" if len(chosen) == 1 else "s"
    if failed:
        numbers = ", ".join(map(str, failed))
        print(
            f"{len(failed)} of {len(chosen)} scenario{plural} failed in {elapsed:.1f} s: {numbers}"
        )
        return 1
    print(f"{len(chosen)} scenario{plural} passed in {elapsed:.1f} s")
    return 0


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and the ``demo`` sub-parser."""
    parser = argparse.ArgumentParser(
        prog="workhorse",
        description="workhorse: processes, threads, queues, locks and pools that never hang.",
    )
    parser.add_argument(
        "--version", action="version", version=f"workhorse {metadata.version('workhorse')}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the seed tour (the 20 scenarios workhorse grew from)",
        description=(
            "Run the seed tour: each scenario prints what it shows, then runs as "
            "'python -m workhorse._tour.<module>' in its own process. "
            "The exit code is 0 if every scenario passed."
        ),
        epilog="examples: 'workhorse demo', 'workhorse demo --list', 'workhorse demo 3 8'",
    )
    demo.add_argument(
        "scenarios", nargs="*", type=int, metavar="N", help="scenario numbers to run (default: all)"
    )
    demo.add_argument("--list", action="store_true", help="list the scenarios and exit")
    demo.add_argument(
        "--timeout",
        type=_positive,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per-scenario time limit (default: {DEFAULT_TIMEOUT:g})",
    )
    from ._jobs._subcommands import add_commands

    add_commands(commands)
    return parser, demo


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``workhorse`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 if a scenario (or a map's record) failed, 2 for a
        usage error, 130 for an interrupted map.

    Example::

        >>> main(["demo", "--list"])   # doctest: +SKIP
    """
    parser, demo = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "demo":
            return _demo(args, demo)
        from ._jobs._subcommands import run_command

        return run_command(args)
    except SystemExit as exc:  # argparse exits for --help, --version and usage errors
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
