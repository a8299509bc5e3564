"""``workhorse map`` and ``workhorse status``: real runs of the command, real kills.

The resume test kills the runner (``kill -9``; its workers notice and exit) at random
instants of a 2,000-record job, 20 times, cutting the output's last line now and then, and
then lets it finish:
every record's line appears exactly once, and no record committed to the journal before a
run started is computed again in that run (each call appends its record's index to a side
file, so the calls of each run can be told apart).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

BOUND = 60
MODULE = """
import os, time

def square(record):
    n = record["n"]
    with open(os.environ["CALLS"], "a") as calls:  # O_APPEND: one line per call, whole
        calls.write(f"{os.environ.get('RUN', 0)} {n}\\n")
    if n == 13:
        raise ValueError("unlucky thirteen")
    if n == 17:
        os._exit(3)
    if n == 19 and os.environ.get("SLOW_NINETEEN"):
        time.sleep(30)
    time.sleep(float(os.environ.get("NAP", "0")))
    return n * n

def length(text):
    return len(text)

def returns_a_set(record):
    return {1, 2}

not_callable = 42
"""


@pytest.fixture
def job(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text(MODULE)
    return tmp_path


def _write_input(path: Path, count: int, start: int = 0) -> None:
    path.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(start, start + count)))


def workhorse(
    cwd: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CALLS": str(cwd / "calls"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "workhorse", *args], cwd=cwd, input=stdin, text=True,
        capture_output=True, timeout=BOUND, env=environment, check=False,
    )  # fmt: skip


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_map_writes_a_record_per_input_with_errors_and_attempts(job: Path) -> None:
    _write_input(job / "in.jsonl", 30)
    run = workhorse(job, "map", "tasks:square", "in.jsonl", "-o", "out.jsonl", "-j", "2",
                    "--retries", "1")  # fmt: skip
    assert run.returncode == 1, run.stderr  # some records failed
    records = {r["index"]: r for r in _lines(job / "out.jsonl")}
    assert sorted(records) == list(range(30))
    assert records[4]["result"] == 16
    assert records[4]["key"] == "5"  # the 1-based line number, without --key
    assert records[4]["attempts"] == 1
    assert records[13]["error"]["type"] == "ValueError"
    assert "unlucky thirteen" in records[13]["error"]["traceback"]
    assert records[13]["attempts"] == 2  # --retries 1: tried twice
    assert records[17]["error"]["type"] == "WorkerCrashed"
    assert "square" in records[17]["error"]["message"]
    assert "30 items: 28 done, 2 failed, 0 pending" in run.stderr
    status = workhorse(job, "status", "out.jsonl.journal")
    assert status.returncode == 1
    assert "28 done, 2 failed, 0 pending" in status.stdout
    assert "ValueError: unlucky thirteen" in status.stdout


def test_ordered_output_formats_keys_and_stdin(job: Path) -> None:
    (job / "words.txt").write_text("a\nbb\n\nccc\n")
    run = workhorse(job, "map", "tasks:length", "-", "-o", "out.jsonl", "--ordered", "-q",
                    "--format", "lines", stdin=(job / "words.txt").read_text())  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # -q
    assert [r["result"] for r in _lines(job / "out.jsonl")] == [1, 2, 3]
    (job / "rows.csv").write_text("id,n\nx,2\ny,3\n")
    run = workhorse(job, "map", "tasks:square", "rows.csv", "-o", "csv.jsonl", "--key", "id",
                    "--threads", "--json")  # fmt: skip
    assert run.returncode == 1  # CSV cells are strings: n * n raises TypeError
    summary = json.loads(run.stdout)
    assert (summary["done"], summary["failed"], summary["pending"]) == (0, 2, 0)
    assert {r["key"] for r in _lines(job / "csv.jsonl")} == {"x", "y"}


def test_a_result_that_is_not_json_fails_its_record(job: Path) -> None:
    _write_input(job / "in.jsonl", 2)
    run = workhorse(job, "map", "tasks:returns_a_set", "in.jsonl", "-o", "out.jsonl")
    assert run.returncode == 1
    errors = [r["error"] for r in _lines(job / "out.jsonl")]
    assert all("is not JSON" in e["message"] for e in errors)


def test_a_timeout_kills_the_record_and_the_rest_goes_on(job: Path) -> None:
    _write_input(job / "in.jsonl", 25)
    run = workhorse(job, "map", "tasks:square", "in.jsonl", "-o", "out.jsonl", "--timeout", "1",
                    env={"SLOW_NINETEEN": "1"})  # fmt: skip
    records = {r["index"]: r for r in _lines(job / "out.jsonl")}
    assert records[19]["error"]["type"] == "TaskTimeout"
    assert records[20]["result"] == 400
    assert run.returncode == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuchmodule:f", "in.jsonl"], "cannot import module 'nosuchmodule'"),
        (["tasks:missing", "in.jsonl"], "has no attribute 'missing'"),
        (["tasks:not_callable", "in.jsonl"], "is not callable"),
        (["tasks", "in.jsonl"], "MODULE:NAME"),
        (["tasks:square", "bad.jsonl"], "bad.jsonl, line 2: not JSON"),
        (["tasks:square", "nowhere.jsonl"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_status_2(job: Path, args: list[str], message: str) -> None:
    _write_input(job / "in.jsonl", 3)
    (job / "bad.jsonl").write_text('{"n": 1}\n{"n": \n')
    run = workhorse(job, "map", *args, "-o", "out.jsonl")
    assert run.returncode == 2
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert not (job / "calls").exists()  # nothing ran


def test_an_unwritable_output_and_another_job_s_journal_lose_nothing(job: Path) -> None:
    _write_input(job / "in.jsonl", 10)
    first = workhorse(job, "map", "tasks:length", "in.jsonl", "-o", "out.jsonl")
    assert first.returncode == 0, first.stderr
    journal = job / "out.jsonl.journal"
    before = journal.read_bytes()
    _write_input(job / "other.jsonl", 10, start=100)
    other = workhorse(job, "map", "tasks:length", "other.jsonl", "-o", "out.jsonl",
                      "--journal", str(journal), "--resume")  # fmt: skip
    assert other.returncode == 2
    assert "is of a different job (input differ)" in other.stderr
    again = workhorse(job, "map", "tasks:length", "in.jsonl", "-o", "out.jsonl")
    assert again.returncode == 2
    assert "add --resume" in again.stderr
    unwritable = workhorse(job, "map", "tasks:length", "in.jsonl", "-o", "in.jsonl/out.jsonl")
    assert unwritable.returncode == 2
    assert "in.jsonl/out.jsonl" in unwritable.stderr
    assert len(unwritable.stderr.strip().splitlines()) == 1
    assert journal.read_bytes() == before  # nothing done was lost
    assert _journal_counts(journal) == (10, 0)


def _journal_counts(path: Path) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = dict(db.execute("SELECT status, count(*) FROM items GROUP BY status").fetchall())
    return rows.get("done", 0), rows.get("failed", 0)


def _committed(path: Path) -> set[int]:
    if not path.exists():
        return set()
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT position FROM items")}


def _calls(path: Path, run: int | None = None) -> list[int]:
    """The records called (by the runs tagged ``run``, or all)."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        tag, _, n = line.partition(" ")
        if n and (run is None or int(tag) == run):
            found.append(int(n))
    return found


@pytest.mark.timeout(300)
def test_kill_9_at_random_instants_then_resume_loses_and_repeats_nothing(job: Path) -> None:
    total = 2000
    _write_input(job / "in.jsonl", total)
    rng = random.Random(1234)
    calls, journal, output = job / "calls", job / "out.jsonl.journal", job / "out.jsonl"
    command = [sys.executable, "-m", "workhorse", "map", "tasks:square", "in.jsonl", "-o",
               "out.jsonl", "-j", "2", "--chunksize", "1", "-q"]  # fmt: skip
    env = {**os.environ, "CALLS": str(calls), "NAP": "0.005"}  # 5 s on 2 workers
    before: dict[int, set[int]] = {}  # run -> the records committed when it started
    groups = []
    for run in range(1, 21):
        before[run] = _committed(journal)
        assert len(before[run]) < total  # every kill lands mid-job
        resume = ["--resume"] if journal.exists() else []
        runner = subprocess.Popen(command + resume, cwd=job, env={**env, "RUN": str(run)},
                                  start_new_session=True, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        groups.append(runner.pid)
        time.sleep(rng.uniform(0.05, 0.8))  # slack: a random instant, not an order
        runner.kill()  # kill -9 of the runner; its workers notice and exit
        runner.wait(BOUND)
        if run % 3 == 0 and output.exists() and output.stat().st_size > 10:
            with open(output, "r+b") as f:  # a cut last line, as a crash mid-write leaves
                f.truncate(output.stat().st_size - 7)
    before[21] = _committed(journal)
    assert len(before[21]) >= 100  # the killed runs committed work, which must not rerun
    final = subprocess.run([*command, "--resume"], cwd=job, env={**env, "RUN": "21"},
                           timeout=BOUND, capture_output=True, text=True, check=False)  # fmt: skip
    assert final.returncode == 1, final.stderr  # records 13 and 17 fail
    for pgid in groups:
        _wait_group_gone(pgid)
    for run, committed in before.items():  # a worker of a killed run may finish its item
        again = set(_calls(calls, run)) & committed  # late, but nothing committed before
        assert not again, f"run {run}: committed records computed again: {sorted(again)[:9]}"
    records = _lines(output)
    assert sorted(r["index"] for r in records) == list(range(total))  # each exactly once
    assert all(r["result"] == r["index"] ** 2 for r in records if r["index"] not in (13, 17))
    assert _journal_counts(journal) == (total - 2, 2)


def _wait_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)  # slack: the kernel reaps the killed workers
    raise AssertionError(f"process group {pgid} still alive")


def test_ctrl_c_exits_130_and_resume_finishes_with_retry_failed(job: Path) -> None:
    _write_input(job / "in.jsonl", 40)
    env = {**os.environ, "CALLS": str(job / "calls"), "SLOW_NINETEEN": "1"}
    command = [sys.executable, "-m", "workhorse", "map", "tasks:square", "in.jsonl", "-o",
               "out.jsonl", "-j", "2", "--chunksize", "1"]  # fmt: skip
    runner = subprocess.Popen(command, cwd=job, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + BOUND
    while 19 not in _calls(job / "calls"):  # record 19 sleeps: the run is mid-way
        assert time.monotonic() < deadline
        time.sleep(0.02)
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=BOUND)
    assert runner.returncode == 130, err
    assert "--resume" in err
    finished = workhorse(job, "map", "tasks:square", "in.jsonl", "-o", "out.jsonl", "--resume")
    assert finished.returncode == 1
    assert _journal_counts(job / "out.jsonl.journal") == (38, 2)
    retried = workhorse(job, "map", "tasks:square", "in.jsonl", "-o", "out.jsonl", "--resume",
                        "--retry-failed", "--json")  # fmt: skip
    assert json.loads(retried.stdout)["ran now"] == 2
    assert len(_lines(job / "out.jsonl")) == 40


def test_the_bundled_example_runs_and_reports(tmp_path: Path) -> None:
    run = workhorse(tmp_path, "example", "--dir", str(tmp_path / "ex"), "-j", "2")
    assert run.returncode == 0, run.stderr
    assert "$ workhorse map workhorse._jobs._example:collatz_steps" in run.stdout
    assert "collatz_steps: 1000 done, 0 failed, 0 pending" in run.stdout
    first = _lines(tmp_path / "ex" / "steps.jsonl")[0]
    assert set(first["result"]) == {"n", "steps", "peak"}


def test_without_a_journal_nothing_is_kept_and_resume_is_refused(job: Path) -> None:
    _write_input(job / "in.jsonl", 5)
    run = workhorse(job, "map", "tasks:length", "in.jsonl", "-o", "out.jsonl", "--no-journal")
    assert run.returncode == 0, run.stderr
    assert len(_lines(job / "out.jsonl")) == 5
    assert not (job / "out.jsonl.journal").exists()
    again = workhorse(job, "map", "tasks:length", "in.jsonl", "-o", "out.jsonl", "--no-journal",
                      "--resume")  # fmt: skip
    assert again.returncode == 2
    assert "--no-journal" in again.stderr
