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
  rate drifts by 2x between seconds, so only an interleaved comparison says which is faster.
  Between the repetitions the job also times the serial loop and two bare processes, and
  each map reports its items' own durations: ideals measured in the same seconds as the maps
  (see :func:`cpu_interleaved`);
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
# Measured in the same job, between the repetitions of the CPU case (see cpu_interleaved): on
# this machine a core's speed moves by 1.5x from one second to the next, so an ideal measured
# minutes earlier in another process says little about the seconds the map ran in.
ALONGSIDE = ", measured alongside"
AS_THEY_RAN = ", ideal for the items as they ran"
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
            figures.update(cpu_interleaved(client, pool, iterations, CPU, contender))
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
            figures.update(cpu_interleaved(remote.client, pool, iterations, CPU_CLI, contender))
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


def cpu_interleaved(
    client: Any, pool: Any, iterations: int, case: str, contender: str
) -> dict[str, float]:
    """Median rates of raw ``client.map`` and ``pool.map`` on the CPU-bound tasks, measured
    alternately on one cluster (see the module docstring); ``contender``'s rate under
    ``case``, with three ideals measured in the same seconds:

    * ``case + ALONGSIDE`` for :data:`SERIAL` and :data:`BARE`: the serial loop in this
      process and two bare forked processes, run between the repetitions;
    * ``case + AS_THEY_RAN``: the rate the map would reach if the workers never waited, from
      the items' own durations in this very map (2 x items / their summed seconds): one minus
      the efficiency against it is what scheduling cost, whatever the cores' speed."""
    args = [iterations] * CPU_TASKS
    rates: dict[str, list[float]] = {}

    def measure(name: str, run: Any) -> None:
        start = time.perf_counter()
        seconds = run()
        wall = time.perf_counter() - start
        rates.setdefault(name, []).append(CPU_TASKS / wall)
        rates.setdefault(name + AS_THEY_RAN, []).append(WORKERS * CPU_TASKS / sum(seconds))

    for _ in range(CPU_REPS):
        rates.setdefault(SERIAL, []).append(serial(iterations, share=CPU_TASKS // 4)[CPU])
        measure(RAW, lambda: client.gather(client.map(timed_spin, args, pure=False)))
        measure(ON_DASK, lambda: pool.map(timed_spin, args))
        rates.setdefault(BARE, []).append(bare(iterations, share=CPU_TASKS // 4, best_of=1)[CPU])
    mine = RAW if contender == RAW else ON_DASK
    return {
        case: statistics.median(rates[mine]),
        case + AS_THEY_RAN: statistics.median(rates[mine + AS_THEY_RAN]),
        f"{case}{ALONGSIDE}: {SERIAL}": statistics.median(rates[SERIAL]),
        f"{case}{ALONGSIDE}: {BARE}": statistics.median(rates[BARE]),
    }


def timed_spin(iterations: int) -> float:
    """:func:`spin`, returning how long it took here (seconds)."""
    start = time.perf_counter()
    spin(iterations)
    return time.perf_counter() - start


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


def serial(iterations: int, share: int = CPU_TASKS) -> dict[str, float]:
    """The serial loop's rate over ``share`` items (best of 3)."""
    best = max(_rate(share, lambda: [spin(iterations) for _ in range(share)])
               for _ in range(3))  # fmt: skip
    return {CPU: best}


def bare(iterations: int, share: int = CPU_TASKS // WORKERS, best_of: int = 3) -> dict[str, float]:
    """What two processes doing ``share`` items each at once reach, with no scheduling at
    all (best of ``best_of``): on a shared machine two busy cores run slower than one, which
    the serial loop x 2 does not see."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    best = float("inf")
    for _ in range(best_of):
        processes = [context.Process(target=_spin_many, args=(iterations, share))
                     for _ in range(WORKERS)]  # fmt: skip
        start = time.perf_counter()
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        best = min(best, time.perf_counter() - start)
    return {CPU: WORKERS * share / best}


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
        if not cpu:
            continue
        ahead = cpu_raw is None or cpu[0] > cpu_raw[0]
        if ideal:
            efficiency = cpu[0] / (ideal[0] * WORKERS)
            beside = f", raw Dask {cpu_raw[0] / (ideal[0] * WORKERS):.2f}" if cpu_raw else ""
            verdict = "met" if efficiency >= 0.9 and ahead else "missed"
            lines.append(
                f"CPU-bound, {where}: workhorse on Dask at {efficiency:.2f} of ideal{beside} "
                f"(>= 0.9 and ahead of raw Dask): {verdict}"
            )
        # the same target against the serial loop timed between the repetitions
        alongside = best.get((f"{case}{ALONGSIDE}: {SERIAL}", ON_DASK))
        if alongside:
            efficiency = cpu[0] / (alongside[0] * WORKERS)
            verdict = "met" if efficiency >= 0.9 and ahead else "missed"
            line = _against(best, f"{case}{ALONGSIDE}: {SERIAL}", case, WORKERS)
            lines.append(f"CPU-bound, {where}, against 2 x the serial loop measured alongside: "
                         f"{line} (>= 0.9 and ahead of raw Dask): {verdict}")  # fmt: skip
        for key, name in (
            (f"{case}{ALONGSIDE}: {BARE}", "2 bare processes measured alongside"),
            (case + AS_THEY_RAN, "the items' own durations in the map (scheduling alone)"),
        ):
            if line := _against(best, key, case):
                lines.append(f"CPU-bound, {where}, against {name}: {line}")
        capacity = best.get((CPU, BARE))
        if capacity:
            beside = f", raw Dask {cpu_raw[0] / capacity[0]:.2f}" if cpu_raw else ""
            lines.append(
                f"CPU-bound, {where}, against 2 bare processes at once: workhorse on Dask at "
                f"{cpu[0] / capacity[0]:.2f}{beside}"
            )
        own = best.get((AT_WORKER_SPEED if case == CPU else AT_WORKER_SPEED_CLI, ON_DASK))
        if own:
            beside = f", raw Dask {cpu_raw[0] / own[0]:.2f}" if cpu_raw else ""
            lines.append(
                f"CPU-bound, {where}, against the workers' own serial speed: workhorse on "
                f"Dask at {cpu[0] / own[0]:.2f}{beside}"
            )
    return lines or ["no figure"]


def _against(best: Mapping[tuple[str, str], tuple[float, str]], ideal: str, case: str,
             factor: int = 1) -> str:  # fmt: skip
    """How ``case`` compares with the ideal each contender measured under the key ``ideal``
    (x ``factor``): "workhorse on Dask at E, raw Dask R"; empty without the figures."""
    cpu, ideal_mine = best.get((case, ON_DASK)), best.get((ideal, ON_DASK))
    if not cpu or not ideal_mine:
        return ""
    line = f"workhorse on Dask at {cpu[0] / (ideal_mine[0] * factor):.2f}"
    cpu_raw, ideal_raw = best.get((case, RAW)), best.get((ideal, RAW))
    if cpu_raw and ideal_raw:
        line += f", raw Dask {cpu_raw[0] / (ideal_raw[0] * factor):.2f}"
    return line


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
