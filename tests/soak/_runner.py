"""The soak's loop: which trial runs next, the reports every 30 s, the verdict.

Scheduling: each kind of trial gets a fixed share of the wall-clock time (``SHARES``), not
of the trial count -- a pool trial takes a second, a queue round a few milliseconds -- so
the next trial is of the kind furthest below its share.

Resources are judged between a *baseline*, taken after a warm-up (imports, allocator
pools, the forkserver: ``warmup`` seconds of ordinary trials), and the end. Descriptors,
threads, child processes and ``/dev/shm`` names must not grow at all (every trial already
checks that it left none behind). RSS may breathe: the allocator keeps freed memory for
reuse, and one trial's peak (a few hundred 1-4 MiB results, 512 KiB pipe messages) sets how
much. So RSS is judged with a tolerance of ``RSS_TOLERANCE_MIB`` over the baseline, after
fixing glibc's mmap threshold at 128 KiB (its default, which glibc otherwise raises after
the first large free, so that later large buffers come from the heap and their pages stay
in RSS): then large buffers go back to the kernel when freed, and RSS follows what is
alive. Measured on 2 cores: RSS settles within 20-30 MiB of its post-warm-up value and
stays there; a leak of one 1 MiB result per pool trial would pass the tolerance within
ten minutes.
"""

from __future__ import annotations

import ctypes
import faulthandler
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from . import _locks, _pipes, _pools, _queues, _waits
from ._known import known
from ._ledger import Ledger, resources, trial

SHARES = {"pool": 0.4, "queue": 0.2, "pipe": 0.2, "sync": 0.2}
SYNC: list[tuple[Callable[[Ledger, random.Random], None], float]] = [
    (_locks.lock_trial, 0.25),
    (_locks.semaphore_trial, 0.2),
    (_waits.condition_trial, 0.2),
    (_waits.event_trial, 0.15),
    (_waits.barrier_trial, 0.2),
]
RSS_TOLERANCE_MIB = 48
REPORT_EVERY = 30.0  # seconds
WATCHDOG = 600.0  # seconds: a trial running longer dumps every thread's stack and exits


@dataclass
class Config:
    minutes: float = 10.0
    seed: int = 1
    warmup: float = 20.0  # seconds (at most a fifth of the run)
    kinds: tuple[str, ...] = tuple(SHARES)
    watchdog: bool = True  # off under pytest, whose own timeout does that job
    out: TextIO = sys.stdout


@dataclass
class Result:
    ledger: Ledger
    queues: _queues.QueueTrials
    before: dict[str, int] = field(default_factory=dict)
    baseline: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def grew(self) -> list[str]:
        """The resources that grew between the baseline and the end."""
        grew = [
            f"{key} {self.baseline[key]} -> {self.after[key]}"
            for key in ("fds", "threads", "children", "shm")
            if self.after[key] > self.baseline[key]
        ]
        if self.after["rss_mib"] > self.baseline["rss_mib"] + RSS_TOLERANCE_MIB:
            grew.append(f"rss_mib {self.baseline['rss_mib']} -> {self.after['rss_mib']}")
        return grew

    @property
    def ok(self) -> bool:
        return not self.ledger.count() and not self.grew()

    def lines(self) -> list[str]:
        lines = [f"after {self.seconds / 60:.1f} min:", *self.ledger.report()]
        for who, out in self.queues.out.items():
            lines.append(f"queue {who} trials: {out.summary()}")
        lines.append(f"resources: at start {self.before}")
        lines.append(f"           after warm-up {self.baseline}")
        lines.append(f"           at the end {self.after}")
        for category, problems in self.ledger.problems.items():
            lines += [f"PROBLEM {category}: {text}{_label(text)}" for text in problems[:20]]
            if len(problems) > 20:
                lines.append(f"PROBLEM {category}: ... and {len(problems) - 20} more")
        if self.grew():
            lines.append(f"GREW: {', '.join(self.grew())} (RSS tolerance {RSS_TOLERANCE_MIB} MiB)")
        lines.append("OK" if self.ok else "FAILED")
        return lines


def _label(problem: str) -> str:
    bug = known(problem)
    return f" [known src bug: {bug}]" if bug else ""


def fix_mmap_threshold() -> None:
    """Keep glibc's mmap threshold at 128 KiB (see the module docstring)."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: RSS is judged with the same tolerance all the same


def run(config: Config) -> Result:
    """Run the soak for ``config.minutes``; return its figures (see ``Result.ok``)."""
    fix_mmap_threshold()
    rng = random.Random(config.seed)
    ledger, queues = Ledger(), _queues.QueueTrials()
    trials: dict[str, Callable[[Ledger, random.Random], None]] = {
        "pool": _pools.pool_trial,
        "queue": queues,
        "pipe": _pipes.pipe_trial,
        "sync": _sync_trial,
    }
    result = Result(ledger, queues, before=resources())
    started = time.monotonic()
    end = started + config.minutes * 60
    warm_until = started + min(config.warmup, config.minutes * 12)
    last = started
    print(f"start (seed {config.seed}): {result.before}", file=config.out, flush=True)
    while time.monotonic() < end:
        if not result.baseline and time.monotonic() >= warm_until:
            result.baseline = resources()
            print(f"after warm-up: {result.baseline}", file=config.out, flush=True)
        kind = min(config.kinds, key=lambda k: ledger.kind(k).seconds / SHARES[k])
        if config.watchdog:
            faulthandler.dump_traceback_later(WATCHDOG, exit=True)
        with trial(ledger, kind):
            try:
                trials[kind](ledger, rng)
            except Exception as exc:  # a bug of the soak or an unexpected error: go on
                where = traceback.format_exc(limit=-3).replace("\n", " | ")
                ledger.problem("wrong", kind, f"the trial raised {exc!r}: {where}")
        if config.watchdog:
            faulthandler.cancel_dump_traceback_later()
        if time.monotonic() - last >= REPORT_EVERY:
            last = time.monotonic()
            minutes = (last - started) / 60
            lines = [f"{minutes:5.1f} min: {resources()}", *ledger.report()]
            print("\n".join(lines), file=config.out, flush=True)
    result.seconds = time.monotonic() - started
    result.baseline = result.baseline or result.before
    result.after = resources()
    return result


def _sync_trial(ledger: Ledger, rng: random.Random) -> None:
    """One trial of a primitive drawn by weight (``SYNC``), counted by its name."""
    chosen = _pick(rng, SYNC)
    ledger.note("sync", f"{chosen.__name__.removesuffix('_trial')} trials")
    chosen(ledger, rng)


def _pick(
    rng: random.Random, weighted: list[tuple[Callable[[Ledger, random.Random], None], float]]
) -> Callable[[Ledger, random.Random], None]:
    return rng.choices([f for f, _ in weighted], [w for _, w in weighted])[0]
