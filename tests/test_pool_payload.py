"""Large NumPy arguments and results go through shared memory, and none of it leaks.

The autouse leak guard (conftest) fails a test that leaves a ``/dev/shm`` entry behind, so
every test here also checks that the segments of crashed and finished tasks are gone.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

import workhorse

np = pytest.importorskip("numpy")

BOUND = 30
MB = 1 << 20


def identity(x: Any) -> Any:
    return x


def doubled(x: Any) -> Any:
    return x * 2


def die_holding(x: Any) -> None:
    os._exit(3)


def test_a_large_array_round_trips_through_a_process_pool(start_method: str) -> None:
    array = np.arange(4 * MB // 8, dtype=np.float64)
    ctx = workhorse.with_start_method(start_method)
    with ctx.ProcessPoolExecutor(2) as pool:
        back = pool.submit(identity, array).result(BOUND)
        twice = pool.submit(doubled, array).result(BOUND)
    assert np.array_equal(back, array)
    assert np.array_equal(twice, array * 2)
    back[0] = -1.0  # a writable array comes back writable, and is the caller's own
    assert array[0] == 0.0


def test_map_over_large_arrays_keeps_order_and_values() -> None:
    arrays = [np.full(MB // 8 + i, i, dtype=np.float64) for i in range(6)]
    with workhorse.Pool(2) as pool:
        sums = pool.map(np.sum, arrays)
        backs = pool.map(identity, arrays)
    assert sums == [float(a.sum()) for a in arrays]
    assert all(np.array_equal(a, b) for a, b in zip(arrays, backs, strict=True))


def test_a_worker_dying_with_a_large_argument_leaks_no_shared_memory() -> None:
    array = np.ones(8 * MB // 8)
    with workhorse.ProcessPoolExecutor(1) as pool:
        with pytest.raises(workhorse.WorkerCrashed, match="exited with code 3"):
            pool.submit(die_holding, array).result(BOUND)
        assert pool.submit(identity, array).result(BOUND).sum() == array.sum()


def test_a_cancelled_queued_task_with_a_large_argument_leaks_nothing() -> None:
    array = np.ones(4 * MB // 8)
    gate = workhorse.Event()
    with workhorse.ProcessPoolExecutor(1) as pool:
        blocker = pool.submit(gate.wait, BOUND)
        queued = [pool.submit(identity, array) for _ in range(3)]
        assert queued[1].cancel()
        gate.set()
        assert blocker.result(BOUND) is True
        assert queued[0].result(BOUND).shape == array.shape
        assert queued[2].result(BOUND).shape == array.shape
