"""Workload 10 (issue 13): the ``workhorse`` command against the shell's tools and a script.

Every contender is a fresh command, timed from its start to its exit (interpreter start,
imports and pool start included), with 2 workers, in a temporary directory of its own:

* *shell commands*: 10,000 runs of ``true`` (quick: 2,000), the inputs one per line on
  stdin, output discarded: ``workhorse run -j 2 -q true`` without and with ``-o`` (JSON
  lines and the journal), ``xargs -P 2 -n 1 true`` and GNU ``parallel -j 2 true`` (left out,
  with a note, when it is not installed). Each command is ``true <input>``;
* *Python calls*: ``int(line) + 1`` on 100,000 lines (quick: 20,000) of a text file, one
  JSON line per result to a file: ``workhorse map mod:inc input.txt --format lines`` with
  its journal and with ``--no-journal``, and a hand-written script that maps the same
  function on ``concurrent.futures.ProcessPoolExecutor(2)`` with ``chunksize=1000``.

The figure is items (commands or calls) per second; the targets section turns the medians
into wall-clock microseconds per item.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from ..harness import PEER, STDLIB, WORKHORSE, Contender, Job, Workload, scaled
from ..report import fmt_figure

WORKERS = 2
COMMANDS, CALLS = 10_000, 100_000
SHELL, PYTHON = "shell commands (`true`)", "Python calls (`int(line) + 1`)"
RUN, RUN_OUT, XARGS, PARALLEL = "workhorse run", "workhorse run -o", "xargs -P 2", "GNU parallel"
MAP, MAP_BARE, SCRIPT = "workhorse map", "workhorse map --no-journal", "ProcessPoolExecutor script"
CONTENDERS = (
    Contender(RUN, WORKHORSE, ("workhorse",)),
    Contender(RUN_OUT, WORKHORSE, ("workhorse",)),
    Contender(MAP, WORKHORSE, ("workhorse",)),
    Contender(MAP_BARE, WORKHORSE, ("workhorse",)),
    Contender(SCRIPT, STDLIB),
    Contender(XARGS, PEER),
    Contender(PARALLEL, PEER),
)
CASES = {RUN: SHELL, RUN_OUT: SHELL, XARGS: SHELL, PARALLEL: SHELL,
         MAP: PYTHON, MAP_BARE: PYTHON, SCRIPT: PYTHON}  # fmt: skip

MODULE = "def inc(text):\n    return int(text) + 1\n"
SCRIPT_SOURCE = """\
import json
import sys
from concurrent.futures import ProcessPoolExecutor

from mod import inc


def main(source, target, workers):
    with open(source) as lines:
        items = lines.read().splitlines()
    with ProcessPoolExecutor(workers) as pool, open(target, "w") as out:
        for result in pool.map(inc, items, chunksize=1000):
            out.write(json.dumps({"result": result}) + "\\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
"""


@functools.cache
def gnu_parallel() -> str | None:
    """The path of GNU parallel, or ``None`` (moreutils' ``parallel`` is another program)."""
    path = shutil.which("parallel")
    if path is None:
        return None
    probe = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return path if probe.stdout.startswith("GNU parallel") else None


def command(contender: str, folder: Path) -> list[str]:
    """The command line of ``contender``, to run in ``folder`` (its input is there)."""
    workhorse = [sys.executable, "-m", "workhorse"]
    j = str(WORKERS)
    out = str(folder / "out.jsonl")
    if contender in (RUN, RUN_OUT):
        return [*workhorse, "run", "-j", j, "-q", *(["-o", out] if contender == RUN_OUT else []),
                "true"]  # fmt: skip
    if contender == XARGS:
        return ["xargs", "-P", j, "-n", "1", "true"]
    if contender == PARALLEL:
        return [gnu_parallel() or "parallel", "--will-cite", "-j", j, "true"]
    if contender in (MAP, MAP_BARE):
        bare = ["--no-journal"] if contender == MAP_BARE else []
        return [*workhorse, "map", "mod:inc", "input.txt", "--format", "lines", "-o", out,
                "-j", j, "-q", *bare]  # fmt: skip
    return [sys.executable, "script.py", "input.txt", out, j]


def run(contender: str, items: int) -> dict[str, float]:
    """Items per second of one fresh command of ``contender`` over ``items`` inputs."""
    with tempfile.TemporaryDirectory(prefix="wh-bench-cli-") as tmp:
        folder = Path(tmp)
        source = folder / "input.txt"
        source.write_text("".join(f"{i}\n" for i in range(items)))
        (folder / "mod.py").write_text(MODULE)
        (folder / "script.py").write_text(SCRIPT_SOURCE)
        argv = command(contender, folder)
        with source.open("rb") as stdin:
            start = time.perf_counter()
            done = subprocess.run(
                argv, cwd=folder, stdin=stdin, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, check=False,
            )  # fmt: skip
            elapsed = time.perf_counter() - start
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip()[-300:]
            raise RuntimeError(f"{' '.join(argv[:6])} ...: exit {done.returncode}: {tail}")
        out = folder / "out.jsonl"
        if out.exists() or CASES[contender] == PYTHON:
            lines = out.read_text().count("\n")
            if lines != items:
                raise AssertionError(f"{contender}: {lines} output lines for {items} inputs")
    return {CASES[contender]: items / elapsed}


def jobs(quick: bool) -> list[Job]:
    commands = scaled(COMMANDS // 5 if quick else COMMANDS)
    calls = scaled(CALLS // 5 if quick else CALLS)
    out = []
    for contender in (RUN, RUN_OUT, XARGS, PARALLEL, MAP, MAP_BARE, SCRIPT):
        if contender == PARALLEL and gnu_parallel() is None:
            continue
        items = commands if CASES[contender] == SHELL else calls
        params = {"contender": contender, "items": items}
        out.append(Job(contender, "", f"{__name__}:run", params))
    return out


def _micros(rate: float) -> str:
    """Wall-clock microseconds per item at ``rate`` items per second."""
    micros = 1e6 / rate
    return f"{micros:.0f}" if micros >= 100 else f"{micros:.1f}"


def _compare(best: Mapping[tuple[str, str], tuple[float, str]], mine: str, other: str) -> str:
    """One line: both rates, the speed ratio, and each in µs per item."""
    case = CASES[mine]
    a, b = best.get((case, mine)), best.get((case, other))
    if a is None or b is None:
        return f"{mine} vs {other}: no figure"
    return (
        f"{mine} vs {other}: {fmt_figure(a[0], 'items/s')} vs {fmt_figure(b[0], 'items/s')} "
        f"= {a[0] / b[0]:.2f}x; {_micros(a[0])} vs {_micros(b[0])} µs per item"
    )


def targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    """Issue 13 sets no threshold here: the comparisons, side by side, in µs per item too."""
    pairs = [(RUN, XARGS), (RUN, PARALLEL), (RUN_OUT, RUN), (MAP, SCRIPT), (MAP_BARE, SCRIPT),
             (MAP, MAP_BARE)]  # fmt: skip
    if gnu_parallel() is None:
        pairs.remove((RUN, PARALLEL))
    return [f"issue 13: {_compare(best, mine, other)}" for mine, other in pairs]


WORKLOAD = Workload(
    key="cli",
    title="10. The workhorse command: shell commands and tiny Python calls (2 workers)",
    description=(
        "Items per second of one fresh command, from its start to its exit (process and pool "
        "start included), 2 workers. *shell commands*: 10,000 (quick 2,000) runs of `true "
        "<input>`, inputs on stdin: `workhorse run -j 2 -q true` (with `-o`: JSON lines and "
        "the journal), `xargs -P 2 -n 1 true`, GNU `parallel -j 2 true`. *Python calls*: "
        "`int(line) + 1` on 100,000 (quick 20,000) lines of a file, one JSON line per result "
        "to a file: `workhorse map mod:inc input.txt --format lines -j 2 -q` (journal on, and "
        "`--no-journal`) and a script mapping it on `ProcessPoolExecutor(2)`, `chunksize=1000`."
    ),
    unit="items/s",
    higher_is_better=True,
    contenders=CONTENDERS,
    jobs=jobs,
    reps=(2, 3),
    timeout=(60.0, 300.0),
    targets=targets,
    notes=(
        "µs per item (targets) = 1e6 / items per second: wall-clock time per item, 2 workers, "
        "start-up included.",
        "workhorse run (`sh -c`) and GNU parallel (its user's shell) run each command in a "
        "shell, where `true` is a builtin; xargs executes `/usr/bin/true`: one process each.",
        "workhorse map writes a richer record per item (key, index, result, attempts, worker, "
        'seconds) than the script\'s `{"result": ...}`.',
        *(() if gnu_parallel() else ("GNU parallel is not installed: not measured.",)),
    ),
)
