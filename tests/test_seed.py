"""The seed tour, end to end: each scenario script runs in its own interpreter and its output
is checked against the behaviour SEED.md asks for.

Every script must exit with status 0 and print nothing on stderr. The checks read only what a
script prints; where the behaviour is concurrent they check what is guaranteed (never more than
4 inside a semaphore, each process's lines contiguous), never an order the script leaves open.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

SCRIPT_TIMEOUT = 20.0
SEED_DIR = Path(__file__).resolve().parent.parent / "examples" / "seed"


def run_script(module: str) -> str:
    """Run ``workhorse._tour.<module>``; return its stdout once it exited cleanly."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"workhorse._tour.{module}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so that a hang is killed with every process it started
    )
    try:
        out, err = proc.communicate(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{module} did not finish in {SCRIPT_TIMEOUT} s\n{out}\n{err}")
    assert proc.returncode == 0, f"{module} exited with {proc.returncode}\n{out}\n{err}"
    assert err == "", f"{module} wrote to stderr:\n{err}"
    return out


def lines(out: str) -> list[str]:
    return out.splitlines()


def matches(out: str, pattern: str) -> list[re.Match[str]]:
    """Every whole output line matching ``pattern``, in order."""
    return [m for line in lines(out) if (m := re.fullmatch(pattern, line))]


def numbers(out: str, pattern: str) -> list[int]:
    """The first group of every line matching ``pattern``, as ints."""
    return [int(m[1]) for m in matches(out, pattern)]


def index(out: str, line: str) -> int:
    return lines(out).index(line)


# -- processes ---------------------------------------------------------------------------------


def check_s01_function_process(out: str) -> None:
    parent = numbers(out, r"parent: pid (\d+)")[0]
    started = {m[1]: int(m[2]) for m in matches(out, r"started (\S+) with pid (\d+)")}
    assert len(started) == 5, "5 distinct default names"
    assert all(re.fullmatch(r"\w+-\d+", name) for name in started)
    pids = set(started.values())
    assert len(pids) == 5
    assert parent not in pids
    assert set(numbers(out, r"task \d: pid (\d+)")) == pids, "each child reports its own pid"
    assert "processes running: 6" in lines(out), "1 parent + 5 children at once"
    assert sorted(numbers(out, r"task (\d) done")) == [0, 1, 2, 3, 4]
    assert lines(out)[-1] == "all joined, exit codes [0, 0, 0, 0, 0]"


def check_s02_class_process(out: str) -> None:
    running = {m[1]: int(m[2]) for m in matches(out, r"(\S+) running in pid (\d+)")}
    assert sorted(running) == [f"Worker-{i}" for i in range(1, 6)], "default numbered names"
    assert len(set(running.values())) == 5
    expected = ", ".join(f"Worker-{i} (exit code 0)" for i in range(1, 6))
    assert lines(out)[-1] == f"joined {expected}"


def check_queue_consumer(out: str) -> None:
    """The consumer of scenarios 3, 5, 12, 13: every item in order, then it ends by itself."""
    assert numbers(out, r"producer put (\d)") == [0, 1, 2, 3, 4]
    assert numbers(out, r"consumer got (\d)") == [0, 1, 2, 3, 4]
    consumer = [line for line in lines(out) if line.startswith("consumer ")]
    assert consumer[-1] == "consumer finished"


def check_s03_queue(out: str) -> None:
    check_queue_consumer(out)
    assert "producer shut the queue down" in lines(out)
    assert lines(out)[-1] == "exit codes: [0, 0]", "both ended by themselves, no terminate()"


def check_s04_pipe(out: str) -> None:
    for side in ("left", "right"):
        assert numbers(out, rf"{side} sent (\d)") == [0, 1, 2]
        assert numbers(out, rf"{side} received (\d)") == [0, 1, 2]
    own = [line for line in lines(out) if line.startswith("left ")]
    assert [line.split()[1] for line in own] == ["sent"] * 3 + ["received"] * 3
    own = [line for line in lines(out) if line.startswith("right ")]
    assert [line.split()[1] for line in own] == ["received"] * 3 + ["sent"] * 3
    assert lines(out)[-1] == "exit codes: [0, 0]"


def check_s05_event(out: str) -> None:
    check_queue_consumer(out)
    set_at = index(out, "parent sets the event")
    assert index(out, "producer released") > set_at
    assert index(out, "consumer released") > set_at
    assert lines(out)[-1] == "both processes finished"


def check_s06_pool(out: str) -> None:
    assert "task 7 raised ValueError: task 7 failed on purpose" in lines(out), "get() re-raises"
    assert "error_callback: ValueError: task 7 failed on purpose" in lines(out)
    ran = matches(out, r"task (\d) ran in pid (\d+)")
    assert [int(m[1]) for m in ran] == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    pids = {int(m[2]) for m in ran}
    assert 1 <= len(pids) <= 5, "at most 5 worker processes, reused"
    assert lines(out)[-1] == f"worker pids used: {len(pids)} (pool of 5)"


def check_s07_lock(out: str) -> None:
    written = lines(out)[index(out, "file contents:") + 1 :]
    labels = "".join(line[0] for line in written)
    assert labels in ("AAAAABBBBB", "BBBBBAAAAA"), f"lines interleaved: {written}"
    assert [int(line.split()[-1]) for line in written] == [0, 1, 2, 3, 4] * 2


def check_s08_semaphore(out: str) -> None:
    assert lines(out)[0] == "start method: spawn"
    inside = matches(out, r"worker (\d): inside semaphore: (\d+)")
    assert sorted(int(m[1]) for m in inside) == list(range(10))
    counts = [int(m[2]) for m in inside]
    assert min(counts) >= 1
    assert max(counts) <= 4, f"more than 4 inside the semaphore: {counts}"
    assert lines(out)[-1] == "all 10 workers done, counter back to 0"


def check_alternation(out: str) -> None:
    """Scenarios 9 and 16: the producer and consumer strictly alternate over 5 items."""
    turns = [line for line in lines(out) if re.fullmatch(r"(producer put|consumer got) \d", line)]
    assert turns == [f"{who} {i}" for i in range(5) for who in ("producer put", "consumer got")]


def check_s09_condition(out: str) -> None:
    check_alternation(out)
    assert lines(out)[-1] == "exit codes: [0, 0]"


# -- threads -----------------------------------------------------------------------------------


def check_s10_function_thread(out: str) -> None:
    for label in "AB":
        assert numbers(out, rf"thread {label}: line (\d)") == [0, 1, 2]
        assert f"thread {label} returned 3" in lines(out)


def check_s11_class_thread(out: str) -> None:
    by_name: dict[str, list[int]] = {}
    for m in matches(out, r"(\S+): line (\d)"):
        by_name.setdefault(m[1], []).append(int(m[2]))
    assert len(by_name) == 2
    assert all(seen == [0, 1, 2] for seen in by_name.values())
    assert lines(out)[-1].startswith("joined ")
    assert sorted(lines(out)[-1].removeprefix("joined ").split(", ")) == sorted(by_name)


def check_s12_thread_queue(out: str) -> None:
    check_queue_consumer(out)
    assert "main shut the queue down" in lines(out)


def check_s13_thread_event(out: str) -> None:
    check_queue_consumer(out)
    set_at = index(out, "main sets the event")
    assert index(out, "producer released") > set_at
    assert index(out, "consumer released") > set_at
    assert lines(out)[-1] == "both threads finished"


def check_s14_thread_pool(out: str) -> None:
    ran = matches(out, r"task (\d) ran on (.+)")
    assert [int(m[1]) for m in ran] == list(range(10))
    names = {m[2] for m in ran}
    assert 1 <= len(names) <= 5, "at most 5 threads, reused"
    assert lines(out)[-1] == f"threads used: {len(names)} (pool of 5)"


def check_s15_thread_semaphore(out: str) -> None:
    inside = matches(out, r"thread (\d): inside semaphore: (\d+)")
    assert sorted(int(m[1]) for m in inside) == list(range(10))
    counts = [int(m[2]) for m in inside]
    assert min(counts) >= 1
    assert max(counts) <= 4, f"more than 4 inside the semaphore: {counts}"
    assert lines(out)[-1] == "all 10 threads done, counter back to 0"


def check_s16_thread_condition(out: str) -> None:
    check_alternation(out)
    assert lines(out)[-1] == "both threads finished"


# -- executors ---------------------------------------------------------------------------------

SUMS = [
    "task(100) = 4950",
    "task(1000) = 499500",
    "task(10000) = 49995000",
    "task(100000) = 4999950000",
]
PAGES = ["/page1 -> 200", "/page2 -> 200", "/page3 -> 200"]


def check_s17_executor_map(out: str) -> None:
    assert lines(out) == SUMS, "results in input order"


def check_s18_executor_submit(out: str) -> None:
    assert lines(out) == ["submitted 4 tasks", *SUMS]


def check_s19_thread_executor_map(out: str) -> None:
    assert lines(out) == PAGES


def check_s20_thread_executor_submit(out: str) -> None:
    assert lines(out) == PAGES


CHECKS: dict[str, Callable[[str], None]] = {
    name.removeprefix("check_"): check
    for name, check in sorted(globals().items())
    if re.fullmatch(r"check_s\d\d_\w+", name)
}


def test_seed_every_scenario_has_a_script_and_a_check() -> None:
    scripts = sorted(path.stem for path in SEED_DIR.glob("s[0-9][0-9]_*.py"))
    assert scripts == sorted(CHECKS)
    assert [int(name[1:3]) for name in scripts] == list(range(1, 21))


@pytest.mark.parametrize("module", sorted(CHECKS))
def test_seed_scenario_behaves(module: str) -> None:
    CHECKS[module](run_script(module))
