"""Pool and ThreadPool: the multiprocessing.pool API, side by side with the stdlib where the
behaviour should match, plus the extras (options views, progress bars, lazy imap)."""

from __future__ import annotations

import functools
import gc
import io
import itertools
import multiprocessing
import multiprocessing.pool
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workhorse
from workhorse._lazy_map import MAX_MAP_WINDOW_PER_WORKER
from workhorse._pool import PoolView

Factory = Callable[..., Any]

OURS: dict[str, Factory] = {"Pool": workhorse.Pool, "ThreadPool": workhorse.ThreadPool}
STDLIB: dict[str, Factory] = {
    "mp.Pool": lambda *a, **k: multiprocessing.get_context("fork").Pool(*a, **k),
    "mp.ThreadPool": multiprocessing.pool.ThreadPool,
}
BOTH = {**OURS, **STDLIB}


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def wait_for(event: Any, x: int) -> int:
    """Return ``x`` at once, except the last item (``x < 0``), which waits for ``event``."""
    if x < 0:
        event.wait(10)
    return abs(x)


def pid(_: object = None) -> int:
    return os.getpid()


def raising_after(n: int, bad: int) -> Iterator[int]:
    for i in range(n):
        if i == bad:
            raise KeyError(f"input item {i}")
        yield i


class Counted:
    """An iterable that records how far it was pulled."""

    def __init__(self, limit: int | None = None) -> None:
        self.pulled = 0
        self.limit = limit

    def __iter__(self) -> Iterator[int]:
        for i in itertools.count() if self.limit is None else range(self.limit):
            self.pulled += 1
            yield i


@pytest.fixture(params=sorted(OURS))
def make_pool(request: pytest.FixtureRequest) -> Factory:
    factory: Factory = OURS[request.param]
    return factory


@pytest.fixture(params=sorted(BOTH))
def any_pool(request: pytest.FixtureRequest) -> Factory:
    factory: Factory = BOTH[request.param]
    return factory


def test_pool_api_matches_stdlib(any_pool: Factory) -> None:
    got: list[int] = []
    with any_pool(2) as pool:
        assert pool.apply(square, (3,)) == 9
        result = pool.apply_async(square, (4,), callback=got.append)
        assert result.get(timeout=10) == 16
        assert got == [16], "the callback has run by the time get() returns"
        assert result.ready()
        assert result.successful()
        assert pool.map(square, range(10)) == [x * x for x in range(10)]
        assert pool.starmap(pow, [(2, 3), (3, 2)]) == [8, 9]
        assert pool.map_async(square, [1, 2]).get(timeout=10) == [1, 4]
        assert pool.starmap_async(pow, [(2, 2)]).get(timeout=10) == [4]
        assert list(pool.imap(square, range(5))) == [0, 1, 4, 9, 16]
        assert list(pool.imap(square, range(5), 2)) == [0, 1, 4, 9, 16]
        assert sorted(pool.imap_unordered(square, range(5))) == [0, 1, 4, 9, 16]
        for empty in (pool.map(square, []), pool.map_async(square, []).get(timeout=10)):
            assert empty == []
        assert list(pool.imap(square, [])) == []
        assert list(pool.imap_unordered(square, iter([]))) == []
        pool.close()
        pool.join()


def test_pool_task_errors_reach_the_caller(any_pool: Factory) -> None:
    errors: list[BaseException] = []
    with any_pool(2) as pool:
        result = pool.apply_async(fail_on_three, (3,), error_callback=errors.append)
        with pytest.raises(ValueError, match="three"):
            result.get(timeout=10)
        assert not result.successful()
        assert [type(e) for e in errors] == [ValueError]
        with pytest.raises(ValueError, match="three"):
            pool.map(fail_on_three, range(6))
        results = pool.imap(fail_on_three, range(5))
        assert [next(results) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(ValueError, match="three"):
            next(results)
        assert list(results) == [4], "imap goes on after a task's error, as the stdlib"
        assert pool.map(square, [2]) == [4], "the pool is still usable"


@pytest.mark.parametrize("processes", [0, -1])
def test_pool_needs_at_least_one_worker(any_pool: Factory, processes: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        any_pool(processes)


@pytest.mark.parametrize("value", [0, -1, 0.5, "12"])
def test_pool_maxtasksperchild_must_be_a_positive_int(value: Any) -> None:
    for factory in (workhorse.Pool, STDLIB["mp.Pool"]):
        with pytest.raises(ValueError, match="maxtasksperchild"):
            factory(1, maxtasksperchild=value)


def test_pool_use_after_close_or_terminate_raises_not_running(any_pool: Factory) -> None:
    pool = any_pool(1)
    pool.close()
    calls: list[Callable[[], object]] = [
        lambda: pool.apply_async(square, (1,)),
        lambda: pool.map(square, [1]),
        lambda: pool.imap(square, [1]),
        lambda: pool.imap_unordered(square, [1]),
        lambda: pool.starmap_async(pow, [(1, 1)]),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="Pool not running"):
            call()
    pool.join()
    terminated = any_pool(1)
    terminated.terminate()
    with pytest.raises(ValueError, match="Pool not running"), terminated:
        pass
    terminated.join()


def test_pool_join_while_running_raises(any_pool: Factory) -> None:
    pool = any_pool(1)
    with pytest.raises(ValueError, match="still running"):
        pool.join()
    pool.terminate()
    pool.join()


def test_async_result_timeouts_and_not_ready(make_pool: Factory) -> None:
    event = workhorse.Event() if make_pool is workhorse.Pool else workhorse.threads.Event()
    with make_pool(1) as pool:
        result = pool.apply_async(wait_for, (event, -5))
        with pytest.raises(ValueError, match="not ready"):
            result.successful()
        with pytest.raises(multiprocessing.TimeoutError):
            result.get(timeout=0.05)
        result.wait(0.01)
        assert not result.ready()
        results = pool.imap(functools.partial(wait_for, event), [-1], chunksize=1)
        with pytest.raises(multiprocessing.TimeoutError):
            results.next(timeout=0.05)
        event.set()
        assert result.get(timeout=10) == 5
        assert results.next(timeout=10) == 1, "imap is still usable after a timeout"


@pytest.mark.parametrize("bad", [0, 3, 7])
def test_pool_iterable_raising_midway_reaches_the_caller_at_its_position(
    any_pool: Factory, bad: int
) -> None:
    """Fault matrix A23."""
    with any_pool(2) as pool:
        with pytest.raises(KeyError):
            pool.map(square, raising_after(10, bad))
        results = pool.imap(square, raising_after(10, bad), 1)
        assert [next(results) for _ in range(bad)] == [i * i for i in range(bad)]
        with pytest.raises(KeyError):
            next(results)
        seen = []
        with pytest.raises(KeyError):  # noqa: PT012 - the error comes at an unknown point
            for value in pool.imap_unordered(square, raising_after(10, bad), 2):
                seen.append(value)
        assert set(seen) <= {i * i for i in range(bad)}
        assert pool.map(square, [3]) == [9], "the pool is reusable"


def test_imap_pulls_an_infinite_input_lazily(make_pool: Factory) -> None:
    source = Counted()
    with make_pool(2) as pool:
        for method in (pool.imap, pool.imap_unordered):
            results = method(square, source)
            assert len([next(results) for _ in range(50)]) == 50
            results.close()
            # pulled = taken + in flight; the window grows while items are fast (2 workers)
            assert source.pulled - 50 <= 2 * MAX_MAP_WINDOW_PER_WORKER, (
                "a bounded number of calls in flight"
            )
            source.pulled = 0


def test_imap_streams_results_before_a_slow_last_item(make_pool: Factory) -> None:
    event = workhorse.Event() if make_pool is workhorse.Pool else workhorse.threads.Event()
    with make_pool(2) as pool:
        for method in (pool.imap, pool.imap_unordered):
            results = method(functools.partial(wait_for, event), [1, 2, -3])
            first = results.next(timeout=10)
            assert first in (1, 2)
            assert not event.is_set(), "the first result came while the last item waits"
            event.set()
            assert sorted([first, *results]) == [1, 2, 3]
            event.clear()


def test_close_submits_the_rest_of_an_open_imap(make_pool: Factory) -> None:
    pool = make_pool(2)
    results = pool.imap(square, range(5000))
    pool.close()
    pool.join()
    assert list(results) == [x * x for x in range(5000)]


def set_state(value: str) -> None:
    global STATE
    STATE = value


STATE = "unset"


def read_state(_: object = None) -> str:
    return STATE


def test_pool_initializer_state_is_visible_to_tasks(make_pool: Factory) -> None:
    """Fault matrix F1."""
    if make_pool is workhorse.ThreadPool:
        pytest.skip("threads share the module: covered by the process pool")
    with make_pool(2, initializer=set_state, initargs=("ready",)) as pool:
        assert set(pool.map(read_state, range(20))) == {"ready"}


def test_pool_maxtasksperchild_replaces_workers() -> None:
    """Fault matrix E3."""
    with workhorse.Pool(1, maxtasksperchild=2, chunksize=1) as pool:
        pids = [pool.apply(pid) for _ in range(6)]
    assert len(set(pids)) == 3
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]


def test_thread_pool_max_tasks_per_worker_replaces_threads() -> None:
    with workhorse.ThreadPool(1, max_tasks_per_worker=2) as pool:
        names = [pool.apply(lambda: threading.current_thread().name) for _ in range(4)]
    assert names[0] == names[1] != names[2] == names[3]


def test_pool_with_options_is_a_view_with_the_pool_api(make_pool: Factory) -> None:
    event = workhorse.Event() if make_pool is workhorse.Pool else workhorse.threads.Event()
    with make_pool(2) as pool:
        quick = pool.with_options(timeout=0.2)
        assert isinstance(quick, PoolView)
        assert quick.map(square, [1, 2]) == [1, 4]
        assert quick.with_options(retries=1).apply(square, (3,)) == 9
        with pytest.raises(workhorse.TaskTimeout):
            quick.apply(wait_for, (event, -1))
        assert pool.apply(square, (5,)) == 25, "the pool's own options are unchanged"
        assert list(quick.imap(square, [2])) == [4]
        assert not hasattr(quick, "close"), "the view has no lifecycle"
    with pytest.raises(ValueError, match="Pool not running"):
        quick.map(square, [1])


def test_pool_retries_through_a_view() -> None:
    attempts: list[int] = []

    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return x

    with workhorse.ThreadPool(1) as pool:
        with pytest.raises(ConnectionError):
            pool.apply(flaky, (1,))
        assert pool.with_options(retries=2, retry_on=ConnectionError).apply(flaky, (7,)) == 7


def test_pool_terminate_fails_pending_results_instead_of_hanging(make_pool: Factory) -> None:
    event = threading.Event()
    pool = make_pool(1)
    if make_pool is workhorse.Pool:
        running = pool.apply_async(time.sleep, (10,))  # killed by terminate()
    else:
        running = pool.apply_async(wait_for, (event, -1))
    queued = pool.apply_async(square, (2,))
    pool.terminate()
    event.set()
    for result in (running, queued):
        with pytest.raises(CancelledError):
            result.get(timeout=10)
    pool.join()


def test_pool_join_timeout_raises_while_busy() -> None:
    event = workhorse.threads.Event()
    pool = workhorse.ThreadPool(1)
    pool.apply_async(wait_for, (event, -1))
    pool.close()
    with pytest.raises(multiprocessing.TimeoutError):
        pool.join(timeout=0.05)
    event.set()
    pool.join(timeout=10)


def test_pool_exit_on_keyboard_interrupt_terminates() -> None:
    with pytest.raises(KeyboardInterrupt), workhorse.Pool(1) as pool:  # noqa: PT012
        result = pool.apply_async(time.sleep, (10,))
        raise KeyboardInterrupt
    with pytest.raises(CancelledError):
        result.get(timeout=10)


def test_unclosed_running_pool_warns_when_collected(any_pool: Factory) -> None:
    pool = any_pool(1)
    with pytest.warns(ResourceWarning, match="unclosed running"):  # noqa: PT031
        del pool  # CPython collects it here
        gc.collect()


def test_pool_progress_bar_renders_to_a_stream(
    make_pool: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for tqdm_installed in (True, False):
        if not tqdm_installed:
            monkeypatch.setitem(__import__("sys").modules, "tqdm", None)
        out = io.StringIO()
        with make_pool(2, progress=out) as pool:
            assert pool.map(square, range(20)) == [x * x for x in range(20)]
            assert list(pool.imap(square, range(7))) == [x * x for x in range(7)]
        text = out.getvalue()
        assert "20/20" in text
        assert "7/7" in text
        assert text.endswith("\n")


def test_pool_progress_is_off_by_default_and_off_when_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with workhorse.ThreadPool(1) as pool, workhorse.ThreadPool(1, progress=True) as shown:
        pool.map(square, range(3))
        shown.map(square, range(3))  # stderr is captured: not a terminal
        pool.with_options(progress="always").map(square, range(3))
    assert "3/3" in capsys.readouterr().err
    with workhorse.ThreadPool(1) as pool:
        pool.map(square, range(3))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "make",
    [
        lambda: workhorse.processes.Pool(1),
        lambda: workhorse.threads.Pool(1),
        lambda: workhorse.with_start_method("spawn").Pool(1),
        lambda: workhorse.threads.ThreadPool(1),
        lambda: workhorse.ThreadPool(1),
    ],
)
def test_pool_is_exposed_on_every_context(make: Callable[[], Any]) -> None:
    with make() as pool:
        assert pool.map(square, [1, 2, 3]) == [1, 4, 9]


def test_pool_ordering_properties() -> None:
    with workhorse.Pool(2) as procs, workhorse.ThreadPool(2) as threads:

        @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            items=st.lists(st.integers(-1000, 1000), max_size=60),
            chunksize=st.integers(1, 9),
            use_threads=st.booleans(),
        )
        def check(items: list[int], chunksize: int, use_threads: bool) -> None:
            pool = threads if use_threads else procs
            expected = [x * x for x in items]
            assert pool.map(square, items, chunksize) == expected
            assert list(pool.imap(square, items, chunksize)) == expected
            assert sorted(pool.imap_unordered(square, items, chunksize)) == sorted(expected)
            pairs = [(x, 2) for x in items]
            assert pool.starmap(pow, pairs, chunksize) == expected

        check()


def test_pool_bounded_time_for_many_tiny_tasks() -> None:
    started = time.monotonic()
    with workhorse.Pool(2) as pool:
        assert sum(pool.imap_unordered(square, range(20_000))) == sum(x * x for x in range(20_000))
    assert time.monotonic() - started < 20
