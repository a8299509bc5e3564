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


@pytest.mark.parametrize("kind", ["processes", "threads"])
def test_a_task_group_counts_its_members(renderer: str, kind: str) -> None:
    stream = io.StringIO()
    module = workhorse.processes if kind == "processes" else workhorse.threads
    with module.group(progress=stream) as group:
        for i in range(4):
            group.start(nap, i)
    assert group.results == [0, 1, 2, 3]
    assert stream.getvalue().count("\n") == 1
    assert "4/4" in _final_line(stream)


def test_a_task_group_shows_no_bar_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    with workhorse.threads.group() as group:
        group.start(nap, 1)
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="progress must be"):
        workhorse.threads.group(progress="yes")


def test_nested_maps_share_the_line_and_only_the_outer_bar_stays(renderer: str) -> None:
    stream = io.StringIO()
    with workhorse.ThreadPool(2) as pool:
        outer = pool.with_options(progress=stream)
        for row in outer.imap(list, [range(3), range(5)]):
            inner = pool.with_options(progress=stream).map(nap, row)  # a bar inside a bar
            assert inner == row
    text = stream.getvalue()
    final = _final_line(stream)
    assert "2/2" in final  # the outer bar's final state, alone
    assert "nap" not in final
    if renderer == "line":
        assert " | " in text  # outer and inner drawn side by side on one line
        assert text.count("\n") == 1  # the inner bars were erased, not left behind
    else:
        assert "nap:" in text  # tqdm drew each inner bar on the next row, then erased it


def test_bars_in_two_threads_do_not_draw_over_each_other(renderer: str) -> None:
    if renderer != "line":
        pytest.skip("tqdm positions concurrent bars itself")
    stream = io.StringIO()
    first = workhorse._progress_bar.make_bar(stream, 2, "a")
    second = workhorse._progress_bar.make_bar(stream, 3, "b")
    assert first is not None
    assert second is not None
    first.update(2)
    first.close()  # not the last one open: erased, b redrawn
    second.update(3)
    second.close()
    assert stream.getvalue().count("\n") == 1
    assert _final_line(stream).startswith("b: 3/3")
