"""Workload 6: pool start-up to first result, and shutdown, per start method.

In a fresh process, per start method: the first pool (*cold*: forkserver pays for its
server; the library and its pool module are imported before timing) from construction to the
result of one no-op task; a second pool the same way (*warm*); then the graceful shutdown of
that second pool (close and join / ``shutdown(wait=True)``).

Issue 11 adds, per start method and in a fresh process, ``Pool.map`` of a no-op over 100,000
items *including pool start and shutdown*: from the constructor of the process's first pool
(cold) to the end of ``close()`` and ``join()``, workhorse.Pool against multiprocessing.Pool.
"""

from __future__ import annotations

import importlib
import multiprocessing
import time
from collections.abc import Mapping

from ..harness import Job, Workload, checkpoint, scaled
from ..report import fmt_figure
from .pools import ADAPTERS, MAP, PROCESS_POOLS, noop

METHODS = ("fork", "forkserver", "spawn")
#: loky and joblib choose their own start method (loky's, spawn-like).
OWN_METHOD = {"loky": "loky", "joblib": "loky"}
COLD, WARM, SHUTDOWN = "first result (cold)", "first result (warm)", "shutdown"
WORKERS = 2
#: Issue 11: a whole pool's life on tiny tasks, workhorse.Pool against multiprocessing.Pool.
ITEMS = 100_000
LIFECYCLE = "map of 100k no-ops, start to shutdown"
LIFECYCLE_POOLS = ("workhorse.Pool", "multiprocessing.Pool")


# The module each pool lives in, imported before timing: "cold" is about processes, not about
# importing Python code (workhorse's top level is lazy, and so is ``multiprocessing.Pool``).
POOL_MODULES = {
    "workhorse.Pool": "workhorse.processes",
    "workhorse.ProcessPoolExecutor": "workhorse.processes",
    "multiprocessing.Pool": "multiprocessing.pool",
    "concurrent.futures.ProcessPoolExecutor": "concurrent.futures.process",
}


def run(contender: str, method: str) -> dict[str, float]:
    if contender in POOL_MODULES:
        importlib.import_module(POOL_MODULES[contender])
    adapter = ADAPTERS[contender]
    start_method = None if contender in OWN_METHOD else method
    figures: dict[str, float] = {}
    for case in (COLD, WARM):
        start = time.perf_counter()
        pool = adapter(WORKERS, None, start_method)
        pool.call(noop, 1)
        figures[f"{method}: {case}"] = time.perf_counter() - start
        if case == COLD and contender not in OWN_METHOD:
            pool.close()  # loky/joblib reuse their executor: keep it for the warm case
        checkpoint(figures)
    start = time.perf_counter()
    pool.close()
    figures[f"{method}: {SHUTDOWN}"] = time.perf_counter() - start
    return figures


def lifecycle(contender: str, method: str, items: int) -> dict[str, float]:
    """Seconds from the constructor of this process's first pool, through ``map`` of a
    no-op over ``items`` integers at its defaults, to the end of ``close()`` and ``join()``."""
    importlib.import_module(POOL_MODULES[contender])
    data = list(range(items))
    start = time.perf_counter()
    pool = ADAPTERS[contender](WORKERS, None, method)
    results = pool.run(MAP, noop, data)
    pool.close()
    elapsed = time.perf_counter() - start
    if results != data:
        raise AssertionError(f"{len(results)} results for {items} items")
    return {f"{method}: {LIFECYCLE}": elapsed}


def jobs(quick: bool) -> list[Job]:
    out = []
    for contender in PROCESS_POOLS:
        methods = (OWN_METHOD[contender.name],) if contender.name in OWN_METHOD else METHODS
        for method in methods:
            params = {"contender": contender.name, "method": method}
            out.append(Job(contender.name, method, f"{__name__}:run", params))
    for name in LIFECYCLE_POOLS:
        for method in METHODS:
            whole = {"contender": name, "method": method, "items": scaled(ITEMS)}
            out.append(Job(name, f"{method}, 100k map", f"{__name__}:lifecycle", whole))
    return out


def targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    lines = []
    for method in METHODS:
        for case in (COLD, WARM):
            key = f"{method}: {case}"
            stdlib = best.get((key, "concurrent.futures.ProcessPoolExecutor"))
            for name in ("workhorse.Pool", "workhorse.ProcessPoolExecutor"):
                mine = best.get((key, name))
                if stdlib is None or mine is None:
                    lines.append(f"{key}, {name}: no figure")
                    continue
                ratio = mine[0] / stdlib[0]
                verdict = "met" if ratio <= 1 else f"missed: {ratio:.2f}x the stdlib's time"
                lines.append(
                    f"{key}: {name} {mine[0] * 1e3:.0f} ms vs ProcessPoolExecutor "
                    f"{stdlib[0] * 1e3:.0f} ms: {verdict}"
                )
    return lines + issue_11_targets(best)


def issue_11_targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    """Issue 11: including pool start and shutdown, 100k no-ops through ``Pool.map``:
    workhorse no slower than ``multiprocessing.Pool`` under the same start method."""
    lines = []
    for method in METHODS:
        key = f"{method}: {LIFECYCLE}"
        # workhorse follows multiprocessing's default (fork on Linux before Python 3.14)
        default = " (the default)" if method == multiprocessing.get_start_method() else ""
        head = (
            f"issue 11: {key}{default}: workhorse.Pool no slower than multiprocessing.Pool, "
            "same start method"
        )
        mine, stdlib = best.get((key, "workhorse.Pool")), best.get((key, "multiprocessing.Pool"))
        if mine is None or stdlib is None:
            lines.append(f"{head}: no figure")
            continue
        ratio = stdlib[0] / mine[0]
        verdict = "met" if ratio >= 1 else f"missed ({mine[0] / stdlib[0]:.2f}x its time)"
        lines.append(
            f"{head}: {fmt_figure(mine[0], 's')} vs {fmt_figure(stdlib[0], 's')} = "
            f"{ratio:.2f}x its speed: {verdict}"
        )
    return lines


WORKLOAD = Workload(
    key="startup",
    title="6. Pool start-up to first result, and shutdown, per start method (2 workers)",
    description=(
        "Seconds from the pool's constructor to the result of one no-op task, for the first "
        "pool of a fresh process (cold) and a second one (warm), and for the graceful "
        "shutdown of the second. loky and joblib use their own start method (reusable "
        "executor: the warm case reuses it, so their shutdown is the executor's). "
        "*map of 100k no-ops, start to shutdown* (issue 11): in a fresh process, from the "
        "first pool's constructor through `map` of a no-op over 100,000 integers (defaults) "
        "to the end of `close()` + `join()`, workhorse.Pool and multiprocessing.Pool."
    ),
    unit="s",
    higher_is_better=False,
    contenders=PROCESS_POOLS,
    jobs=jobs,
    reps=(2, 5),
    timeout=(60.0, 120.0),
    targets=targets,
)
