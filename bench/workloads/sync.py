"""Workload 7: lock / event / semaphore / condition latency, process and thread flavours.

Uncontended: one operation repeated in one thread (lock and semaphore: acquire + release;
event: set + wait + clear; condition: acquire + notify + release). Ping-pong: two processes
(process flavour, forked) or two threads (thread flavour) hand a turn back and forth through
two events or two semaphores; the figure is one round trip.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..harness import STDLIB, WORKHORSE, Contender, Job, Workload, checkpoint, scaled

WH, WH_THREADS, MP, TH = "workhorse", "workhorse.threads", "multiprocessing", "threading"
CONTENDERS = (
    Contender(WH, WORKHORSE, ("workhorse",)),
    Contender(WH_THREADS, WORKHORSE, ("workhorse",)),
    Contender(MP, STDLIB),
    Contender(TH, STDLIB),
)
FLAVOUR = {WH: "process", MP: "process", WH_THREADS: "thread", TH: "thread"}


def _module(contender: str) -> Any:
    if contender == WH:
        import workhorse

        return workhorse
    if contender == WH_THREADS:
        import workhorse.threads

        return workhorse.threads
    return multiprocessing if contender == MP else threading


def _per_op(ops: int, step: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(ops):
        step()
    return (time.perf_counter() - start) / ops * 1e6


def _uncontended(module: ModuleType, ops: int) -> dict[str, float]:
    lock, event, semaphore, condition = (
        module.Lock(),
        module.Event(),
        module.Semaphore(1),
        module.Condition(),
    )

    def lock_step() -> None:
        lock.acquire()
        lock.release()

    def event_step() -> None:
        event.set()
        event.wait()
        event.clear()

    def semaphore_step() -> None:
        semaphore.acquire()
        semaphore.release()

    def condition_step() -> None:
        with condition:
            condition.notify()

    steps = {
        "Lock acquire+release": lock_step,
        "Event set+wait+clear": event_step,
        "Semaphore acquire+release": semaphore_step,
        "Condition notify (no waiter)": condition_step,
    }
    return {name: _per_op(ops, step) for name, step in steps.items()}


def _bounce_events(ping: Any, pong: Any, rounds: int) -> None:
    for _ in range(rounds):
        ping.wait()
        ping.clear()
        pong.set()


def _bounce_semaphores(ping: Any, pong: Any, rounds: int) -> None:
    for _ in range(rounds):
        ping.acquire()
        pong.release()


def _ping_pong(contender: str, kind: str, rounds: int) -> float:
    module = _module(contender)
    if kind == "Event":
        ping, pong = module.Event(), module.Event()
        partner, args = _bounce_events, (ping, pong, rounds)
    else:
        ping, pong = module.Semaphore(0), module.Semaphore(0)
        partner, args = _bounce_semaphores, (ping, pong, rounds)
    if FLAVOUR[contender] == "process":
        other: Any = multiprocessing.get_context("fork").Process(target=partner, args=args)
    else:
        other = threading.Thread(target=partner, args=args)
    other.start()
    start = time.perf_counter()
    for _ in range(rounds):
        if kind == "Event":
            ping.set()
            pong.wait()
            pong.clear()
        else:
            ping.release()
            pong.acquire()
    elapsed = time.perf_counter() - start
    other.join()
    return elapsed / rounds * 1e6


def run(contender: str, ops: int, rounds: int) -> dict[str, float]:
    flavour = FLAVOUR[contender]
    figures = {f"{flavour}: {k}": v for k, v in _uncontended(_module(contender), ops).items()}
    checkpoint(figures)
    between = "2 processes" if flavour == "process" else "2 threads"
    for kind in ("Event", "Semaphore"):
        figures[f"{flavour}: {kind} ping-pong, {between}"] = _ping_pong(contender, kind, rounds)
        checkpoint(figures)
    return figures


def jobs(quick: bool) -> list[Job]:
    params = {
        "ops": scaled(20_000 if quick else 200_000),
        "rounds": scaled(2_000 if quick else 20_000),
    }
    return [Job(c.name, "", f"{__name__}:run", {**params, "contender": c.name}) for c in CONTENDERS]


WORKLOAD = Workload(
    key="sync",
    title="7. Lock / Event / Semaphore / Condition latency (process and thread flavours)",
    description=(
        "Microseconds per operation (uncontended, one thread) or per round trip (ping-pong "
        "between two forked processes or two threads). Rows compare each flavour with its "
        "stdlib counterpart: `multiprocessing` for processes, `threading` for threads."
    ),
    unit="µs",
    higher_is_better=False,
    contenders=CONTENDERS,
    jobs=jobs,
    reps=(2, 5),
    timeout=(60.0, 120.0),
)
