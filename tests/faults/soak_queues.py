"""Soak: kill queue producers and consumers at random instants for as long as asked.

    python -m tests.faults.soak_queues --minutes 10 [--seed 1] [--max-delay-ms 3]

Runs the trials of ``tests/faults/_queue_kill.py`` (alternately a killed producer and a
killed consumer) and prints, every 30 seconds and at the end: trials, kills, items, the
outcomes (wrong / missing / hung / leaked: all must stay 0) and this process's resources
(open descriptors, threads, ``/dev/shm`` entries it owns, RSS), which must stay flat.
Exits with status 1 if any problem was seen or a resource grew.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import threading
import time

from ._queue_kill import Outcome, consumer_trial, producer_trial


def _resources() -> dict[str, int]:
    gc.collect()
    pid = f"wh-{os.getpid()}-"
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "shm": sum(1 for n in os.listdir("/dev/shm") if pid in n),
        "rss_mib": rss_pages * os.sysconf("SC_PAGE_SIZE") >> 20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-delay-ms", type=float, default=3.0)
    args = parser.parse_args(argv)
    rng, out = random.Random(args.seed), Outcome()
    max_delay = args.max_delay_ms / 1000
    for _ in range(20):  # warm up: imports, the resource tracker, allocator pools
        producer_trial(out, rng, max_delay)
        consumer_trial(out, rng, max_delay)
    before = _resources()
    print(f"start: {before}", flush=True)
    started = last = time.monotonic()
    end = started + args.minutes * 60
    while time.monotonic() < end and not out.problems():
        producer_trial(out, rng, max_delay)
        consumer_trial(out, rng, max_delay)
        if time.monotonic() - last >= 30:
            last = time.monotonic()
            print(f"{(last - started) / 60:5.1f} min: {out.summary()}; {_resources()}", flush=True)
    after = _resources()
    minutes = (time.monotonic() - started) / 60
    print(f"end after {minutes:.1f} min: {out.summary()}")
    print(f"resources: start {before}, end {after}")
    for problem in out.problems()[:20]:
        print("PROBLEM:", problem)
    grew = [
        key
        for key in ("fds", "threads", "shm")
        if after[key] > before[key]  # RSS may breathe; it is printed, not judged
    ]
    if grew:
        print("GREW:", grew)
    return 1 if out.problems() or grew else 0


if __name__ == "__main__":
    sys.exit(main())
