"""``workhorse run``: shell commands with GNU parallel's placeholders, captured output, exit
codes, ``--timeout`` that kills a command's whole process group, ``--halt``, and the journal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from workhorse._jobs._shell import expand

BOUND = 60


def workhorse(
    cwd: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workhorse", *args], cwd=cwd, input=stdin, text=True,
        capture_output=True, timeout=BOUND, check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("gzip {}", "gzip dir/a.tar.gz"),
        ("mv {} {.}", "mv dir/a.tar.gz dir/a.tar"),
        ("echo {/} {//} {/.}", "echo a.tar.gz dir a.tar"),
        ("echo {#}:{}", "echo 7:dir/a.tar.gz"),
        ("echo", "echo dir/a.tar.gz"),  # no placeholder: the input is appended
    ],
)
def test_placeholders(template: str, expected: str) -> None:
    assert expand(template, "dir/a.tar.gz", 7) == expected


def test_inputs_are_shell_quoted() -> None:
    assert expand("echo {}", "it's; rm -rf x", 1) == "echo 'it'\"'\"'s; rm -rf x'"


def test_outputs_are_grouped_per_command_and_exit_codes_counted(tmp_path: Path) -> None:
    template = "echo out {}; echo err {} >&2; exit $(( {#} == 2 ))"
    run = workhorse(tmp_path, "run", "-j", "2", "-q", "--ordered", template, ":::", "a", "b", "c")
    assert run.returncode == 1  # one command failed
    assert run.stdout.splitlines() == ["out a", "out b", "out c"]
    assert sorted(run.stderr.splitlines()) == ["err a", "err b", "err c"]


def test_inputs_from_stdin_or_a_file_and_results_as_json_lines(tmp_path: Path) -> None:
    (tmp_path / "names.txt").write_text("x.gz\ny.gz\n")
    run = workhorse(tmp_path, "run", "-q", "-o", "r.jsonl", "echo {.}", "-", stdin="")
    assert run.returncode == 2  # '-' is not ':::'
    run = workhorse(tmp_path, "run", "-q", "-o", "r.jsonl", "-a", "names.txt", "echo {.}")
    assert run.returncode == 0, run.stderr
    records = sorted(_lines(tmp_path / "r.jsonl"), key=lambda r: r["index"])
    assert [r["result"]["stdout"] for r in records] == ["x\n", "y\n"]
    assert records[0]["result"]["exit"] == 0
    assert records[0]["result"]["command"] == "echo x"
    piped = workhorse(tmp_path, "run", "-q", "printf %s-", stdin="1\n2\n3\n")
    assert sorted(piped.stdout.split("-")[:-1]) == ["1", "2", "3"]


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "late"
    command = f"(sleep 2; touch {marker}) & sleep 30"
    started = time.monotonic()
    run = workhorse(tmp_path, "run", "--timeout", "0.5", "-o", "r.jsonl", command, ":::", "x")
    assert time.monotonic() - started < BOUND / 2
    assert run.returncode == 1
    (record,) = _lines(tmp_path / "r.jsonl")
    assert record["error"]["type"] == "Timeout"
    time.sleep(2.5)  # slack: long enough for the background child to have touched it
    assert not marker.exists()  # it was killed with its group


def test_halt_now_kills_what_runs_and_resume_finishes(tmp_path: Path) -> None:
    options = ["-j", "2", "-o", "r.jsonl", "--halt", "now,fail=1"]
    job = ["case {} in bad) exit 3;; slow*) sleep ${SLOW:-30};; esac", ":::",
           "bad", "slow1", "slow2", "fast"]  # fmt: skip
    started = time.monotonic()
    run = workhorse(tmp_path, "run", *options, *job)
    assert time.monotonic() - started < BOUND / 2  # the running 'sleep 30' was killed
    assert run.returncode == 1
    assert "halted: 4 items: 0 done, 1 failed, 3 pending" in run.stderr
    status = workhorse(tmp_path, "status", "r.jsonl.journal", "--json")
    assert json.loads(status.stdout)["pending"] == 3
    other = workhorse(tmp_path, "run", *options, "--resume", "true", *job[1:])
    assert other.returncode == 2  # another command: another job's journal
    finished = workhorse(tmp_path, "run", *options, "--resume", *job, env={"SLOW": "0"})
    assert finished.returncode == 1  # 'bad' failed for good; the rest ran now
    assert (
        json.loads(workhorse(tmp_path, "status", "r.jsonl.journal", "--json").stdout)["done"] == 3
    )


def test_halt_soon_starts_nothing_more(tmp_path: Path) -> None:
    run = workhorse(tmp_path, "run", "-j", "1", "--halt", "soon,fail=1", "-o", "r.jsonl",
                    "exit $(( {} == 2 ))", ":::", "1", "2", "3", "4")  # fmt: skip
    assert run.returncode == 1
    assert [r["index"] for r in _lines(tmp_path / "r.jsonl")] == [0, 1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["echo", "a", "b"], "after COMMAND comes '::: ARG ...'"),
        (["--halt", "later", "echo", ":::", "a"], "must be now,fail=N or soon,fail=N"),
        (["--retry-failed", "echo", ":::", "a"], "--retry-failed goes with --resume"),
        (["--resume", "echo", ":::", "a"], "--resume needs the journal"),
    ],
)
def test_bad_usage_is_status_2(tmp_path: Path, args: list[str], message: str) -> None:
    run = workhorse(tmp_path, "run", *args)
    assert run.returncode == 2
    assert message in run.stderr


def test_kill_9_then_resume_runs_each_command_once(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    base = [sys.executable, "-m", "workhorse", "run", "-j", "2", "-q", "-o", "r.jsonl"]
    job = [f"echo {{}} >> {calls}; sleep 0.01", ":::", *map(str, range(300))]
    journal = tmp_path / "r.jsonl.journal"
    kills: list[tuple[int, set[int]]] = []  # (commands started by then, items committed)
    for pause in (0.3, 0.5, 0.7):
        resume = ["--resume"] if journal.exists() else []
        runner = subprocess.Popen([*base, *resume, *job], cwd=tmp_path, stderr=subprocess.DEVNULL)
        time.sleep(pause)  # slack: an instant mid-job
        runner.send_signal(signal.SIGKILL)
        runner.wait(BOUND)
        started = len(calls.read_text().split()) if calls.exists() else 0
        kills.append((started, _committed(journal)))
    final = subprocess.run([*base, "--resume", *job], cwd=tmp_path, timeout=BOUND, check=False)
    assert final.returncode == 0
    records = _lines(tmp_path / "r.jsonl")
    assert sorted(r["index"] for r in records) == list(range(300))
    ran = calls.read_text().split()
    # A command that ran and was not committed when its runner died runs again (one killed
    # with it, or finished while the journal's commit was on its way); one committed never.
    for started, committed in kills:
        again = {int(x) for x in ran[started:]} & committed
        assert not again, f"committed before a kill, ran again after it: {sorted(again)}"
    assert sorted(set(ran), key=int) == list(map(str, range(300)))
    assert os.path.exists(tmp_path / "r.jsonl.journal")


def test_ctrl_c_kills_the_running_commands_and_exits_130(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    command = f"touch {marker}; sleep 30 # {{}}"
    runner = subprocess.Popen(
        [sys.executable, "-m", "workhorse", "run", "-o", "r.jsonl", command, ":::", "x"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + BOUND
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)  # slack: the command starts in its own time
    started = time.monotonic()
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=BOUND)
    assert runner.returncode == 130, err
    assert time.monotonic() - started < 10  # the 'sleep 30' was killed, not awaited


def _committed(journal: Path) -> set[int]:
    if not journal.exists():
        return set()
    with contextlib.closing(sqlite3.connect(journal)) as db:
        return {row[0] for row in db.execute("SELECT position FROM items WHERE status = 'done'")}
