"""Workload 2: CPU-bound -- 64 tasks of ~20 ms pure-Python compute on 1 and 2 workers.

The ideal on *n* workers is the serial time / *n*; the "x limit" column is the efficiency
against it (speedup = efficiency x workers).

Issue 11 adds 64 tasks of ~5 ms on 2 workers *including pool start*: from the pool's
constructor to the last result, in a fresh process, for its first pool (cold: a forkserver
starts its server) and a second one (warm); shutdown is not timed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..harness import Job, Workload, checkpoint, scaled
from ..report import fmt_figure
from .pools import ADAPTERS, PROCESS_POOLS, SERIAL, calibrate_spin, open_pool, pool_api, spin

TASKS = 64
TASK_SECONDS = 0.020
SERIAL_CASE = "64 tasks serially"
#: Issue 11: 5 ms tasks (also in quick mode), 2 workers, timed from the pool's constructor.
SHORT_SECONDS = 0.005
SHORT_SERIAL_CASE = "64 tasks of 5 ms serially"
COLD, WARM = (
    "2 workers, 5 ms tasks, incl. pool start (cold)",
    "2 workers, 5 ms tasks, incl. pool start (warm)",
)
STARTED_CASES = (COLD, WARM)


def serial(tasks: int, iterations: int, quick: bool, case: str = SERIAL_CASE) -> dict[str, float]:
    """The work done in this process, best of 3: the ideal is the optimistic bound."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(tasks):
            spin(iterations)
        best = min(best, time.perf_counter() - start)
    return {case: best}


def run(
    contender: str, tasks: int, iterations: int, workers: list[int], quick: bool
) -> dict[str, float]:
    """Seconds to map ``tasks`` spins on a running pool of each size in ``workers``."""
    figures: dict[str, float] = {}
    for count in workers:
        pool = open_pool(contender, count)
        start = time.perf_counter()
        figures[f"{count} worker{'s' if count > 1 else ''}"] = (
            _spins(pool, contender, tasks, iterations) - start
        )
        checkpoint(figures)
    return figures


def _spins(pool: Any, contender: str, tasks: int, iterations: int) -> float:
    """Run ``tasks`` spins on ``pool`` and close it; the clock when the last result came."""
    try:
        results = pool.run(pool_api(contender), spin, [iterations] * tasks)
        done = time.perf_counter()
    finally:
        pool.close_within()
    if len(results) != tasks:
        raise AssertionError(f"{len(results)} results for {tasks} tasks")
    return done


def run_started(contender: str, tasks: int, iterations: int) -> dict[str, float]:
    """Seconds from the constructor of a 2-worker pool to the last of ``tasks`` spins, for
    the first pool of this (fresh) process and for a second one; shutdown untimed."""
    figures: dict[str, float] = {}
    for case in STARTED_CASES:
        start = time.perf_counter()
        pool = ADAPTERS[contender](2, None, None)
        figures[case] = _spins(pool, contender, tasks, iterations) - start
        checkpoint(figures)
    return figures


def jobs(quick: bool) -> list[Job]:
    tasks = scaled(TASKS)
    seconds = TASK_SECONDS / 2 if quick else TASK_SECONDS
    params = {"tasks": tasks, "iterations": calibrate_spin(seconds), "quick": quick}
    out = [Job(SERIAL.name, "", f"{__name__}:serial", params)]
    short = {"tasks": tasks, "iterations": calibrate_spin(SHORT_SECONDS)}
    serial_short = {**short, "quick": quick, "case": SHORT_SERIAL_CASE}
    out.append(Job(SERIAL.name, "5 ms", f"{__name__}:serial", serial_short))
    for contender in PROCESS_POOLS:
        job_params = {**params, "contender": contender.name, "workers": [1, 2]}
        out.append(Job(contender.name, "", f"{__name__}:run", job_params))
        started = {**short, "contender": contender.name}
        out.append(Job(contender.name, "5 ms, incl. start", f"{__name__}:run_started", started))
    return out


def limit(case: str, medians: Mapping[tuple[str, str], float]) -> float | None:
    serial_case = SHORT_SERIAL_CASE if case in STARTED_CASES else SERIAL_CASE
    serial_time = medians.get((serial_case, SERIAL.name))
    if serial_time is None:
        return None
    return serial_time / int(case.split(maxsplit=1)[0])


def targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    serial_time = best.get((SERIAL_CASE, SERIAL.name))
    lines = []
    for name in ("workhorse.Pool", "workhorse.ProcessPoolExecutor"):
        two = best.get(("2 workers", name))
        if serial_time is None or two is None:
            lines.append(f"{name}: no figure")
            continue
        efficiency = serial_time[0] / 2 / two[0]
        verdict = "met" if efficiency >= 0.95 else f"missed by {0.95 - efficiency:.2f}"
        lines.append(f"{name}: {efficiency:.2f} of ideal speedup at 2 workers (>= 0.95): {verdict}")
    return lines + issue_11_targets(best)


def issue_11_targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    """Issue 11: 64 tasks of 5 ms on 2 workers including pool start, >= 0.95 of the ideal
    (serial time / 2) and no slower than ``multiprocessing.Pool`` (each at its defaults,
    its own default start method), for the cold and the warm pool."""
    serial_time = best.get((SHORT_SERIAL_CASE, SERIAL.name))
    lines = []
    for case in STARTED_CASES:
        stdlib = best.get((case, "multiprocessing.Pool"))
        for name in ("workhorse.Pool", "workhorse.ProcessPoolExecutor"):
            head = (
                f"issue 11: {case}: {name} >= 0.95 of ideal (serial / 2) and no slower than "
                "multiprocessing.Pool"
            )
            mine = best.get((case, name))
            if serial_time is None or mine is None or stdlib is None:
                lines.append(f"{head}: no figure")
                continue
            efficiency = serial_time[0] / 2 / mine[0]
            stdlib_efficiency = serial_time[0] / 2 / stdlib[0]
            misses = []
            if efficiency < 0.95:
                misses.append(f"{0.95 - efficiency:.2f} short of 0.95")
            if mine[0] > stdlib[0]:
                misses.append(f"{mine[0] / stdlib[0]:.2f}x multiprocessing.Pool's time")
            verdict = f"missed ({'; '.join(misses)})" if misses else "met"
            lines.append(
                f"{head}: {fmt_figure(mine[0], 's')} = {efficiency:.2f} of ideal "
                f"({fmt_figure(serial_time[0] / 2, 's')}) vs multiprocessing.Pool "
                f"{fmt_figure(stdlib[0], 's')} = {stdlib_efficiency:.2f}: {verdict}"
            )
    return lines


WORKLOAD = Workload(
    key="cpu",
    title="2. CPU-bound (64 tasks of ~20 ms pure Python, 1 and 2 workers; 5 ms incl. start)",
    description=(
        "Seconds to map 64 calls of a calibrated ~20 ms (quick mode: ~10 ms) pure-Python loop "
        "on a running pool, "
        "each library's main map API at its defaults. x limit = efficiency against the ideal "
        "(serial time / workers). *5 ms tasks, incl. pool start* (issue 11): 64 calls of "
        "~5 ms (also in quick mode) timed from the pool's constructor (its defaults, its own "
        "default start method) to the last result, shutdown untimed, in a fresh process: its "
        "first pool (cold) and a second one (warm)."
    ),
    unit="s",
    higher_is_better=False,
    contenders=(*PROCESS_POOLS, SERIAL),
    jobs=jobs,
    reps=(2, 5),
    timeout=(60.0, 180.0),
    limit=limit,
    limit_label="efficiency vs ideal",
    targets=targets,
)
