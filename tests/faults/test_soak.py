"""Soak: thousands of tasks while a chaos thread SIGKILLs random busy workers. Every task
ends with its result or an explicit ``WorkerCrashed``; the counts add up exactly; the
parent's memory stays flat. Also: ``imap``/``map`` over an infinite generator stream with a
bounded number of tasks in flight.

``WORKHORSE_SOAK_TASKS`` sizes the long (``slow``) version; the default run is short."""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

import workhorse
from workhorse._backends.process._core import ProcessEngine
from workhorse._lazy_map import MAX_MAP_WINDOW_PER_WORKER

from ._helpers import BOUND, FORK, no_fd_leak  # noqa: F401  (autouse)


def _square_with_pid(x: int) -> tuple[int, int]:
    if x % 97 == 0:
        time.sleep(0.002)  # a few slower items, so kills land mid-task as well as mid-batch
    return x * x, os.getpid()


def _soak(tasks: int, retries: int) -> dict[str, Any]:
    rss = psutil.Process().memory_info
    busy: set[int] = set()
    stop = threading.Event()
    kills = 0
    with workhorse.ProcessPoolExecutor(2, mp_context=FORK, retries=retries) as pool:
        engine = pool._front.backend
        assert isinstance(engine, ProcessEngine)

        def chaos() -> None:
            nonlocal kills
            rng = random.Random(1234)
            while not stop.wait(rng.uniform(0.01, 0.05)):
                # only workers that have run tasks: killing every worker as it starts is a
                # different fault (the pool then reports PoolBroken, by design)
                targets = sorted(busy & set(engine.worker_pids()))
                if targets:
                    try:
                        os.kill(rng.choice(targets), signal.SIGKILL)
                        kills += 1
                    except ProcessLookupError:
                        pass

        def note(future: concurrent.futures.Future[tuple[int, int]]) -> None:
            if not future.cancelled() and future.exception() is None:
                busy.add(future.result()[1])

        thread = threading.Thread(target=chaos, name="soak-chaos")
        thread.start()
        began = time.monotonic()
        ok = crashed = 0
        rss_start = rss_end = 0
        try:
            step = 1000
            for start in range(0, tasks, step):
                futures = [pool.submit(_square_with_pid, x) for x in range(start, start + step)]
                for future in futures:
                    future.add_done_callback(note)
                _, not_done = concurrent.futures.wait(futures, timeout=60)
                assert not not_done, f"{len(not_done)} tasks never finished"
                for x, future in zip(range(start, start + step), futures, strict=True):
                    error = future.exception()
                    if error is None:
                        assert future.result()[0] == x * x
                        ok += 1
                    else:
                        assert isinstance(error, workhorse.WorkerCrashed), repr(error)
                        crashed += 1
                if start == step:
                    rss_start = rss().rss  # after warm-up
            rss_end = rss().rss
        finally:
            stop.set()
            thread.join()
    assert ok + crashed == tasks
    return {
        "tasks": tasks,
        "ok": ok,
        "crashed": crashed,
        "kills": kills,
        "seconds": round(time.monotonic() - began, 1),
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
    }


def test_soak_short_with_chaos_kills() -> None:
    figures = _soak(6000, retries=0)
    print(figures)
    assert figures["kills"] > 0
    assert figures["rss_end_mb"] - figures["rss_start_mb"] < 30


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_soak_long_with_chaos_kills_and_retries() -> None:
    tasks = int(os.environ.get("WORKHORSE_SOAK_TASKS", "200000"))
    figures = _soak(tasks, retries=3)
    print(figures)
    assert figures["kills"] > 0
    assert figures["rss_end_mb"] - figures["rss_start_mb"] < 50


def _naturals(seen: list[int]) -> Iterator[int]:
    for n in itertools.count():
        seen.append(n)
        yield n


def test_imap_over_an_infinite_generator_streams_with_bounded_in_flight() -> None:
    seen: list[int] = []
    pool = workhorse.Pool(2, context=FORK)
    try:  # terminate, not close: Pool.close() drains live imap inputs (see the report)
        results = pool.imap(abs, _naturals(seen))
        assert [next(results) for _ in range(5000)] == list(range(5000))
        pulled = len(seen)
        assert pulled <= 5000 + 2 * MAX_MAP_WINDOW_PER_WORKER  # bounded read-ahead
    finally:
        pool.terminate()


def test_imap_unordered_and_executor_map_over_infinite_generators() -> None:
    seen: list[int] = []
    pool = workhorse.ProcessPoolExecutor(2, mp_context=FORK)
    try:  # terminate: shutdown() with an unfinished infinite map hangs (see the report)
        results = pool.map(abs, _naturals(seen))
        first = list(itertools.islice(results, 3000))
        assert first == list(range(3000))
        assert len(seen) <= 3000 + 2 * MAX_MAP_WINDOW_PER_WORKER
    finally:
        pool.terminate()
    seen.clear()
    pool2 = workhorse.Pool(2, context=FORK)
    try:
        unordered = pool2.imap_unordered(abs, _naturals(seen))
        got = {next(unordered) for _ in range(3000)}
        assert len(got) == 3000
        assert len(seen) <= 3000 + 2 * MAX_MAP_WINDOW_PER_WORKER
    finally:
        pool2.terminate()


def test_imap_memory_stays_flat_over_many_items() -> None:
    rss = psutil.Process().memory_info
    pool = workhorse.Pool(2, context=FORK)
    try:
        results = pool.imap(abs, itertools.count())
        for _ in range(20000):
            next(results)
        before = rss().rss
        for _ in range(100000):
            next(results)
        grown = (rss().rss - before) / 2**20
    finally:
        pool.terminate()
    assert grown < 20, f"RSS grew by {grown:.1f} MB over 100000 streamed items"
