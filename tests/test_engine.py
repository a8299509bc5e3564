"""Engine internals that the public API cannot show: batching, the function cache."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import workhorse
from workhorse._backends.process._core import FUNCTION_CACHE, ProcessEngine
from workhorse._scheduler._batching import MAX_ITEMS, Batcher


def test_batcher_starts_with_one_and_grows_for_fast_items() -> None:
    batcher = Batcher()
    assert batcher.size(pending=10_000, workers=2) == 1
    sizes = []
    for _ in range(8):
        size = batcher.size(pending=10_000, workers=2)
        sizes.append(size)
        batcher.observe(size, size * 1e-6)  # 1 microsecond per item
    assert sizes == sorted(sizes)
    assert sizes[-1] > 100


def test_batcher_keeps_long_items_alone() -> None:
    batcher = Batcher()
    for _ in range(5):
        batcher.observe(1, 0.5)
    assert batcher.size(pending=1000, workers=2) == 1


@given(
    pending=st.integers(0, 100_000),
    workers=st.integers(1, 64),
    seconds=st.floats(1e-9, 10.0),
)
def test_batcher_sizes_stay_within_bounds(pending: int, workers: int, seconds: float) -> None:
    batcher = Batcher()
    batcher.observe(10, seconds)
    size = batcher.size(pending, workers)
    if pending == 0:
        assert size == 0
    else:
        assert 1 <= size <= min(MAX_ITEMS, max(1, pending // workers))


def test_a_floor_keeps_tail_batches_from_shrinking_to_single_items() -> None:
    # 20 ms items, 6 pending over 4 batch slots: the fair share alone would send 1 item
    plain, floored = Batcher(target=0.4, spread=1), Batcher(target=0.4, floor=0.05, spread=1)
    for batcher in (plain, floored):
        batcher.observe(10, 0.2)
    assert plain.size(pending=6, workers=4) == 1
    assert floored.size(pending=6, workers=4) == 3  # ceil(50 ms / 20 ms)
    assert floored.size(pending=2, workers=4) == 2  # never more than is pending
    assert floored.size(pending=400, workers=4) == 20  # the target still rules: 400 ms


def test_the_process_floor_lifts_only_items_shorter_than_a_round_trip() -> None:
    # the process engine's: a 2 ms floor for items under 0.1 ms
    batcher = Batcher(floor=0.002, floor_items=128, floor_under=0.0001)
    batcher.observe(10, 0.01, fn=len)  # 1 ms items: the last ones of a map may be long
    assert batcher.size(pending=4, workers=2, fn=len) == 1
    batcher.observe(1000, 0.01, fn=abs)  # 10 us items: a batch of one costs more than it does
    assert batcher.size(pending=4, workers=2, fn=abs) == 4


def test_a_function_not_measured_yet_starts_from_one_item() -> None:
    # measured on no-ops (1 us each): the floor (50 ms of them) or the target would put the
    # whole of a new function's slow items in one batch
    batcher = Batcher(target=0.4, floor=0.05, spread=1)  # the Dask engine's
    batcher.observe(1000, 0.001, fn=abs)
    for _ in range(8):  # the size grows (8x a step) up to the target
        batcher.size(pending=100_000, workers=4, fn=abs)
    assert batcher.size(pending=64, workers=4, fn=abs) == 64
    assert batcher.size(pending=64, workers=4, fn=len) == 1


def test_each_function_keeps_its_own_estimate() -> None:
    # a pool that maps a fast function and then a slow one, or both at once
    batcher = Batcher()
    batcher.observe(1000, 0.001, fn=abs)  # 1 us per item
    batcher.observe(1, 0.1, fn=len)  # 100 ms per item
    sizes = [batcher.size(pending=100_000, workers=2, fn=abs) for _ in range(5)]
    assert sizes == [8, 64, 512, 4096, 10_000]  # growth from the first, up to 10 ms
    assert batcher.size(pending=100_000, workers=2, fn=len) == 1
    assert batcher.size(pending=100_000, workers=2, fn=abs) == 10_000


@given(
    pending=st.integers(1, 100_000),
    workers=st.integers(1, 64),
    seconds=st.floats(1e-9, 10.0),
    floor=st.floats(0.0, 1.0),
)
def test_a_floored_batch_stays_within_the_target_and_what_is_pending(
    pending: int, workers: int, seconds: float, floor: float
) -> None:
    batcher = Batcher(target=0.4, floor=floor, spread=1)
    batcher.observe(10, seconds)
    size = batcher.size(pending, workers)
    assert 1 <= size <= pending
    assert size <= max(1, int(0.4 / max(seconds / 10, 1e-7)), pending // workers)


def test_the_tail_is_cut_finer_than_a_fair_share_so_long_last_items_spread() -> None:
    # measured on 2 ms items, 8 pending on 2 workers: the last 4 may be 100x longer, so the
    # tail goes one item per batch (a fair share of 4 put three long ones on one worker)
    batcher = Batcher()
    batcher.observe(10, 0.02)
    assert batcher.size(pending=8, workers=2) == 1
    assert batcher.size(pending=40, workers=2) == 5  # the 10 ms target rules again
    assert Batcher(spread=1).size(pending=8, workers=2) == 1  # before any measurement
    wide = Batcher(spread=1)
    wide.observe(10, 0.02)
    assert wide.size(pending=8, workers=2) == 4


def test_fixed_chunksize_is_respected() -> None:
    assert Batcher(fixed=8).size(pending=100, workers=2) == 8
    assert Batcher(fixed=8).size(pending=3, workers=2) == 3


def _engine(pool: Any) -> ProcessEngine:
    engine: ProcessEngine = pool._front.backend
    return engine


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_a_function_is_sent_to_each_worker_once(start_method: str) -> None:
    ctx = workhorse.with_start_method(start_method)
    with ctx.ProcessPoolExecutor(2) as pool:
        assert list(pool.map(abs, range(-50, 0))) == list(range(50, 0, -1))
        engine = _engine(pool)
        sent = [w.fns for w in engine._slots if w is not None]
        assert all(len(fns) <= 1 for fns in sent)
        assert len(engine._functions) == 1


def test_function_cache_is_bounded() -> None:
    with workhorse.with_start_method("fork").ProcessPoolExecutor(1) as pool:
        futures = [pool.submit(eval(f"lambda: {n}")) for n in range(FUNCTION_CACHE + 40)]
        assert [f.result() for f in futures] == list(range(FUNCTION_CACHE + 40))
        engine = _engine(pool)
        assert len(engine._functions) <= FUNCTION_CACHE
        assert all(len(w.fns) <= FUNCTION_CACHE for w in engine._slots if w is not None)


def _plus_one(x: int) -> int:
    return x + 1


def _nested_pool(n: int) -> list[int]:
    with workhorse.Pool(1) as pool:
        results: list[int] = pool.map(_plus_one, range(n))
    return results


def _process_in_task() -> int:
    process = workhorse.Process(target=_plus_one, args=(41,))
    process.start()
    result: int = process.result(30)
    return result


def test_tasks_may_start_processes_and_nested_pools() -> None:
    with workhorse.ProcessPoolExecutor(2) as pool:
        assert pool.submit(_nested_pool, 3).result(60) == [1, 2, 3]
        assert pool.submit(_process_in_task).result(60) == 42
