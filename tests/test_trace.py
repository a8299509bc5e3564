"""``trace="run.json"`` (a Chrome trace-event file: one track per worker, validated against
the format here) and ``pool.insights()``, on every backend (the Dask one is in tests/dask)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

import workhorse

BOUND = 30
BACKENDS = ["processes", "threads", "serial"]


def work(x: int) -> int:
    time.sleep(0.02 if x % 10 == 0 else 0.0002)
    if x == 13:
        raise ValueError(x)
    return x


def exits(x: int) -> int:
    os._exit(4)


def check_trace_events(document: Any) -> list[dict[str, Any]]:
    """Assert that ``document`` is a trace in the Trace Event Format (JSON object form) as
    Perfetto and chrome://tracing read it; return its events."""
    assert isinstance(document, dict)
    events = document["traceEvents"]
    assert isinstance(events, list)
    assert document.get("displayTimeUnit", "ms") in ("ms", "ns")
    for event in events:
        assert isinstance(event["name"], str), event
        assert isinstance(event["pid"], int), event
        phase = event["ph"]
        assert phase in ("X", "i", "M"), event
        if phase == "M":
            assert event["name"] in ("process_name", "thread_name"), event
            assert isinstance(event["args"]["name"], str), event
            continue
        assert isinstance(event["tid"], int), event
        assert isinstance(event["ts"], (int, float)), event
        assert event["ts"] >= 0, event
        if phase == "X":
            assert isinstance(event["dur"], (int, float)), event
            assert event["dur"] >= 0, event
        else:
            assert event["s"] in ("t", "p", "g"), event
        json.dumps(event.get("args", {}))
    return events


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_trace_has_a_slice_per_batch_and_a_track_per_worker(
    backend: str, tmp_path: Path
) -> None:
    path = tmp_path / "run.json"
    with workhorse.ProcessPoolExecutor(2, trace=path, backend=backend, retries=1) as pool:
        futures = [pool.submit(work, i) for i in range(30)]
        assert isinstance(futures[13].exception(timeout=BOUND), ValueError)
        assert len(list(pool.map(work, range(14, 120)))) == 106
        stats = pool.stats()
    events = check_trace_events(json.loads(path.read_text()))
    slices = [e for e in events if e["ph"] == "X"]
    # every try of every task is in one slice (the failed task ran twice)
    assert sum(e["args"]["tasks"] for e in slices) == stats.done + stats.failed + stats.retried
    tracks = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert {f"worker {w.worker}" for w in stats.workers} <= tracks
    assert any(e["name"] == "retry" for e in events)
    assert all(e["tid"] > 0 for e in slices)  # on a worker's track, not the pool's


def test_a_pool_left_with_work_queued_writes_all_of_it(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    with workhorse.Pool(2, trace=path) as pool:
        result = pool.map_async(work, range(14, 60))  # leaving: close() + join()
    assert result.get(BOUND) == list(range(14, 60))
    events = check_trace_events(json.loads(path.read_text()))
    assert sum(e["args"]["tasks"] for e in events if e["ph"] == "X") == 46


def test_a_crash_and_a_timeout_are_marked_on_the_timeline(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    with workhorse.Pool(1, trace=str(path), timeout=0.2) as pool:
        with pytest.raises(workhorse.WorkerCrashed):
            pool.apply(exits, (1,))
        with pytest.raises(workhorse.TaskTimeout):
            pool.apply(time.sleep, (BOUND,))
    names = [e["name"] for e in check_trace_events(json.loads(path.read_text()))]
    assert "exited: crashed" in names
    assert "timeout" in names
    assert "exited: timeout" in names


@pytest.mark.parametrize("backend", BACKENDS)
def test_insights_name_the_slowest_tasks(backend: str) -> None:
    with workhorse.Pool(2, backend=backend) as pool:
        pool.map(work, range(1, 10))
        pool.apply(time.sleep, (0.2,))
        text = pool.insights()
    first, *rest = text.splitlines()
    assert "10 tasks submitted, 10 done, 0 failed" in first
    slowest = rest[rest.index("slowest batches:") + 1]
    assert "task sleep(0.2)" in slowest
    assert sum(1 for line in rest if line.startswith("  worker ")) >= 1


def test_bad_trace_paths_are_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="trace must be a file path, not int"):
        workhorse.Pool(1, trace=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"trace: the folder .* does not exist"):
        workhorse.ThreadPool(1, trace=tmp_path / "missing" / "run.json")


def test_a_trace_that_cannot_be_written_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="workhorse")
    with workhorse.ThreadPoolExecutor(1, trace=tmp_path) as pool:  # a folder: not writable
        assert pool.submit(abs, -1).result(timeout=BOUND) == 1
    assert any("cannot write trace" in r.getMessage() for r in caplog.records)


def test_the_trace_in_docs_is_a_valid_trace() -> None:
    """docs/trace.json (written by bench/trace_picture.py) is what docs/insights.md shows."""
    document = json.loads((Path(__file__).parent.parent / "docs" / "trace.json").read_text())
    events = check_trace_events(document)
    assert {e["name"] for e in events} >= {"retry", "timeout", "exited: timeout", "started"}


def slow_at_seven(x: int) -> int:
    time.sleep(0.15 if x == 7 else 0.001)
    if x == 3:
        raise KeyError(x)
    return x


@pytest.mark.parametrize("backend", BACKENDS)
def test_insights_true_times_each_task_even_inside_a_batch(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    with workhorse.Pool(2, backend=backend, insights=True, trace=path, chunksize=20) as pool:
        with pytest.raises(KeyError):
            pool.map(slow_at_seven, range(40))  # batches of 20: item 7 hides in one
        pool.apply(abs, (-1,))
        text = pool.insights()
    lines = text.splitlines()
    assert any(line.startswith("tasks: 41 timed; ran ") for line in lines), text
    assert any("waited in the queue" in line for line in lines)
    slowest = lines[lines.index("slowest tasks:") + 1]
    assert "task slow_at_seven(7)" in slowest  # by name, not as "20 tasks, the first ..."
    assert float(slowest.split()[0]) >= 0.14
    events = check_trace_events(json.loads(path.read_text()))
    tasks = [e for e in events if e.get("cat") == "task"]
    batches = [e for e in events if e.get("cat") == "batch"]
    assert len(tasks) == 41  # the failed task included
    longest = max(tasks, key=lambda e: e["dur"])
    assert longest["args"]["index"] == 7
    # each task lies inside a batch of its track
    for task in tasks:
        assert any(
            b["tid"] == task["tid"]
            and b["ts"] - 1 <= task["ts"]
            and task["ts"] + task["dur"] <= b["ts"] + b["dur"] + 1
            for b in batches
        ), task


def test_without_insights_nothing_is_timed_per_task() -> None:
    with workhorse.Pool(2, chunksize=20) as pool:
        pool.map(abs, range(40))
        text = pool.insights()
    assert "slowest tasks:" not in text
    assert not any(line.startswith("tasks: ") for line in text.splitlines())
    assert "slowest batches:" in text


def test_insights_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="insights must be True or False"):
        workhorse.Pool(1, insights="yes")  # type: ignore[arg-type]
