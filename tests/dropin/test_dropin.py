"""The drop-in corpus: ordinary stdlib programs, run as written and "with workhorse".

workhorse's first promise is that a program that works with the stdlib works unchanged once
its imports are replaced. Each script in ``programs/`` is written for the stdlib; this runner
runs it twice in fresh interpreters, side by side: once as written, once after the import
rewrite a user would make (``REWRITES`` below), and compares what a user sees: the exit
status, stdout, and -- where the program says it matters -- the shape of stderr.

A program may state, in ``# key: value`` comment lines:

* ``# run: stdin`` -- fed on stdin (``python - < prog.py``) instead of run as a file;
* ``# env: NAME=value`` -- an extra environment variable (repeatable);
* ``# timeout: 4`` -- seconds each run may take (default ``DEFAULT_TIMEOUT``);
* ``# stdout: sorted`` -- its lines come from several processes or threads in no fixed
  order: compared sorted;
* ``# stderr: traceback`` -- stderr is compared by its shape (``traceback_shape``,
  ``shape_matches``);
  ``# stderr: exact`` compares it whole; otherwise it is ignored;
* ``# expect-workhorse: <sentence>`` -- workhorse deliberately differs here, because it
  fixes a case where the stdlib hangs, loses data or crashes. The sentence is the README's
  (checked: it must be there; repeat the line to continue a long sentence);
  ``# expect-workhorse-stdout:`` followed by ``# | line``
  lines gives workhorse's expected stdout, ``# expect-workhorse-exit: N`` its status
  (default 0), and ``# stdlib: hangs`` says the stdlib run is expected to be killed at the
  timeout. The stdlib run must still show the flaw, or the header is stale.

Programs that fail with workhorse today are listed in ``XFAIL`` (strict: a fix shows up as
an unexpected pass, and its entry is then removed).

Each run gets the environment of the test session without its ``PYTHON*`` settings (see
``UNSET_PREFIXES``), so stdout is block-buffered as when a user pipes a program's output.

Normalisation before comparing: the run directory becomes ``<dir>`` (each flavour runs a
copy with the same file name in its own directory), memory addresses become ``0x?``,
trailing blanks are dropped.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

import workhorse

PROGRAMS = Path(__file__).resolve().parent / "programs"
README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_TIMEOUT = 20.0  # seconds per run; every program takes well under 5 s
LEFTOVER_GRACE = 3.0  # seconds a finished program's helper processes get to exit
#: Programs run as from a plain shell: without the PYTHON* settings of the test session
#: (PYTHONUNBUFFERED would make the prints of concurrent processes interleave mid-line and
#: hide how output is buffered and flushed; PYTHONWARNINGS, PYTHONDEVMODE... change output).
UNSET_PREFIXES = ("PYTHON",)
KEPT = frozenset({"PYTHONPATH", "PYTHONHOME"})

# -- what fails with workhorse today (one place; strict, so a fix is visible) -----------------

XFAIL: dict[str, str] = {}

# -- the import rewrite ------------------------------------------------------------------------

#: stdlib module -> the module a user imports instead. ``None``: kept as written. For
#: ``import M`` the new module is bound to M's name (``import workhorse.processes as
#: multiprocessing``); for ``from M import names`` the names are taken from the new module.
REWRITES: dict[str, str | None] = {
    "multiprocessing": "workhorse.processes",
    "multiprocessing.pool": "workhorse.processes",  # Pool, ThreadPool
    "multiprocessing.dummy": "workhorse.threads",  # the Pool API on threads
    "threading": "workhorse.threads",
    "concurrent.futures": "workhorse",  # the executors; the other names: see FUTURES_FROM
    "concurrent.futures.process": None,  # BrokenProcessPool: workhorse's WorkerCrashed is one
}
#: Names of concurrent.futures always taken from workhorse. The others (as_completed, wait,
#: FIRST_COMPLETED, Future, the exceptions...) come from workhorse when ``workhorse.__all__``
#: has them, else stay the stdlib's (workhorse's futures are concurrent.futures futures).
EXECUTORS = frozenset({"ProcessPoolExecutor", "ThreadPoolExecutor"})
#: Imports of these packages that REWRITES does not cover make the rewrite fail loudly.
#: ``queue`` is deliberately absent: workhorse queues raise queue.Empty and queue.Full.
GUARDED = ("multiprocessing", "threading", "concurrent", "_thread")


class RewriteError(Exception):
    """A program imports the stdlib in a way the rewrite table does not cover."""


def futures_target(name: str) -> str:
    """Where a name imported from concurrent.futures comes from with workhorse."""
    if name in EXECUTORS or name in workhorse.__all__:
        return "workhorse"
    return "concurrent.futures"


def _import_from(module: str, names: list[ast.alias]) -> str:
    return f"from {module} import " + ", ".join(
        a.name if a.asname is None else f"{a.name} as {a.asname}" for a in names
    )


def _rewrite_import(node: ast.Import, bound: dict[str, str]) -> str | None:
    parts = []
    for alias in node.names:
        target = REWRITES.get(alias.name, alias.name)
        if alias.name not in REWRITES and alias.name.startswith(GUARDED):
            raise RewriteError(f"line {node.lineno}: no rewrite for `import {alias.name}`")
        if alias.name == "concurrent.futures":
            # `import concurrent.futures [as cf]` stays; `concurrent.futures.X`/`cf.X`
            # references are redirected one by one (see _futures_references).
            bound[alias.asname or alias.name] = alias.name
            parts += [f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")]
            parts += ["import workhorse"]
        elif target is None or target == alias.name:
            parts.append(f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
        elif "." in alias.name and alias.asname is None:
            raise RewriteError(f"line {node.lineno}: `import {alias.name}` binds its package")
        else:
            parts.append(f"import {target} as {alias.asname or alias.name}")
    text = "; ".join(dict.fromkeys(parts))
    return None if text == "; ".join(f"import {ast.unparse(a)}" for a in node.names) else text


def _rewrite_import_from(node: ast.ImportFrom) -> str | None:
    module = node.module or ""
    if node.level or module not in REWRITES:
        if not node.level and module.startswith(GUARDED):
            raise RewriteError(f"line {node.lineno}: no rewrite for `from {module} import ...`")
        return None
    target = REWRITES[module]
    if target is None:
        return None
    if module != "concurrent.futures":
        return _import_from(target, node.names)
    if any(a.name == "*" for a in node.names):
        raise RewriteError(f"line {node.lineno}: `from concurrent.futures import *`")
    groups: dict[str, list[ast.alias]] = {}
    for alias in node.names:
        groups.setdefault(futures_target(alias.name), []).append(alias)
    return "; ".join(_import_from(m, names) for m, names in groups.items())


def _is_type_checking(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (never executed: kept as is)."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.stmt) and _is_type_checking(child):
            assert isinstance(child, ast.If)
            for other in child.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield child
        yield from _runtime_nodes(child)


def _futures_reference(node: ast.Attribute, bound: dict[str, str]) -> bool:
    """``cf.X`` (``import concurrent.futures as cf``) or ``concurrent.futures.X``."""
    value = node.value
    if isinstance(value, ast.Name):
        return bound.get(value.id) == "concurrent.futures"
    return (
        isinstance(value, ast.Attribute)
        and isinstance(value.value, ast.Name)
        and value.value.id == "concurrent"
        and value.attr == "futures"
        and "concurrent.futures" in bound
    )


def rewrite(source: str) -> str:
    """The program with its stdlib imports replaced as ``REWRITES`` says, line numbers kept."""
    data = source.encode()  # ast's column offsets count UTF-8 bytes
    tree = ast.parse(data)
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def span(node: ast.stmt | ast.expr) -> tuple[int, int]:
        end_line, end_col = node.end_lineno, node.end_col_offset
        assert end_line is not None
        assert end_col is not None
        return starts[node.lineno - 1] + node.col_offset, starts[end_line - 1] + end_col

    edits: list[tuple[int, int, str]] = []
    bound: dict[str, str] = {}
    nodes = list(_runtime_nodes(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            text = _rewrite_import(node, bound)
        elif isinstance(node, ast.ImportFrom):
            text = _rewrite_import_from(node)
        else:
            continue
        if text is not None:
            lines_spanned = (node.end_lineno or node.lineno) - node.lineno
            edits.append((*span(node), text + "\n" * lines_spanned))  # same line numbers after
    for node in nodes:
        if (
            isinstance(node, ast.Attribute)
            and _futures_reference(node, bound)
            and futures_target(node.attr) == "workhorse"
        ):
            edits.append((*span(node), f"workhorse.{node.attr}"))
    if not edits:
        raise RewriteError("nothing to rewrite: the program imports no stdlib concurrency module")
    for start, end, text in sorted(edits, reverse=True):
        data = data[:start] + text.encode() + data[end:]
    return data.decode()


# -- program headers --------------------------------------------------------------------------

HEADER = re.compile(r"# (run|env|timeout|stdout|stderr|stdlib|expect-workhorse[\w-]*):(.*)")


@dataclass
class Header:
    """What a program says about how to run and compare it (see the module docstring)."""

    stdin: bool = False
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    sorted_stdout: bool = False
    stderr: str = "ignore"  # or "traceback", "exact"
    stdlib_hangs: bool = False
    improvement: str | None = None  # the README sentence
    expected_stdout: list[str] | None = None
    expected_exit: int = 0


def parse_header(source: str) -> Header:
    header = Header()
    lines = source.splitlines()
    for number, line in enumerate(lines):
        match = HEADER.fullmatch(line)
        if not match:
            continue
        key, value = match[1], match[2].strip()
        if (key, value) == ("run", "stdin"):
            header.stdin = True
        elif key == "env" and "=" in value:
            name, _, setting = value.partition("=")
            header.env[name] = setting
        elif key == "timeout":
            header.timeout = float(value)
        elif (key, value) == ("stdout", "sorted"):
            header.sorted_stdout = True
        elif key == "stderr" and value in ("traceback", "exact"):
            header.stderr = value
        elif (key, value) == ("stdlib", "hangs"):
            header.stdlib_hangs = True
        elif key == "expect-workhorse" and value:  # repeated lines continue the sentence
            header.improvement = f"{header.improvement or ''} {value}".strip()
        elif key == "expect-workhorse-exit":
            header.expected_exit = int(value)
        elif key == "expect-workhorse-stdout" and not value:
            block = []
            for follower in lines[number + 1 :]:
                if not follower.startswith("# |"):
                    break
                block.append(follower[4:])
            header.expected_stdout = block
        else:
            raise ValueError(f"unknown program header: {line!r}")
    if (header.improvement is None) != (header.expected_stdout is None):
        raise ValueError("expect-workhorse needs expect-workhorse-stdout, and the other way")
    return header


# -- running a program ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one run showed. ``exit_code`` is None when it was killed at the timeout."""

    exit_code: int | None
    stdout: str
    stderr: str
    leftovers: list[str]  # processes or /dev/shm entries it left behind


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    directory: Path
    deadline: float


def start(name: str, source: str, header: Header, directory: Path) -> Running:
    """Start ``source`` as ``<directory>/<name>.py`` in a new session (one kill stops all)."""
    directory.mkdir()
    script = directory / f"{name}.py"
    script.write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith(UNSET_PREFIXES) or k in KEPT}
    env.update(PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1", **header.env)
    with (
        open(directory / "stdout", "wb") as out,
        open(directory / "stderr", "wb") as err,
        open(script if header.stdin else os.devnull, "rb") as stdin,
    ):
        proc = subprocess.Popen(
            [sys.executable, "-" if header.stdin else script.name],
            stdin=stdin,
            stdout=out,
            stderr=err,
            cwd=directory,
            env=env,
            start_new_session=True,
        )
    return Running(proc, directory, time.monotonic() + header.timeout)


def _session(sid: int) -> list[psutil.Process]:
    """The live processes of session ``sid`` (the program's helpers outlive it there)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, PermissionError):
            continue
    return found


def _describe(proc: psutil.Process) -> str:
    try:
        return f"process {' '.join(proc.cmdline())[:120]!r}"
    except psutil.Error:
        return f"process {proc.pid}"


def finish(run: Running) -> Outcome:
    """Wait for the program (killing its whole session at the deadline), then for its
    helper processes; whatever is still alive after ``LEFTOVER_GRACE`` is a leftover."""
    sid = run.proc.pid
    try:
        exit_code: int | None = run.proc.wait(max(0.0, run.deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        exit_code = None
        os.killpg(sid, signal.SIGKILL)
        run.proc.wait()
    leftovers: list[str] = []
    grace = time.monotonic() + LEFTOVER_GRACE
    while (alive := _session(sid)) and time.monotonic() < grace:
        time.sleep(0.05)
    for proc in alive:
        leftovers.append(_describe(proc))
        proc.kill()
    psutil.wait_procs(alive, timeout=5)
    out, err = ((run.directory / name).read_text(errors="replace") for name in ("stdout", "stderr"))
    return Outcome(exit_code, out, err, leftovers)


def _shm_creator(name: str) -> int | None:
    """The pid in a workhorse /dev/shm name (as tests/conftest.py reads it)."""
    for token in name.split("-")[1:]:
        if token.isdigit() and len(token) < 20:
            return int(token)
    return None


def _shm_entries() -> set[str]:
    try:
        return {name for name in os.listdir("/dev/shm") if "wh-" in name}
    except FileNotFoundError:
        return set()


def sweep_shm(before: set[str]) -> list[str]:
    """Remove (and return) the workhorse /dev/shm entries created since ``before`` whose
    creator is dead: a run's leak, reported by the comparison rather than by the leak guard."""
    leaked = []
    for name in sorted(_shm_entries() - before):
        pid = _shm_creator(name)
        if pid is not None and not psutil.pid_exists(pid):
            leaked.append(f"/dev/shm/{name}")
            Path("/dev/shm", name).unlink(missing_ok=True)
    return leaked


# -- comparing --------------------------------------------------------------------------------

ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")
FRAME = re.compile(r'\s*File "([^"]+)", line (\d+), in (.+)')
EXCEPTION = re.compile(r"([A-Za-z_][\w.]*)(: .*|:?)")
CONTEXT = re.compile(r"(Process \S+|Exception in thread .+):")


def normalise(text: str, directory: Path) -> list[str]:
    text = text.replace(str(directory), "<dir>")
    return [ADDRESS.sub("0x?", line).rstrip() for line in text.splitlines()]


def traceback_shape(lines: list[str], program: str) -> list[str]:
    """The lines of a traceback a user reads to find the fault: the frames of the program's
    own code (file, line, function and the source line under it), the exception lines, and
    the "Process X:" / "Exception in thread X:" headers.

    Frames in library code differ by nature and are left out. The program's code is the
    program file, ``<stdin>``, or a pseudo-file such as ``<string>`` (kept, so that a frame
    that lost its file name shows in the difference). The remote-traceback pseudo-exception
    is reduced to ``RemoteTraceback``: its module path is the library's own, and its message
    may be the remote traceback's text.
    """
    shape = []
    for number, line in enumerate(lines):
        if frame := FRAME.fullmatch(line):
            if frame[1] in (f"<dir>/{program}.py", "<stdin>") or frame[1].startswith("<"):
                shape.append(f"{frame[1]}:{frame[2]} in {frame[3]}")
                source = lines[number + 1] if number + 1 < len(lines) else ""
                if source.startswith("    ") and not FRAME.fullmatch(source):
                    shape.append("    " + source.strip())
        elif CONTEXT.fullmatch(line):
            shape.append(line)
        elif (exc := EXCEPTION.fullmatch(line)) and line != "Traceback (most recent call last):":
            kind = exc[1].rsplit(".", 1)[-1]
            if kind.lstrip("_") == "RemoteTraceback":
                shape.append("RemoteTraceback")
            else:
                shape.append(kind + exc[2])
    return shape


def shape_matches(stdlib: list[str], wh: list[str]) -> bool:
    """True when workhorse's traceback shape shows what the stdlib's does, in order, plus at
    most extra frames of the program's own code (and their source lines).

    The extras are deliberate: workhorse re-raises a task's exception with the child's
    frames in its ``__traceback__`` (so ``except`` and debuggers see them) besides the
    formatted remote traceback as ``__cause__`` (``workhorse/_remote.py``), so the task's
    frame shows twice where the stdlib shows it once. Exception lines and headers must match.
    """
    matched = 0
    for line in wh:
        if matched < len(stdlib) and line == stdlib[matched]:
            matched += 1
        elif not line.startswith(("<", "    ")):  # not a frame nor its source line
            return False
    return matched == len(stdlib)


def _diff(what: str, expected: list[str], got: list[str], labels: tuple[str, str]) -> str:
    lines = difflib.unified_diff(expected, got, *labels, lineterm="", n=2)
    return f"{what} differs:\n" + "\n".join(lines)


def status(outcome: Outcome, header: Header) -> str:
    if outcome.exit_code is None:
        return f"killed at the {header.timeout:g} s timeout"
    return str(outcome.exit_code)


def differences(program: str, header: Header, stdlib: Outcome, wh: Outcome) -> list[str]:
    """Why the workhorse run does not match (empty when it does), in words for the lead."""
    problems = []
    out_std, out_wh = stdlib.stdout.splitlines(), wh.stdout.splitlines()
    if header.sorted_stdout:
        out_std, out_wh = sorted(out_std), sorted(out_wh)
    labels = ("stdlib", "workhorse")
    if header.expected_stdout is not None:
        assert header.improvement is not None
        text = " ".join(header.improvement.split())
        assert text in " ".join(README.read_text().split()), f"not in README.md: {text}"
        expected = header.expected_stdout
        if header.sorted_stdout:
            expected = sorted(expected)
        if header.stdlib_hangs:
            assert stdlib.exit_code is None, "the stdlib run no longer hangs: stale header"
        else:
            assert out_std != expected, "the stdlib run shows no flaw: stale header"
        out_std, labels = expected, ("expected", "workhorse")
        if wh.exit_code != header.expected_exit:
            problems.append(
                f"exit code: expected {header.expected_exit}, workhorse {status(wh, header)}"
            )
    elif stdlib.exit_code != wh.exit_code:
        problems.append(
            f"exit code: stdlib {status(stdlib, header)}, workhorse {status(wh, header)}"
        )
    if out_std != out_wh:
        problems.append(_diff("stdout", out_std, out_wh, labels))
    if header.stderr == "traceback":
        shape_std = traceback_shape(stdlib.stderr.splitlines(), program)
        shape_wh = traceback_shape(wh.stderr.splitlines(), program)
        if not shape_matches(shape_std, shape_wh):
            problems.append(_diff("stderr (traceback shape)", shape_std, shape_wh, labels))
    elif header.stderr == "exact" and stdlib.stderr != wh.stderr:
        problems.append(_diff("stderr", stdlib.stderr.splitlines(), wh.stderr.splitlines(), labels))
    for flavour, outcome in (("stdlib", stdlib), ("workhorse", wh)):
        if outcome.leftovers:
            problems.append(f"{flavour} left behind: " + ", ".join(outcome.leftovers))
    if problems and wh.stderr.strip():
        tail = "\n".join(wh.stderr.splitlines()[-15:])
        problems.append(f"workhorse stderr (last lines):\n{tail}")
    return problems


def run_both(name: str, tmp_path: Path) -> tuple[Header, Outcome, Outcome]:
    """Run the program as written and rewritten, at the same time (2 cores: one each)."""
    source = (PROGRAMS / f"{name}.py").read_text()
    header = parse_header(source)
    rewritten = rewrite(source)
    shm_before = _shm_entries()
    runs = [
        start(name, source, header, tmp_path / "stdlib"),
        start(name, rewritten, header, tmp_path / "workhorse"),
    ]
    stdlib, wh = (finish(run) for run in runs)
    # The stdlib creates no workhorse entries: whatever leaked is the workhorse run's --
    # unless it was killed at its timeout, resource tracker and all: then nothing could
    # clean up, and the entries are removed without blaming it.
    leaked = sweep_shm(shm_before)
    if wh.exit_code is not None:
        wh.leftovers += leaked
    stdlib.stdout, wh.stdout = (
        "\n".join(normalise(outcome.stdout, run.directory))
        for outcome, run in ((stdlib, runs[0]), (wh, runs[1]))
    )
    stdlib.stderr, wh.stderr = (
        "\n".join(normalise(outcome.stderr, run.directory))
        for outcome, run in ((stdlib, runs[0]), (wh, runs[1]))
    )
    return header, stdlib, wh


# -- the tests --------------------------------------------------------------------------------


def _programs() -> list[object]:
    """One test per program, bounded by its runs' timeout (both run at once) plus the time
    to collect their leftovers; strict xfail for the programs in ``XFAIL``."""
    names = sorted(path.stem for path in PROGRAMS.glob("*.py"))
    unknown = set(XFAIL) - set(names)
    assert not unknown, f"XFAIL names programs that do not exist: {sorted(unknown)}"
    params: list[object] = []
    for name in names:
        header = parse_header((PROGRAMS / f"{name}.py").read_text())
        marks = [pytest.mark.timeout(header.timeout + 2 * LEFTOVER_GRACE + 15)]
        if name in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[name]))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("name", _programs())
def test_dropin_program_matches_stdlib(name: str, tmp_path: Path) -> None:
    """The program shows the same with workhorse as with the stdlib (or the documented
    improvement its header states)."""
    header, stdlib, wh = run_both(name, tmp_path)
    problems = differences(name, header, stdlib, wh)
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_rewrite_replaces_imports_as_a_user_would() -> None:
    """The table at work on every import form it covers; line numbers stay the same."""
    source = (
        "import multiprocessing\n"
        "import multiprocessing as mp, os\n"
        "from multiprocessing import Pool, Queue as Q\n"
        "from multiprocessing.dummy import Pool as TP\n"
        "import threading\n"
        "from concurrent.futures import (\n"
        "    ProcessPoolExecutor,\n"
        "    wait,\n"
        ")\n"
        "import queue\n"
        "from concurrent.futures.process import BrokenProcessPool\n"
    )
    futures_line = (
        "from workhorse import ProcessPoolExecutor, wait"
        if futures_target("wait") == "workhorse"
        else "from workhorse import ProcessPoolExecutor; from concurrent.futures import wait"
    )
    assert rewrite(source).splitlines() == [
        "import workhorse.processes as multiprocessing",
        "import workhorse.processes as mp; import os",
        "from workhorse.processes import Pool, Queue as Q",
        "from workhorse.threads import Pool as TP",
        "import workhorse.threads as threading",
        futures_line,
        "",
        "",
        "",
        "import queue",
        "from concurrent.futures.process import BrokenProcessPool",
    ]


def test_rewrite_redirects_qualified_executor_names() -> None:
    """``import concurrent.futures`` stays; its executors are taken from workhorse."""
    source = "import concurrent.futures as cf\nex = cf.ThreadPoolExecutor(2)\n"
    assert rewrite(source).splitlines() == [
        "import concurrent.futures as cf; import workhorse",
        "ex = workhorse.ThreadPoolExecutor(2)",
    ]
    source = "import concurrent.futures\nconcurrent.futures.ProcessPoolExecutor()\n"
    assert rewrite(source).splitlines()[1] == "workhorse.ProcessPoolExecutor()"


def test_rewrite_leaves_type_checking_imports_alone() -> None:
    """Imports under ``if TYPE_CHECKING:`` never run: a user would not touch them."""
    source = "import threading\nif TYPE_CHECKING:\n    from multiprocessing.queues import Queue\n"
    assert rewrite(source).splitlines()[1:] == source.splitlines()[1:]


@pytest.mark.parametrize(
    "source",
    [
        "from multiprocessing.managers import BaseManager\n",
        "import multiprocessing.pool\n",
        "from concurrent import futures\n",
        "from concurrent.futures import *\n",
        "import os\n",
    ],
)
def test_rewrite_fails_loudly_on_imports_it_does_not_cover(source: str) -> None:
    """A program the table cannot rewrite is an error, never silently run as written."""
    with pytest.raises(RewriteError):
        rewrite(source)


def test_traceback_shape_keeps_the_program_frames_and_exceptions() -> None:
    """Library frames go, the program's frames, their source and the exceptions stay."""
    stderr = [
        "multiprocessing.pool.RemoteTraceback: ",
        '"""',
        "Traceback (most recent call last):",
        '  File "/usr/lib/python3.11/multiprocessing/pool.py", line 125, in worker',
        "    result = (True, func(*args, **kwds))",
        '  File "<dir>/prog.py", line 10, in average',
        "    return sum(values) / len(values)",
        "           ~~~~~~~~~~~~^~~~~~~~~~~~~",
        "ZeroDivisionError: division by zero",
        '"""',
        "",
        "The above exception was the direct cause of the following exception:",
    ]
    assert traceback_shape([line.rstrip() for line in stderr], "prog") == [
        "RemoteTraceback",
        "<dir>/prog.py:10 in average",
        "    return sum(values) / len(values)",
        "ZeroDivisionError: division by zero",
    ]


def test_program_header_is_read_from_comment_lines() -> None:
    """Every header key, the expected-output block and a sentence continued over lines."""
    header = parse_header(
        "# run: stdin\n"
        "# env: MODE=fast\n"
        "# timeout: 4\n"
        "# stdout: sorted\n"
        "# stderr: traceback\n"
        "# stdlib: hangs\n"
        "# expect-workhorse: leaving the block waits\n"
        "# expect-workhorse: for the work\n"
        "# expect-workhorse-exit: 3\n"
        "# expect-workhorse-stdout:\n"
        "# | first\n"
        "# |\n"
        "import threading\n"
    )
    assert header == Header(
        stdin=True,
        env={"MODE": "fast"},
        timeout=4.0,
        sorted_stdout=True,
        stderr="traceback",
        stdlib_hangs=True,
        improvement="leaving the block waits for the work",
        expected_stdout=["first", ""],
        expected_exit=3,
    )


@pytest.mark.parametrize(
    "source", ["# stdout: shuffled\n", "# expect-workhorse: a sentence but no output\n"]
)
def test_program_header_refuses_what_it_does_not_know(source: str) -> None:
    """A mistyped header is an error, not a silently different comparison."""
    with pytest.raises(ValueError, match=r"header|expect-workhorse"):
        parse_header(source)


def test_traceback_shape_may_show_more_program_frames_never_fewer() -> None:
    """workhorse repeats the task's frame under the caller's; it may not drop or reorder."""
    std = ["RemoteTraceback", "<dir>/p.py:10 in f", "    x()", "KeyError: 'b'", "KeyError: 'b'"]
    repeated = [*std[:4], "<dir>/p.py:10 in f", "    x()", "KeyError: 'b'"]
    assert shape_matches(std, repeated)
    assert not shape_matches(std, [std[0], *std[3:]])  # the task's frame is missing
    assert not shape_matches(std, [*std, "ValueError: other"])  # an extra exception
    assert not shape_matches(std, [std[1], std[2], std[0], *std[3:]])  # reordered
