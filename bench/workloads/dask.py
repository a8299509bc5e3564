"""Workload 9: the Dask backend -- raw Dask vs workhorse on Dask vs workhorse processes.

Each job starts its own 2-worker ``LocalCluster`` (one thread per worker, loopback) and
measures, in tasks (or operations) per second:

* no-op tasks: ``client.map`` + ``gather`` (raw Dask, one task per item; quick: 1,000 items,
  full: 2,000 -- at ~600 tasks/s more would only cost time), workhorse's ``Pool.map`` on the
  cluster and on local processes (100,000 items; quick: 20,000);
* CPU-bound tasks of ~20 ms (64 of them) on the 2 workers; the limit is 2 x the serial rate,
  so "x limit" is the efficiency against the ideal. Two more ideals say how much of the gap
  is the machine: two bare forked processes doing the same work at once (no scheduling), and
  the sum of the Dask workers' own serial rates, each timed in a task on its worker. Raw
  Dask and workhorse on Dask are measured on the *same* cluster, alternately,
  :data:`CPU_REPS` times each, and each reports its median: on a shared 2-core machine the
  rate drifts by 2x between seconds, so only an interleaved comparison says which is faster;
* the same CPU-bound comparison on a cluster started the way operators start one: ``dask
  scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` at Dask's defaults (spawned
  workers, ``allowed-failures`` 3), reached by address;
* the cluster primitives' round trips from the client: ``Lock`` acquire+release,
  ``Semaphore`` acquire+release, ``Event`` set+is_set, ``Queue`` put+get (ops/s; 1e6 / ops/s
  is the latency in µs).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..harness import LIMIT, STDLIB, WORKHORSE, Contender, Job, Workload, checkpoint, scaled
from .pools import calibrate_spin, noop, spin

RAW, ON_DASK, PROCESSES = "dask client.map", "workhorse on Dask", "workhorse processes"
SERIAL = "serial loop"
BARE = "2 bare processes at once"
CONTENDERS = (
    Contender(ON_DASK, WORKHORSE, ("workhorse", "distributed")),
    Contender(PROCESSES, WORKHORSE, ("workhorse",)),
    Contender(RAW, STDLIB, ("distributed",)),
    Contender(SERIAL, LIMIT),
    Contender(BARE, LIMIT),
)
NOOP, CPU = "no-op tasks", "CPU ~20 ms tasks, 2 workers"
CPU_CLI = "CPU ~20 ms tasks, 2 workers, `dask` CLI cluster"
AT_WORKER_SPEED = "ideal at the workers' own speed"
AT_WORKER_SPEED_CLI = "ideal at the workers' own speed, `dask` CLI cluster"
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
            figures[AT_WORKER_SPEED] = worker_ideal(client, iterations)
            figures.update(primitives(cluster))
    checkpoint(figures)
    import workhorse

    with cli_cluster() as address, workhorse.dask(address=address) as remote:
        remote.client.wait_for_workers(WORKERS, timeout=60)
        with remote.Pool() as pool:
            pool.map(noop, range(100))
            remote.client.gather(remote.client.map(noop, range(100)))
            raw, mine = cpu_interleaved(remote.client, pool, iterations)
            figures[CPU_CLI] = raw if contender == RAW else mine
            if contender == ON_DASK:
                figures[AT_WORKER_SPEED_CLI] = worker_ideal(remote.client, iterations)
    return figures


def worker_ideal(client: Any, iterations: int) -> float:
    """The CPU-bound rate the workers would reach with no scheduling cost at all: the sum of
    each worker's own serial rate, timed in a task on it (best of 5).

    The same loop runs 12-17 ms in eight fresh Python processes on this machine (memory
    layout, CPU placement), so the serial loop of the measuring process is a fair ideal only
    on average; this one isolates what the scheduling costs."""
    rates = []
    for address in client.scheduler_info()["workers"]:
        future = client.submit(_serial_seconds, iterations, workers=[address],
                               allow_other_workers=False, pure=False)  # fmt: skip
        rates.append(1 / future.result())
    return sum(rates)


def _serial_seconds(iterations: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        spin(iterations)
        best = min(best, time.perf_counter() - start)
    return best


@contextlib.contextmanager
def cli_cluster() -> Iterator[str]:
    """A scheduler and two one-thread workers from the ``dask`` program, Dask's defaults."""
    dask = Path(sys.executable).parent / "dask"
    root = str(Path(__file__).resolve().parents[2])  # the workers import bench.workloads
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    started: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        info = Path(tmp) / "scheduler.json"
        try:
            started.append(subprocess.Popen(
                [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                 "--scheduler-file", str(info)],
                env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            deadline = time.monotonic() + 60
            while not info.exists() or not info.read_text().strip():
                if time.monotonic() > deadline or started[0].poll() is not None:
                    raise RuntimeError("`dask scheduler` did not start")
                time.sleep(0.05)
            address = json.loads(info.read_text())["address"]
            started.append(subprocess.Popen(
                [dask, "worker", address, "--host", "127.0.0.1", "--nworkers", str(WORKERS),
                 "--nthreads", "1", "--no-dashboard"],
                env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            yield address
        finally:
            for process in reversed(started):
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


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


def bare(iterations: int) -> dict[str, float]:
    """What two processes doing the work at once reach, with no scheduling at all (best of
    3): on a shared machine two busy cores run slower than one, which the serial loop x 2
    does not see."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    best = float("inf")
    for _ in range(3):
        share = CPU_TASKS // WORKERS
        processes = [context.Process(target=_spin_many, args=(iterations, share))
                     for _ in range(WORKERS)]  # fmt: skip
        start = time.perf_counter()
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        best = min(best, time.perf_counter() - start)
    return {CPU: CPU_TASKS / best}


def _spin_many(iterations: int, count: int) -> None:
    for _ in range(count):
        spin(iterations)


def jobs(quick: bool) -> list[Job]:
    iterations = calibrate_spin(0.010 if quick else 0.020)
    noops = scaled(20_000 if quick else 100_000)
    raw = scaled(1_000 if quick else 2_000)
    out = [Job(SERIAL, "", f"{__name__}:serial", {"iterations": iterations}),
           Job(BARE, "", f"{__name__}:bare", {"iterations": iterations})]  # fmt: skip
    for name, items in ((ON_DASK, noops), (PROCESSES, noops), (RAW, raw)):
        params = {"contender": name, "noops": items, "iterations": iterations}
        out.append(Job(name, "", f"{__name__}:run", params))
    return out


def limit(case: str, medians: Mapping[tuple[str, str], float]) -> float | None:
    serial_rate = medians.get((CPU, SERIAL))
    cpu = case in (CPU, CPU_CLI)
    return None if not cpu or serial_rate is None else serial_rate * WORKERS


def targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    lines = []
    mine, raw = best.get((NOOP, ON_DASK)), best.get((NOOP, RAW))
    if mine and raw:
        ratio = mine[0] / raw[0]
        verdict = "met" if ratio >= 50 else "missed"
        lines.append(
            f"no-op tasks: workhorse on Dask {ratio:.0f}x raw client.map (>= 50x): {verdict}"
        )
    ideal = best.get((CPU, SERIAL))
    for case, where in ((CPU, "embedded cluster"), (CPU_CLI, "`dask` CLI cluster")):
        cpu, cpu_raw = best.get((case, ON_DASK)), best.get((case, RAW))
        if cpu and ideal:
            efficiency = cpu[0] / (ideal[0] * WORKERS)
            beside = f", raw Dask {cpu_raw[0] / (ideal[0] * WORKERS):.2f}" if cpu_raw else ""
            ahead = cpu_raw is None or cpu[0] > cpu_raw[0]
            verdict = "met" if efficiency >= 0.9 and ahead else "missed"
            lines.append(
                f"CPU-bound, {where}: workhorse on Dask at {efficiency:.2f} of ideal{beside} "
                f"(>= 0.9 and ahead of raw Dask): {verdict}"
            )
        capacity = best.get((CPU, BARE))
        if cpu and capacity:
            beside = f", raw Dask {cpu_raw[0] / capacity[0]:.2f}" if cpu_raw else ""
            lines.append(
                f"CPU-bound, {where}, against 2 bare processes at once: workhorse on Dask at "
                f"{cpu[0] / capacity[0]:.2f}{beside}"
            )
        own = best.get((AT_WORKER_SPEED if case == CPU else AT_WORKER_SPEED_CLI, ON_DASK))
        if cpu and own:
            beside = f", raw Dask {cpu_raw[0] / own[0]:.2f}" if cpu_raw else ""
            lines.append(
                f"CPU-bound, {where}, against the workers' own serial speed: workhorse on "
                f"Dask at {cpu[0] / own[0]:.2f}{beside}"
            )
    return lines or ["no figure"]


WORKLOAD = Workload(
    key="dask",
    title="9. Dask backend (2-worker LocalCluster, and a `dask` CLI cluster)",
    description=(
        "Tasks (or primitive operations) per second: no-op maps (raw client.map: 2,000 items, "
        "quick 1,000; workhorse: 100,000, quick 20,000), 64 CPU-bound ~20 ms tasks (quick "
        "~10 ms) on 2 workers (x limit = efficiency vs serial rate x 2), on the embedded cluster "
        "and on one started with `dask scheduler`/`dask worker` at Dask's defaults, and "
        "primitive round trips from the client (latency = 1 / rate)."
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
