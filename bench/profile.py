"""Where workhorse spends its time: py-spy over workload 1 (tiny tasks, ``Pool.map``) and
workload 5 (small messages through ``Queue``, with ``put/get`` and with ``put_many/get_many``),
every process sampled.

``python bench/run.py profile [tiny|queues|queues_many ...]`` (or, inside ``bench/.venv``,
``python -m bench.profile``) prints, per role (caller thread, pool manager thread, worker
processes, queue producer/consumer), the functions with the most samples on CPU (self time),
and writes the raw stacks (flamegraph input) to ``bench/results/profile-<workload>.txt``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from .harness import ROOT

RATE = 400  # samples per second and process
TOP = 12


def target_tiny(items: int = 100_000, rounds: int = 5) -> None:
    import workhorse

    from .workloads.pools import noop

    data = list(range(items))
    start = time.perf_counter()
    [noop(x) for x in data]
    print(f"serial loop: {items / (time.perf_counter() - start):,.0f} tasks/s")
    with workhorse.Pool(2) as pool:
        pool.map(noop, range(8))
        for _ in range(rounds):
            start = time.perf_counter()
            pool.map(noop, data)
            print(f"workhorse.Pool.map: {items / (time.perf_counter() - start):,.0f} tasks/s")


def _queue_runs(contender: str, messages: int = 300_000, rounds: int = 3) -> None:
    from .workloads import queues

    for name in (contender, queues.RAW):
        for _ in range(rounds if name == contender else 1):
            figure = queues.run(name, messages, large=False, pairs=1)
            print(f"{name}: {next(iter(figure.values())):,.0f} msgs/s")


def target_queues() -> None:
    from .workloads import queues

    _queue_runs(queues.WH)


def target_queues_many() -> None:
    from .workloads import queues

    _queue_runs(queues.WH_MANY)


TARGETS = {"tiny": target_tiny, "queues": target_queues, "queues_many": target_queues_many}


PROCESS_FRAME = re.compile(r'process \d+:"[^"]*";?')


def role(processes: int, stack: list[str]) -> str:
    """Which process/thread a sampled stack belongs to."""
    text = ";".join(stack)
    if "ProcessEngine._run " in text or "ThreadEngine._run " in text:
        return "pool manager thread"
    if "worker_main" in text or "_backends/process/_worker.py" in text:
        return "worker processes"
    if "_produce" in text:
        return "producer process"
    if "_consume" in text:
        return "consumer process"
    if processes > 1:
        return "other child processes"
    return "caller (main thread)"


def summarise(raw: Path) -> str:
    self_time: dict[str, Counter[str]] = {}
    workhorse_inclusive: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text:
            continue
        count = int(count_text)
        processes = len(PROCESS_FRAME.findall(stack_text))
        frames = [re.sub(r":\d+\)$", ")", f) for f in PROCESS_FRAME.sub("", stack_text).split(";")]
        if not frames or not frames[0]:
            continue
        who = role(processes, frames)
        totals[who] += count
        self_time.setdefault(who, Counter())[frames[-1]] += count
        for frame in set(frames):
            if "workhorse/" in frame:
                workhorse_inclusive.setdefault(who, Counter())[frame] += count
    grand = sum(totals.values()) or 1
    out = []
    for who, total in totals.most_common():
        out.append(f"\n## {who}: {total} samples ({100 * total / grand:.0f}% of all on-CPU)")
        out.append("self time:")
        for frame, count in self_time[who].most_common(TOP):
            out.append(f"  {100 * count / total:5.1f}%  {frame}")
        if who in workhorse_inclusive:
            out.append("workhorse functions, inclusive:")
            for frame, count in workhorse_inclusive[who].most_common(TOP // 2):
                out.append(f"  {100 * count / total:5.1f}%  {frame}")
    return "\n".join(out)


def profile(key: str, out_dir: Path) -> str:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        return "py-spy is not installed in bench/.venv"
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"profile-{key}.txt"
    command = [spy, "record", "--subprocesses", "--format", "raw", "-r", str(RATE)]
    command += ["-o", str(raw), "--", sys.executable, "-m", "bench.profile", "--target", key]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    printed = "\n".join(line for line in run.stdout.splitlines() if "py-spy>" not in line)
    if not raw.exists():
        return f"py-spy failed: {run.stderr[-500:]}"
    return f"# {key}\n{printed}\n{summarise(raw)}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python bench/run.py profile", description=__doc__)
    parser.add_argument("workloads", nargs="*", help=f"some of {list(TARGETS)} (default: all)")
    parser.add_argument("--target", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.target:
        TARGETS[args.target]()
        return 0
    unknown = set(args.workloads) - set(TARGETS)
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; choose from {list(TARGETS)}")
    for key in args.workloads or TARGETS:
        print(profile(key, args.out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
