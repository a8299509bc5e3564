"""Progress on what produces results without a ``map``: ``submit`` loops (one growing bar per
pool, closed at shutdown) and ``workhorse.as_completed(progress=...)``; with tqdm and with the
built-in line bar."""

from __future__ import annotations

import concurrent.futures
import io
import sys
import time
from typing import Any

import pytest

import workhorse

BOUND = 30


def nap(x: int) -> int:
    time.sleep(0.002)
    return x


@pytest.fixture(params=["tqdm", "line"])
def renderer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "tqdm":
        pytest.importorskip("tqdm")
    else:
        monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm fails: the line bar
    return str(request.param)


def _final_line(stream: io.StringIO) -> str:
    text = stream.getvalue()
    assert text.endswith("\n"), repr(text[-200:])
    return text.rstrip("\n").rsplit("\r", 1)[-1]


@pytest.mark.parametrize("backend", ["processes", "threads", "serial"])
def test_a_submit_loop_gets_one_bar_that_ends_at_shutdown(renderer: str, backend: str) -> None:
    stream = io.StringIO()
    with workhorse.ProcessPoolExecutor(2, progress=stream, backend=backend) as pool:
        futures = [pool.submit(nap, i) for i in range(30)]
    assert [f.result() for f in futures] == list(range(30))
    assert stream.getvalue().count("\n") == 1
    assert "30/30" in _final_line(stream)


def test_a_view_s_submits_have_their_bar_closed_by_the_pool(renderer: str) -> None:
    stream = io.StringIO()
    with workhorse.ThreadPoolExecutor(2) as pool:
        view = pool.with_options(progress=stream)
        for i in range(10):
            view.submit(nap, i)
        pool.submit(nap, 99)  # the pool itself shows no bar
    assert "10/10" in _final_line(stream)


def test_pool_close_without_waiting_ends_the_bar_with_the_last_task(renderer: str) -> None:
    stream = io.StringIO()
    pool = workhorse.Pool(2, progress=stream)
    results = [pool.apply_async(nap, (i,)) for i in range(20)]
    pool.close()
    pool.join()
    assert [r.get(BOUND) for r in results] == list(range(20))
    assert "20/20" in _final_line(stream)


def test_no_bar_unless_asked() -> None:
    with workhorse.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(nap, i) for i in range(5)]
        done = list(workhorse.as_completed(futures))
    assert set(done) == set(futures)


def test_as_completed_counts_the_futures_it_yields(renderer: str) -> None:
    stream = io.StringIO()
    with workhorse.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(nap, i) for i in range(25)]
        seen = list(workhorse.as_completed(futures + futures[:3], progress=stream))
    assert sorted(f.result() for f in seen) == list(range(25))  # each future once
    assert "25/25" in _final_line(stream)


def test_as_completed_keeps_the_stdlib_s_behaviour() -> None:
    gate = workhorse.Event()
    with workhorse.ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(gate.wait, BOUND)
        for progress in (False, io.StringIO()):
            with pytest.raises(concurrent.futures.TimeoutError):
                list(workhorse.as_completed([stuck], timeout=0.05, progress=progress))
        gate.set()
    assert type(workhorse.as_completed([])) is type(concurrent.futures.as_completed([]))


@pytest.mark.parametrize("value", ["yes", 3, object()])
def test_as_completed_refuses_a_bad_progress_value(value: Any) -> None:
    with pytest.raises(TypeError, match="progress must be"):
        workhorse.as_completed([], progress=value)
