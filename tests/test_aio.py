"""asyncio on every pool: ``await pool.run``, ``async for ... in pool.amap``, ``async with``;
cancelling the awaiting task (``asyncio.timeout``, a ``TaskGroup``) stops the pool task.
The Dask backend's are in tests/dask."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

import workhorse

BOUND = 30
BACKENDS = ["processes", "threads", "serial"]


def fails_on_zero(x: int) -> float:
    return 1 / x


def block(event: Any) -> bool:
    """Wait (for far longer than any test) on a workhorse event: a thread pool's task is
    asked to stop at such a call."""
    return bool(event.wait(BOUND))


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def pid(_: object = None) -> int:
    return os.getpid()


def _wait_for(predicate: Any) -> None:
    deadline = time.monotonic() + BOUND
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.01)  # slack: the pool reports in its own thread


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_awaits_the_result_or_the_error(backend: str) -> None:
    async def main() -> None:
        async with workhorse.ProcessPoolExecutor(2, backend=backend) as pool:
            assert await pool.run(pow, 2, 10) == 1024
            assert await pool.run(int, "ff", base=16) == 255
            with pytest.raises(ZeroDivisionError):
                await pool.run(fails_on_zero, 0)
            results = await asyncio.gather(*(pool.run(abs, -i) for i in range(20)))
            assert results == list(range(20))

    asyncio.run(main())


@pytest.mark.parametrize("backend", ["processes", "threads"])
def test_a_timeout_in_the_caller_stops_the_running_task(backend: str) -> None:
    event = workhorse.Event()

    async def main() -> workhorse.PoolStats:
        async with workhorse.Pool(1, backend=backend) as pool:
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await pool.run(block, event)
            assert time.monotonic() - start < BOUND / 2
            _wait_for(lambda: pool.stats().worker_exits.get("cancelled", 0) == 1)
            assert await pool.run(abs, -5) == 5  # a fresh worker took its place
            return pool.stats()

    stats = asyncio.run(main())
    assert stats.cancelled == 1
    assert not event.is_set()


def test_a_failed_sibling_in_a_task_group_stops_the_pool_task() -> None:
    event = workhorse.Event()

    async def fail_soon() -> None:
        await asyncio.sleep(0.05)
        raise KeyError("sibling")

    async def both(pool: workhorse.ProcessPoolExecutor) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(pool.run(block, event))
            group.create_task(fail_soon())

    async def main() -> None:
        async with workhorse.ProcessPoolExecutor(1) as pool:
            with pytest.raises(ExceptionGroup) as caught:
                await both(pool)
            assert caught.group_contains(KeyError)
            _wait_for(lambda: pool.stats().worker_exits.get("cancelled", 0) == 1)

    asyncio.run(main())


@pytest.mark.parametrize("backend", BACKENDS)
def test_amap_streams_results_in_order_or_as_they_complete(backend: str) -> None:
    async def main() -> None:
        async with workhorse.Pool(2, backend=backend) as pool:
            assert [x async for x in pool.amap(abs, range(-3000, 0))] == list(range(3000, 0, -1))
            assert [x async for x in pool.amap(pow, [2, 3], [3, 2])] == [8, 9]
            unordered = [x async for x in pool.amap(abs, range(-100, 0), ordered=False)]
            assert sorted(unordered) == list(range(1, 101))
            assert [x async for x in pool.amap(abs, [])] == []

    asyncio.run(main())


@pytest.mark.parametrize("backend", BACKENDS)
def test_amap_raises_the_first_error_after_the_results_before_it(backend: str) -> None:
    seen: list[float] = []

    async def collect(pool: workhorse.ThreadPoolExecutor) -> None:
        async for value in pool.amap(fails_on_zero, [1, 2, 0, 4]):
            seen.append(value)

    async def main() -> list[float]:
        async with workhorse.ThreadPoolExecutor(2, backend=backend) as pool:
            with pytest.raises(ZeroDivisionError):
                await collect(pool)
        return seen

    assert asyncio.run(main()) == [1.0, 0.5]


@pytest.mark.parametrize("backend", ["processes", "threads"])
def test_stopping_an_amap_early_cancels_what_has_not_started(backend: str) -> None:
    async def main() -> workhorse.PoolStats:
        async with workhorse.ProcessPoolExecutor(2, backend=backend) as pool:
            results = pool.amap(nap, [0.01] * 500)
            assert await anext(results) == 0.01
            await results.aclose()
            with pytest.raises(StopAsyncIteration):
                await anext(results)
            _wait_for(lambda: pool.stats().pending == 0)
            return pool.stats()

    stats = asyncio.run(main())
    assert stats.cancelled > 0
    assert stats.done + stats.cancelled == 500


def test_async_with_leaves_the_pool_as_with_does() -> None:
    async def main() -> tuple[Any, Any]:
        async with workhorse.Pool(1) as pool:
            await pool.run(abs, 1)
        async with workhorse.ProcessPoolExecutor(1) as executor:
            await executor.run(abs, 1)
        return pool, executor

    pool, executor = asyncio.run(main())
    with pytest.raises(ValueError, match="Pool not running"):
        pool.apply(abs, (1,))  # terminated, as `with Pool()` does
    with pytest.raises(RuntimeError, match="shutdown"):
        executor.submit(abs, 1)


def test_bad_arguments_are_refused_at_once() -> None:
    async def main() -> None:
        with workhorse.ThreadPoolExecutor(1) as pool:
            with pytest.raises(TypeError, match="fn must be callable, not int"):
                await pool.run(3)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="fn must be callable"):
                pool.amap(3, [1])  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="at least one iterable"):
                pool.amap(abs)

    asyncio.run(main())


def test_a_view_runs_with_its_options() -> None:
    async def main() -> None:
        async with workhorse.ProcessPoolExecutor(1) as pool:
            quick = pool.with_options(timeout=0.2)
            with pytest.raises(workhorse.TaskTimeout):
                await quick.run(time.sleep, BOUND)
            assert await quick.run(pid) != os.getpid()

    asyncio.run(main())
