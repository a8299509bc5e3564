"""Workload 9: the Dask backend -- raw Dask vs workhorse on Dask vs workhorse processes.

Each job starts its own 2-worker ``LocalCluster`` (one thread per worker, loopback) and
measures, in tasks (or operations) per second:

* no-op tasks: ``client.map`` + ``gather`` (raw Dask, one task per item; quick: 1,000 items,
  full: 2,000 -- at ~600 tasks/s more would only cost time), workhorse's ``Pool.map`` on the
  cluster and on local processes (100,000 items; quick: 20,000);
* CPU-bound tasks of ~20 ms (64 of them) on the 2 workers; the limit is 2 x the serial rate,
  so "x limit" is the efficiency against the ideal. Raw Dask and workhorse on Dask are
  measured on the *same* cluster, alternately, :data:`CPU_REPS` times each, and each reports
  its median: on a shared 2-core machine the rate drifts by 2x between seconds, so only an
  interleaved comparison says which is faster;
* the cluster primitives' round trips from the client: ``Lock`` acquire+release,
  ``Semaphore`` acquire+release, ``Event`` set+is_set, ``Queue`` put+get (ops/s; 1e6 / ops/s
  is the latency in µs).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from typing import Any

from ..harness import LIMIT, STDLIB, WORKHORSE, Contender, Job, Workload, checkpoint, scaled
from .pools import calibrate_spin, noop, spin

RAW, ON_DASK, PROCESSES = "dask client.map", "workhorse on Dask", "workhorse processes"
SERIAL = "serial loop"
CONTENDERS = (
    Contender(ON_DASK, WORKHORSE, ("workhorse", "distributed")),
    Contender(PROCESSES, WORKHORSE, ("workhorse",)),
    Contender(RAW, STDLIB, ("distributed",)),
    Contender(SERIAL, LIMIT),
)
NOOP, CPU = "no-op tasks", "CPU ~20 ms tasks, 2 workers"
PRIMITIVES = ("Lock acquire+release", "Semaphore acquire+release", "Event set+is_set",
              "Queue put+get")  # fmt: skip
CPU_TASKS = 64
CPU_REPS = 5
WORKERS = 2


def _cluster() -> Any:
    import workhorse

    return workhorse.dask(n_workers=WORKERS)


def _rate(items: int, fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return items / (time.perf_counter() - start)


def run(contender: str, noops: int, iterations: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    if contender == PROCESSES:
        import workhorse

        with workhorse.Pool(WORKERS) as pool:
            pool.map(noop, range(100))  # start the workers
            figures[NOOP] = _rate(noops, lambda: pool.map(noop, range(noops)))
            checkpoint(figures)
            figures[CPU] = _rate(CPU_TASKS, lambda: pool.map(spin, [iterations] * CPU_TASKS))
        return figures
    with _cluster() as cluster:
        client = cluster.client
        with cluster.Pool() as pool:
            if contender == RAW:
                client.gather(client.map(noop, range(100)))
                figures[NOOP] = _rate(noops, lambda: client.gather(client.map(noop, range(noops))))
            else:
                pool.map(noop, range(100))
                figures[NOOP] = _rate(noops, lambda: pool.map(noop, range(noops)))
            checkpoint(figures)
            raw, mine = cpu_interleaved(client, pool, iterations)
            figures[CPU] = raw if contender == RAW else mine
            checkpoint(figures)
        if contender == ON_DASK:
            figures.update(primitives(cluster))
    return figures


def cpu_interleaved(client: Any, pool: Any, iterations: int) -> tuple[float, float]:
    """Median rates of raw ``client.map`` and ``pool.map`` on the CPU-bound tasks, measured
    alternately on one cluster (see the module docstring)."""
    args = [iterations] * CPU_TASKS
    raw, mine = [], []
    for _ in range(CPU_REPS):
        raw.append(_rate(CPU_TASKS, lambda: client.gather(client.map(spin, args, pure=False))))
        mine.append(_rate(CPU_TASKS, lambda: pool.map(spin, args)))
    return statistics.median(raw), statistics.median(mine)


def primitives(cluster: Any, rounds: int = 200) -> dict[str, float]:
    """Operations per second of each primitive's round trip, from the client."""
    lock, sem, event, q = cluster.Lock(), cluster.Semaphore(2), cluster.Event(), cluster.Queue()

    def lock_round() -> None:
        lock.acquire()
        lock.release()

    def sem_round() -> None:
        sem.acquire()
        sem.release()

    def event_round() -> None:
        event.set()
        event.is_set()

    def queue_round() -> None:
        q.put(1)
        q.get()

    out = {}
    for case, step in zip(
        PRIMITIVES, (lock_round, sem_round, event_round, queue_round), strict=True
    ):
        step()
        out[case] = _rate(rounds, lambda step=step: [step() for _ in range(rounds)])
    return out


def serial(iterations: int) -> dict[str, float]:
    best = min(_rate(CPU_TASKS, lambda: [spin(iterations) for _ in range(CPU_TASKS)])
               for _ in range(3))  # fmt: skip
    return {CPU: best}


def jobs(quick: bool) -> list[Job]:
    iterations = calibrate_spin(0.010 if quick else 0.020)
    noops = scaled(20_000 if quick else 100_000)
    raw = scaled(1_000 if quick else 2_000)
    out = [Job(SERIAL, "", f"{__name__}:serial", {"iterations": iterations})]
    for name, items in ((ON_DASK, noops), (PROCESSES, noops), (RAW, raw)):
        params = {"contender": name, "noops": items, "iterations": iterations}
        out.append(Job(name, "", f"{__name__}:run", params))
    return out


def limit(case: str, medians: Mapping[tuple[str, str], float]) -> float | None:
    serial_rate = medians.get((CPU, SERIAL))
    return None if case != CPU or serial_rate is None else serial_rate * WORKERS


def targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    lines = []
    mine, raw = best.get((NOOP, ON_DASK)), best.get((NOOP, RAW))
    if mine and raw:
        ratio = mine[0] / raw[0]
        verdict = "met" if ratio >= 50 else "missed"
        lines.append(
            f"no-op tasks: workhorse on Dask {ratio:.0f}x raw client.map (>= 50x): {verdict}"
        )
    cpu, ideal = best.get((CPU, ON_DASK)), best.get((CPU, SERIAL))
    if cpu and ideal:
        efficiency = cpu[0] / (ideal[0] * WORKERS)
        verdict = "met" if efficiency >= 0.9 else "missed"
        lines.append(
            f"CPU-bound: workhorse on Dask at {efficiency:.2f} of ideal (>= 0.9): {verdict}"
        )
    cpu_raw = best.get((CPU, RAW))
    if cpu and cpu_raw:
        lines.append(f"CPU-bound: workhorse on Dask at {cpu[0] / cpu_raw[0]:.2f}x raw Dask")
    return lines or ["no figure"]


WORKLOAD = Workload(
    key="dask",
    title="9. Dask backend (2-worker LocalCluster)",
    description=(
        "Tasks (or primitive operations) per second: no-op maps (raw client.map: 2,000 items, "
        "quick 1,000; workhorse: 100,000, quick 20,000), 64 CPU-bound ~20 ms tasks (quick "
        "~10 ms) on 2 workers (x limit = efficiency vs serial rate x 2), and primitive round "
        "trips from the client (latency = 1 / rate)."
    ),
    unit="/s",
    higher_is_better=True,
    contenders=CONTENDERS,
    jobs=jobs,
    reps=(1, 3),
    timeout=(120.0, 300.0),
    limit=limit,
    limit_label="efficiency vs ideal",
    targets=targets,
)
