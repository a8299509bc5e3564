"""Workload 1: tiny tasks -- a no-op mapped over 100,000 items on an already running pool.

Every pool runs each of its mapping APIs at its defaults and with hand-tuned chunksizes
(the best one is reported); the serial loop is the physical limit. A fault-injected variant
SIGKILLs a few workhorse workers during the map and checks that every result or error
comes back.

Issue 11's targets compare workhorse at its defaults with the peer's same API, tuned where
the peer can be tuned: besides the sweep, ``multiprocessing.Pool.imap`` and the
``Executor.map`` of ``concurrent.futures.ProcessPoolExecutor`` and loky run at
``chunksize=1000`` (cases "..., chunksize=1000").
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import wait
from typing import Any

from ..harness import VARIANT_SEP, Job, Workload, checkpoint, note, scaled
from ..report import fmt_figure
from .pools import (
    ADAPTERS,
    APIS,
    EXECUTOR_MAP,
    IMAP,
    IMAP_UNORDERED,
    MAP,
    PROCESS_POOLS,
    SERIAL,
    Adapter,
    WorkhorseExecutor,
    WorkhorsePool,
    die_once,
    noop,
    open_pool,
)

WORKERS = 2
ITEMS = 100_000
KILLS = 4
#: Quick mode measures the defaults on as many items as take about this long (at least
#: PROBE, at most ITEMS), judged from a PROBE-item run: slow configurations (one message
#: per item) then cost a fraction of a second, fast ones still map all 100,000 items.
QUICK_SECONDS, PROBE = 0.5, 5_000
FAULT_CASE = f"faults: map, {KILLS} workers SIGKILLed (retries=1)"
FAULT_BASE_CASE = "faults: map, same items, no kill"
SUBMIT_FAULT_CASE = f"faults: submit per item, {KILLS} workers SIGKILLed (no retry)"
#: Issue 11: the peers' APIs at a fixed chunksize, each its own case (not a sweep variant).
PINNED = 1_000
PINNED_APIS = {
    "multiprocessing.Pool": (IMAP,),
    "concurrent.futures.ProcessPoolExecutor": (EXECUTOR_MAP,),
    "loky": (EXECUTOR_MAP,),
}
ISSUE_11_GOAL = 2.0
#: Issue 12: always-on statistics cost less than this fraction of tiny-task throughput.
STATS_BUDGET = 0.03
STATS_CASE = "stats cost: {api}, stats {state}"
SUBMIT = "submit per item"


def serial(items: int) -> dict[str, float]:
    """The physical limit: a plain loop calling the task in this process."""
    data = list(range(items))
    start = time.perf_counter()
    results = [noop(x) for x in data]
    elapsed = time.perf_counter() - start
    assert len(results) == items
    return {"serial loop": items / elapsed}


def _check(api: str, results: list[Any], items: list[int]) -> None:
    if api in (IMAP_UNORDERED,):
        results = sorted(results)
    if results != items:
        raise AssertionError(f"{api} returned {len(results)} results, not the {len(items)} inputs")


def _time_boxed(pool: Adapter, api: str, items: int) -> int:
    """How many items take about QUICK_SECONDS at the rate of a PROBE-item run."""
    probe = list(range(min(PROBE, items)))
    start = time.perf_counter()
    pool.run(api, noop, probe)
    rate = len(probe) / (time.perf_counter() - start)
    return max(len(probe), min(items, int(rate * QUICK_SECONDS) // 1000 * 1000))


def run_api(
    contender: str,
    api: str,
    items: int,
    sweep: list[int],
    quick: bool,
    pinned: list[int] | None = None,
) -> dict[str, float]:
    """Throughput (tasks/s) of ``api`` at the defaults and at each chunksize of ``sweep``
    (variants of the case "<api>, tuned"), and at each chunksize of ``pinned`` (a case of
    its own, "<api>, chunksize=N"; one measurement serves both if N is in the sweep too)."""
    figures: dict[str, float] = {}
    fixed_at_construction = ADAPTERS[contender] in (WorkhorsePool, WorkhorseExecutor)
    pinned = pinned or []
    pool = open_pool(contender, WORKERS, api=api)
    try:
        for chunksize in [None, *sweep, *[n for n in pinned if n not in sweep]]:
            count = items
            if quick and chunksize is None:
                count = _time_boxed(pool, api, items)
                if count < items:
                    note(f"quick mode: {contender} {api} at its defaults mapped {count:,} items")
            if chunksize is not None and fixed_at_construction:
                pool.close_within()
                pool = open_pool(contender, WORKERS, chunksize, api=api)
            pool.chunksize = chunksize
            data = list(range(count))
            start = time.perf_counter()
            results = pool.run(api, noop, data)
            elapsed = time.perf_counter() - start
            _check(api, results, data)
            if chunksize is None:
                figures[f"{api}, defaults"] = count / elapsed
            if chunksize in sweep:
                figures[f"{api}, tuned{VARIANT_SEP}chunksize={chunksize}"] = count / elapsed
            if chunksize in pinned:
                figures[f"{api}, chunksize={chunksize}"] = count / elapsed
            checkpoint(figures)
    finally:
        pool.close_within()
    return figures


def _fault_items(items: int, kills: int, marker_dir: str) -> list[tuple[int, bool, str]]:
    doomed = {items * (k + 1) // (kills + 1) for k in range(kills)}
    return [(i, i in doomed, os.path.join(marker_dir, f"kill-{i}")) for i in range(items)]


def _shm_entries() -> set[str]:
    try:
        return set(os.listdir("/dev/shm"))
    except OSError:
        return set()


def _note_shm_left(before: set[str], what: str) -> None:
    # Only the segments this process created (workhorse names them wh-...-<pid>-...): other
    # programs on the machine may create and remove entries meanwhile.
    mine = f"-{os.getpid()}-"
    left = sorted(n for n in _shm_entries() - before if n.startswith("wh-") and mine in n)
    if left:
        note(f"{what}: {len(left)} /dev/shm entries left after shutdown: {', '.join(left[:5])}")
    else:
        note(f"{what}: no /dev/shm segment of this process left after shutdown")


def faulty_map(items: int, kills: int) -> dict[str, float]:
    """workhorse.Pool(retries=1).map where ``kills`` tasks SIGKILL their worker once."""
    import workhorse

    figures: dict[str, float] = {}
    shm_before = _shm_entries()
    with tempfile.TemporaryDirectory(prefix="wh-bench-kill-") as markers:
        data = _fault_items(items, kills, markers)
        expected = list(range(items))
        pool = workhorse.Pool(WORKERS, retries=1)
        try:
            pool.map(noop, range(4 * WORKERS))
            clean = [(i, False, path) for i, _, path in data]
            start = time.perf_counter()
            results = pool.map(die_once, clean)
            figures[FAULT_BASE_CASE] = items / (time.perf_counter() - start)
            start = time.perf_counter()
            results = pool.map(die_once, data)
            figures[FAULT_CASE] = items / (time.perf_counter() - start)
        finally:
            pool.close()
            pool.join()
        killed = len(os.listdir(markers))
    _note_shm_left(shm_before, "faults, map")
    if results != expected or killed != kills:
        raise AssertionError(f"faulty map: {killed} kills, results correct: {results == expected}")
    note(f"faults: {kills} workers SIGKILLed during map(); all {items:,} results correct")
    return figures


def faulty_submit(items: int, kills: int) -> dict[str, float]:
    """workhorse.ProcessPoolExecutor.submit per item (no retries) with ``kills`` SIGKILLs:
    every future holds a result or ``WorkerCrashed``, and they add up."""
    import workhorse

    shm_before = _shm_entries()
    with tempfile.TemporaryDirectory(prefix="wh-bench-kill-") as markers:
        data = _fault_items(items, kills, markers)
        with workhorse.ProcessPoolExecutor(WORKERS) as executor:
            executor.submit(noop, 0).result()
            start = time.perf_counter()
            futures = [executor.submit(die_once, item) for item in data]
            wait(futures)
            elapsed = time.perf_counter() - start
    _note_shm_left(shm_before, "faults, submit")
    crashed = sum(isinstance(f.exception(), workhorse.WorkerCrashed) for f in futures)
    good = sum(f.exception() is None and f.result() == i for i, f in enumerate(futures))
    if (good, crashed) != (items - kills, kills):
        raise AssertionError(f"submit with faults: {good} results + {crashed} crashes")
    note(
        f"faults: submit() x {items:,} with {kills} SIGKILLs: {good:,} results + "
        f"{crashed} WorkerCrashed = {good + crashed:,}"
    )
    return {SUBMIT_FAULT_CASE: items / elapsed}


def stats_cost(items: int, submits: int, rounds: int) -> dict[str, float]:
    """Throughput with the per-task statistics on and off, on the same running pools: the
    counting is switched between runs (what ``WORKHORSE_STATS=0`` does to a new pool), on
    and off in alternation, so that both see the same workers and the same machine; each
    figure is the median over ``rounds``."""
    import statistics

    import workhorse

    pool, executor = workhorse.Pool(WORKERS), workhorse.ProcessPoolExecutor(WORKERS)
    events = [pool._front.backend.events, executor._front.backend.events]
    data = list(range(items))

    def run(api: str, state: str) -> float:
        for each in events:
            each.counts = each.tally if state == "on" else None
        start = time.perf_counter()
        if api == MAP:
            done = len(pool.map(noop, data))
        elif api == IMAP:
            done = sum(1 for _ in pool.imap(noop, data))
        elif api == EXECUTOR_MAP:
            done = sum(1 for _ in executor.map(noop, data))
        else:
            futures = [executor.submit(noop, i) for i in range(submits)]
            wait(futures)
            done = len(futures)
        return done / (time.perf_counter() - start)

    figures: dict[str, float] = {}
    try:
        for api in (MAP, IMAP, EXECUTOR_MAP, SUBMIT):
            for state in ("on", "off"):  # warm up: the batch sizes settle
                run(api, state)
            rates: dict[str, list[float]] = {"on": [], "off": []}
            for round_ in range(rounds):
                order = ("on", "off") if round_ % 2 == 0 else ("off", "on")
                for state in order:
                    rates[state].append(run(api, state))
            for state in ("on", "off"):
                figures[STATS_CASE.format(api=api, state=state)] = statistics.median(rates[state])
            checkpoint(figures)
    finally:
        pool.close()
        pool.join()
        executor.shutdown()
    note(
        "stats cost: the same two running pools with the per-task statistics switched on and "
        f"off between runs, in alternation; median of {rounds} runs each"
    )
    return figures


def stats_targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    """Issue 12: always-on statistics cost < 3% of the tiny-task throughput, per API."""
    lines = []
    for api in (MAP, IMAP, EXECUTOR_MAP, SUBMIT):
        on = best.get((STATS_CASE.format(api=api, state="on"), "workhorse.Pool"))
        off = best.get((STATS_CASE.format(api=api, state="off"), "workhorse.Pool"))
        head = f"issue 12: statistics on {api} cost < {STATS_BUDGET:.0%}"
        if on is None or off is None:
            lines.append(f"{head}: no figure")
            continue
        cost = 1 - on[0] / off[0]
        verdict = "met" if cost < STATS_BUDGET else "missed"
        lines.append(
            f"{head}: {fmt_figure(on[0], 'tasks/s')} on vs {fmt_figure(off[0], 'tasks/s')} "
            f"off = {cost:+.1%}: {verdict}"
        )
    return lines


def jobs(quick: bool) -> list[Job]:
    sweep = [10_000] if quick else [1_000, 5_000, 10_000, 25_000]
    items = scaled(ITEMS)
    out = [Job(SERIAL.name, "", f"{__name__}:serial", {"items": items})]
    for contender in PROCESS_POOLS:
        for api in APIS[contender.name]:
            params = {
                "contender": contender.name,
                "api": api,
                "items": items,
                "sweep": sweep,
                "quick": quick,
            }
            if api in PINNED_APIS.get(contender.name, ()):
                params["pinned"] = [PINNED]
            out.append(Job(contender.name, api, f"{__name__}:run_api", params))
    faults = {"items": items // 5 if quick else items, "kills": KILLS}
    out.append(Job("workhorse.Pool", "faults", f"{__name__}:faulty_map", faults))
    cost = {"items": items, "submits": items // 10, "rounds": 9 if quick else 21}
    out.append(Job("workhorse.Pool", "stats cost", f"{__name__}:stats_cost", cost))
    submits = items // 50 if quick else items // 5
    out.append(
        Job(
            "workhorse.ProcessPoolExecutor",
            "faults",
            f"{__name__}:faulty_submit",
            {"items": submits, "kills": KILLS},
        )
    )
    return out


def targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    """>= 2x the fastest peer at its defaults and >= 1.2x the fastest hand-tuned peer, per
    API kind (workhorse.Pool for map/imap/imap_unordered, its executor for Executor.map)."""
    lines = []
    for api in (MAP, IMAP, IMAP_UNORDERED, EXECUTOR_MAP):
        mine = "workhorse.ProcessPoolExecutor" if api == EXECUTOR_MAP else "workhorse.Pool"
        for setting, goal in (("defaults", 2.0), ("tuned", 1.2)):
            case = f"{api}, {setting}"
            peers = [
                (value, name, variant)
                for (c, name), (value, variant) in best.items()
                if c == case and not name.startswith("workhorse")
            ]
            if (case, mine) not in best or not peers:
                lines.append(f"{case}: no figure for {mine} or its peers")
                continue
            value, name, variant = max(peers)
            ratio = best[(case, mine)][0] / value
            verdict = "met" if ratio >= goal else f"missed ({ratio / goal:.3f} of the goal)"
            peer = f"{name} ({variant})" if variant else name
            lines.append(f"{case}: {mine} {ratio:.2f}x {peer} (>= {goal:g}x): {verdict}")
    return lines + issue_11_targets(best) + stats_targets(best)


def issue_11_targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    """Issue 11: workhorse at its defaults >= 2x the peer's same API, tuned where the peer
    can be tuned (``multiprocessing.Pool.map`` picks its chunksize itself; ``imap`` and
    ``Executor.map`` at ``chunksize=1000``)."""
    pinned = f"chunksize={PINNED}"
    # (workhorse contender, its API, [(peer, peer's case, how the line names it)])
    comparisons = [
        ("workhorse.Pool", MAP, [("multiprocessing.Pool", f"{MAP}, defaults", "defaults")]),
        ("workhorse.Pool", IMAP, [("multiprocessing.Pool", f"{IMAP}, {pinned}", pinned)]),
        (
            "workhorse.ProcessPoolExecutor",
            EXECUTOR_MAP,
            [
                ("concurrent.futures.ProcessPoolExecutor", f"{EXECUTOR_MAP}, {pinned}", pinned),
                ("loky", f"{EXECUTOR_MAP}, {pinned}", pinned),
            ],
        ),
    ]
    method = {MAP: "map", IMAP: "imap", EXECUTOR_MAP: "map"}
    lines = []
    for mine, api, references in comparisons:
        mine_figure = best.get((f"{api}, defaults", mine))
        refs = [best.get((case, name)) for name, case, _ in references]
        against = " and ".join(
            f"{name}.{method[api]}({setting})" for name, _, setting in references
        )
        if len(references) > 1:
            against = f"the best of {against}"
        head = f"issue 11: {mine}.{method[api]} at its defaults >= {ISSUE_11_GOAL:g}x {against}"
        measured = [figure[0] for figure in refs if figure is not None]
        if mine_figure is None or not measured:
            lines.append(f"{head}: no figure")
            continue
        ratio = mine_figure[0] / max(measured)
        goal = ISSUE_11_GOAL
        verdict = "met" if ratio >= goal else f"missed ({ratio / goal:.3f} of the goal)"
        figures = " and ".join(
            fmt_figure(figure[0], "tasks/s") if figure else "no figure" for figure in refs
        )
        lines.append(
            f"{head}: {fmt_figure(mine_figure[0], 'tasks/s')} vs {figures} = {ratio:.2f}x: "
            f"{verdict}"
        )
    return lines


def case_order(case: str) -> tuple[int, int, str]:
    """APIs in issue 4's order, defaults before the fixed chunksize (issue 11) before tuned,
    the fault-injected cases last."""
    api, _, setting = case.partition(", ")
    order = [MAP, IMAP, IMAP_UNORDERED, EXECUTOR_MAP]
    settings = ["defaults", "chunksize=", "tuned"]
    rank = next((i for i, s in enumerate(settings) if setting.startswith(s)), len(settings))
    return (order.index(api) if api in order else len(order), rank, case)


def limit(case: str, medians: Mapping[tuple[str, str], float]) -> float | None:
    return medians.get(("serial loop", SERIAL.name))


WORKLOAD = Workload(
    key="tiny",
    title="1. Tiny tasks (no-op over 100,000 items, running pool, 2 workers)",
    description=(
        "Throughput in tasks/s of a no-op mapped over 100,000 integers on a pool whose "
        "workers are already running, results consumed to the end. *defaults*: the call "
        "with no batching argument; *tuned*: the best of a chunksize sweep (named). "
        "workhorse fixes its batch size at construction (`Pool(chunksize=N)`); the "
        "others take it per call (joblib: `batch_size`)."
    ),
    unit="tasks/s",
    higher_is_better=True,
    contenders=(*PROCESS_POOLS, SERIAL),
    jobs=jobs,
    reps=(2, 5),
    timeout=(20.0, 180.0),
    limit=limit,
    limit_label="of serial loop",
    targets=targets,
    case_order=case_order,
    notes=(
        "mpire runs with `keep_alive=True` (its default restarts the workers on every map).",
        "joblib: `Parallel(n_jobs=2, return_as=list|generator|generator_unordered)`.",
    ),
)
