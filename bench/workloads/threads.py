"""Workload 8: thread pool overhead on tiny tasks.

A no-op over 100,000 items (quick: 20,000) through ``Executor.map`` and ``submit`` +
``result``, and through ``ThreadPool.map``/``imap``, on running pools at their defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

from ..harness import STDLIB, WORKHORSE, Contender, Job, Workload, checkpoint, scaled
from .pools import noop

WH_EXECUTOR, CF_EXECUTOR = "workhorse.ThreadPoolExecutor", "concurrent.futures.ThreadPoolExecutor"
WH_POOL, MP_POOL = "workhorse.ThreadPool", "multiprocessing.pool.ThreadPool"
CONTENDERS = (
    Contender(WH_EXECUTOR, WORKHORSE, ("workhorse",)),
    Contender(WH_POOL, WORKHORSE, ("workhorse",)),
    Contender(CF_EXECUTOR, STDLIB),
    Contender(MP_POOL, STDLIB),
)
EXECUTOR_MAP, SUBMIT, POOL_MAP, POOL_IMAP = (
    "Executor.map",
    "submit + result",
    "Pool.map",
    "Pool.imap",
)


def _open(contender: str) -> Any:
    if contender == WH_EXECUTOR:
        import workhorse

        return workhorse.ThreadPoolExecutor()
    if contender == WH_POOL:
        import workhorse

        return workhorse.ThreadPool()
    if contender == CF_EXECUTOR:
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor()
    from multiprocessing.pool import ThreadPool

    return ThreadPool()


def _calls(pool: Any) -> dict[str, Callable[[list[int]], list[Any]]]:
    if isinstance(pool, Executor):
        return {
            EXECUTOR_MAP: lambda items: list(pool.map(noop, items)),
            SUBMIT: lambda items: [f.result() for f in [pool.submit(noop, x) for x in items]],
        }
    return {
        POOL_MAP: lambda items: pool.map(noop, items),
        POOL_IMAP: lambda items: list(pool.imap(noop, items)),
    }


def run(contender: str, items: int) -> dict[str, float]:
    pool = _open(contender)
    figures: dict[str, float] = {}
    data = list(range(items))
    try:
        for case, call in _calls(pool).items():
            call(data[:100])  # start the threads
            start = time.perf_counter()
            results = call(data)
            figures[case] = items / (time.perf_counter() - start)
            if results != data:
                raise AssertionError(f"{case}: wrong results")
            checkpoint(figures)
    finally:
        if isinstance(pool, Executor):
            pool.shutdown(wait=True)
        else:
            pool.close()
            pool.join()
    return figures


def jobs(quick: bool) -> list[Job]:
    items = scaled(20_000 if quick else 100_000)
    return [
        Job(c.name, "", f"{__name__}:run", {"contender": c.name, "items": items})
        for c in CONTENDERS
    ]


def targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    lines = []
    for case, mine, theirs in (
        (EXECUTOR_MAP, WH_EXECUTOR, CF_EXECUTOR),
        (SUBMIT, WH_EXECUTOR, CF_EXECUTOR),
        (POOL_MAP, WH_POOL, MP_POOL),
        (POOL_IMAP, WH_POOL, MP_POOL),
    ):
        if (case, mine) not in best or (case, theirs) not in best:
            lines.append(f"{case}: no figure")
            continue
        ratio = best[(case, mine)][0] / best[(case, theirs)][0]
        verdict = "met" if ratio >= 1 else f"missed by {(1 - ratio) * 100:.0f}%"
        lines.append(f"{case}: {mine} {ratio:.3g}x {theirs} (>= 1x): {verdict}")
    return lines


WORKLOAD = Workload(
    key="threads",
    title="8. Thread pool overhead on tiny tasks",
    description=(
        "Throughput in tasks/s of a no-op over 100,000 items (quick: 20,000) on a running "
        "thread pool at its defaults (executors: min(32, cores + 4) threads; ThreadPool: "
        "cores)."
    ),
    unit="tasks/s",
    higher_is_better=True,
    contenders=CONTENDERS,
    jobs=jobs,
    reps=(2, 5),
    timeout=(60.0, 180.0),
    targets=targets,
)
