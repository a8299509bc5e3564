"""Workload 2: CPU-bound -- 64 tasks of ~20 ms pure-Python compute on 1 and 2 workers.

The ideal on *n* workers is the serial time / *n*; the "x limit" column is the efficiency
against it (speedup = efficiency x workers).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..harness import Job, Workload, checkpoint, scaled
from .pools import PROCESS_POOLS, SERIAL, calibrate_spin, open_pool, pool_api, spin

TASKS = 64
TASK_SECONDS = 0.020
SERIAL_CASE = "64 tasks serially"


def serial(tasks: int, iterations: int, quick: bool) -> dict[str, float]:
    """The work done in this process, best of 3: the ideal is the optimistic bound."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(tasks):
            spin(iterations)
        best = min(best, time.perf_counter() - start)
    return {SERIAL_CASE: best}


def run(
    contender: str, tasks: int, iterations: int, workers: list[int], quick: bool
) -> dict[str, float]:
    """Seconds to map ``tasks`` spins on a running pool of each size in ``workers``."""
    figures: dict[str, float] = {}
    for count in workers:
        pool = open_pool(contender, count)
        try:
            start = time.perf_counter()
            results = pool.run(pool_api(contender), spin, [iterations] * tasks)
            figures[f"{count} worker{'s' if count > 1 else ''}"] = time.perf_counter() - start
        finally:
            pool.close_within()
        if len(results) != tasks:
            raise AssertionError(f"{len(results)} results for {tasks} tasks")
        checkpoint(figures)
    return figures


def jobs(quick: bool) -> list[Job]:
    tasks = scaled(TASKS)
    seconds = TASK_SECONDS / 2 if quick else TASK_SECONDS
    params = {"tasks": tasks, "iterations": calibrate_spin(seconds), "quick": quick}
    out = [Job(SERIAL.name, "", f"{__name__}:serial", params)]
    for contender in PROCESS_POOLS:
        job_params = {**params, "contender": contender.name, "workers": [1, 2]}
        out.append(Job(contender.name, "", f"{__name__}:run", job_params))
    return out


def limit(case: str, medians: Mapping[tuple[str, str], float]) -> float | None:
    serial_time = medians.get((SERIAL_CASE, SERIAL.name))
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
    return lines


WORKLOAD = Workload(
    key="cpu",
    title="2. CPU-bound (64 tasks of ~20 ms pure Python, 1 and 2 workers)",
    description=(
        "Seconds to map 64 calls of a calibrated ~20 ms (quick mode: ~10 ms) pure-Python loop "
        "on a running pool, "
        "each library's main map API at its defaults. x limit = efficiency against the ideal "
        "(serial time / workers)."
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
