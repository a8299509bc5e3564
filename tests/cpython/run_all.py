"""Run the CPython suites on every Python pyenv has, and print the counts.

    python tests/cpython/run_all.py                   # every ~/.pyenv/versions/3.x (>= 3.11)
    python tests/cpython/run_all.py --python 3.13     # one of them
    python tests/cpython/run_all.py --venv 3.12=/work/venv-cpy312   # an existing venv
    python tests/cpython/run_all.py --baseline        # the same against the stdlib
    python tests/cpython/run_all.py -- -k Queue       # extra pytest arguments
    python tests/cpython/run_all.py --known-failures new.toml   # entries for what fails

Each Python runs ``pytest tests/cpython`` (``WORKHORSE_CPYTHON=1``) in its own venv:
``--venv``'s, else ``tests/cpython/.venvs/<version>``, created with ``pip install -e
".[test]"`` the first time. The runs go one after another (the suites start many processes;
two at once on a small machine would time each other out). The table counts every test by
suite and start method (from the module, or from the class name of a concurrent.futures
test) with the wall time of each group, then the stdlib names used for lack of workhorse
ones. The exit status is 1 if any run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def pythons() -> dict[str, Path]:
    """``{"3.11": .../bin/python}``: the newest patch release of each pyenv minor >= 3.11."""
    found: dict[str, tuple[tuple[int, ...], Path]] = {}
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for path in sorted(versions.glob("3.*/bin/python")):
        name = path.parents[1].name
        try:
            release = tuple(int(part) for part in name.split("."))
        except ValueError:
            continue  # 3.13t, 3.14-dev ...
        minor = f"{release[0]}.{release[1]}"
        if release[:2] >= (3, 11) and (minor not in found or found[minor][0] < release):
            found[minor] = (release, path)
    return {minor: path for minor, (_, path) in sorted(found.items())}


def venv_for(minor: str, interpreter: Path, given: dict[str, Path]) -> Path:
    """The venv's python for ``minor``, created (with the test extras) if needed."""
    venv = given.get(minor, HERE / ".venvs" / minor)
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} ...", flush=True)
        subprocess.run([str(interpreter), "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    return python


def group_of(testcase: ET.Element) -> tuple[str, str]:
    """``(suite, start method)`` of one JUnit test case."""
    module = testcase.get("classname", "").split(".")
    name = next((part for part in module if part.startswith("test_")), "")
    cls = module[-1] if module[-1] != name else ""
    if testcase.get("name") == "test_left_nothing_behind":
        return "leak checks", name.removeprefix("test_")
    if name.startswith("test_mp_"):
        return "multiprocessing", name.removeprefix("test_mp_")
    if name == "test_lock_tests":
        return "lock_tests", "threads"
    for prefix, method in (
        ("ProcessPoolForkserver", "forkserver"),
        ("ProcessPoolSpawn", "spawn"),
        ("ProcessPoolFork", "fork"),
        ("ThreadPool", "threads"),
    ):
        if cls.startswith(prefix):
            return "concurrent.futures", method
    return "concurrent.futures", "none"


def outcome_of(testcase: ET.Element) -> str:
    """One of :data:`OUTCOMES`."""
    for child in testcase:
        if child.tag == "skipped":
            return "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
        if child.tag in ("failure", "error"):
            message = child.get("message", "")
            if "XPASS(strict)" in message or "[XPASS(strict)]" in message:
                return "xpassed"
            return "failed" if child.tag == "failure" else "error"
    return "passed"


def tally(junit: Path) -> dict[tuple[str, str], Counter[str]]:
    """Outcome counts (and ``seconds``) per ``(suite, start method)``."""
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for testcase in ET.parse(junit).iter("testcase"):
        group = counts[group_of(testcase)]
        group[outcome_of(testcase)] += 1
        group["seconds"] += round(float(testcase.get("time", 0)))
    return counts


def _key(testcase: ET.Element) -> str:
    module = testcase.get("classname", "").split(".")
    name = next((part for part in module if part.startswith("test_")), "")
    cls = module[-1] if module[-1] != name else ""
    return "::".join(filter(None, [f"{name}.py", cls, testcase.get("name", "")]))


def failures(junit: Path) -> dict[str, str]:
    """``{test id: one-line summary}`` of the failed and erroring tests of one run."""
    found = {}
    for testcase in ET.parse(junit).iter("testcase"):
        for child in testcase:
            if child.tag in ("failure", "error"):
                message = " ".join((child.get("message") or child.tag).split())
                found[_key(testcase)] = message if len(message) <= 160 else message[:157] + "..."
    return found


def collected_ids(junit: Path) -> set[str]:
    """Every test id of one run."""
    return {_key(testcase) for testcase in ET.parse(junit).iter("testcase")}


def known_failures_toml(runs: dict[str, dict[str, str]], collected: dict[str, set[str]]) -> str:
    """Entries for known_failures.toml: one per failing test, ``python`` unless everywhere.

    A module whose every test failed everywhere with one summary (a ``setUpModule`` error)
    becomes one ``module.py::*`` entry.
    """
    by_test: dict[str, dict[str, str]] = defaultdict(dict)
    for minor, found in runs.items():
        for key, summary in found.items():
            by_test[key][minor] = summary
    lines = []
    for module in sorted({key.split("::")[0] for key in by_test}):
        keys = sorted(k for k in by_test if k.startswith(module + "::"))
        everything = {k for m in runs for k in collected[m] if k.startswith(module + "::")}
        summaries = {s for k in keys for s in by_test[k].values()}
        if (
            len(summaries) == 1
            and set(keys) == everything
            and all(len(by_test[k]) == len(runs) for k in keys)
        ):
            by_test[f"{module}::*"] = by_test[keys[0]]
            keys = [f"{module}::*"]
        for key in keys:
            versions = sorted(by_test[key])
            summary = json.dumps(sorted(set(by_test[key].values()))[0])
            lines += [f'["tests"."{key}"]', f"summary = {summary}"]
            if len(versions) < len(runs):
                lines.append(f"python = {json.dumps(versions)}")
            lines.append("")
    return "\n".join(lines)


def run(
    minor: str, python: Path, baseline: bool, extra: list[str]
) -> tuple[int, Path, dict[str, list[str]]]:
    """One pytest run; its exit status, its JUnit file and the fallbacks it reported."""
    out = Path(tempfile.mkdtemp(prefix=f"cpython-{minor}-"))
    env = dict(os.environ, WORKHORSE_CPYTHON="1", WORKHORSE_CPYTHON_REPORT=str(out / "report.json"))
    if baseline:
        env["WORKHORSE_CPYTHON_BASELINE"] = "stdlib"
    command = [str(python), "-m", "pytest", "tests/cpython", "-p", "no:cacheprovider", "-q"]
    command += ["-o", "faulthandler_timeout=0", f"--junitxml={out / 'junit.xml'}", *extra]
    print(f"+ Python {minor}: {' '.join(command[1:])}", flush=True)
    status = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    report = out / "report.json"
    fallbacks = json.loads(report.read_text())["fallbacks"] if report.exists() else {}
    return status, out / "junit.xml", fallbacks


def main() -> int:
    """Parse the arguments, run each Python in turn, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--python", action="append", help="only this version (repeatable)")
    parser.add_argument("--venv", action="append", default=[], help="VERSION=PATH of a venv to use")
    parser.add_argument("--baseline", action="store_true", help="against the stdlib")
    parser.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments")
    parser.add_argument(
        "--known-failures",
        metavar="PATH",
        help="run with --runxfail and write known_failures.toml entries for what failed",
    )
    args = parser.parse_args()
    if args.known_failures:
        args.pytest_args.append("--runxfail")
    given = {key: Path(value) for key, value in (item.split("=", 1) for item in args.venv)}
    selected = {m: p for m, p in pythons().items() if not args.python or m in args.python}
    results = []
    for minor, interpreter in selected.items():
        python = venv_for(minor, interpreter, given)
        start = time.monotonic()
        status, junit, fallbacks = run(minor, python, args.baseline, args.pytest_args)
        results.append((minor, status, time.monotonic() - start, junit, fallbacks))
    header = f"{'python':7} {'suite':19} {'method':15} " + " ".join(f"{o:>7}" for o in OUTCOMES)
    print("\n" + header + f" {'seconds':>7}")
    for minor, status, wall, junit, fallbacks in results:
        if not junit.exists():
            print(f"{minor:7} no results (pytest exit status {status})")
            continue
        for (suite, method), counts in sorted(tally(junit).items()):
            cells = " ".join(f"{counts[o]:>7}" for o in OUTCOMES)
            print(f"{minor:7} {suite:19} {method:15} {cells} {counts['seconds']:>7}")
        print(f"{minor:7} total wall time {wall:.0f} s, pytest exit status {status}")
        for module, names in sorted(fallbacks.items()):
            print(f"{minor:7} stdlib fallbacks: {module}: {', '.join(names)}")
    if args.known_failures:
        done = [(minor, junit) for minor, _, _, junit, _ in results if junit.exists()]
        text = known_failures_toml(
            {minor: failures(junit) for minor, junit in done},
            {minor: collected_ids(junit) for minor, junit in done},
        )
        Path(args.known_failures).write_text(text)
        print(f"known failures written to {args.known_failures}")
    return 1 if any(status for _, status, *_ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
