"""The async methods under trio (and anyio on its trio backend): ``run`` without a thread per
wait, a trio cancellation stops the pool task, ``amap`` and ``async with``."""

from __future__ import annotations

import time
from typing import Any

import pytest

import workhorse
from test_aio import BOUND, _wait_for, block, fails_on_zero

trio = pytest.importorskip("trio")
anyio = pytest.importorskip("anyio")


@pytest.mark.parametrize("backend", ["processes", "threads", "serial"])
def test_run_amap_and_async_with_under_trio(backend: str) -> None:
    async def main() -> list[int]:
        async with workhorse.ProcessPoolExecutor(2, backend=backend) as pool:
            assert await pool.run(pow, 2, 10) == 1024
            with pytest.raises(ZeroDivisionError):
                await pool.run(fails_on_zero, 0)
            results: list[int] = []
            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(_append, results, pool, i)
            assert sorted(results) == list(range(10))
            return [x async for x in pool.amap(abs, range(-5, 0))]

    assert trio.run(main) == [5, 4, 3, 2, 1]


async def _append(results: list[int], pool: Any, i: int) -> None:
    results.append(await pool.run(abs, -i))


@pytest.mark.parametrize("backend", ["processes", "threads"])
def test_a_trio_cancellation_stops_the_running_task(backend: str) -> None:
    event = workhorse.Event()

    async def main() -> workhorse.PoolStats:
        async with workhorse.Pool(1, backend=backend) as pool:
            start = time.monotonic()
            with trio.move_on_after(0.2) as scope:
                await pool.run(block, event)
            assert scope.cancelled_caught
            assert time.monotonic() - start < BOUND / 2
            _wait_for(lambda: pool.stats().worker_exits.get("cancelled", 0) == 1)
            assert await pool.run(abs, -5) == 5  # a fresh worker took its place
            return pool.stats()

    stats = trio.run(main)
    assert stats.cancelled == 1
    assert not event.is_set()


def test_anyio_on_trio_and_on_asyncio() -> None:
    async def main() -> int:
        async with workhorse.ThreadPoolExecutor(2) as pool:
            async with anyio.create_task_group() as group:
                group.start_soon(pool.run, abs, -1)
            return int(await pool.run(abs, -7))

    assert anyio.run(main, backend="trio") == 7
    assert anyio.run(main, backend="asyncio") == 7


def test_outside_an_event_loop_nothing_is_submitted() -> None:
    with workhorse.ThreadPoolExecutor(1) as pool:
        coroutine = pool.run(abs, -1)
        with pytest.raises(RuntimeError, match="asyncio or trio"):
            coroutine.send(None)
        assert pool.stats().submitted == 0
