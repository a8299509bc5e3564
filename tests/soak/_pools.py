"""Pool trials: maps and submits of mixed tasks while a chaos thread SIGKILLs workers.

One trial: a ``ProcessPoolExecutor`` or a ``Pool`` of two workers (fork; a share of
forkserver and spawn), with or without ``retries``, sometimes with a per-task ``timeout``
and a task that outlives it; one operation over a few hundred to a few thousand items of
``_tasks.work`` (raising items, 1-4 MiB NumPy results, slow items, fast items); meanwhile a
chaos thread kills a random *ready* worker every 50 us to 30 ms (fork) or 20-500 ms (spawn
and forkserver, whose workers take that long to start, and trials with a 0.2 s timeout,
whose sleeper must live that long to time out). Only ready workers: killing every
worker as it starts is another fault, which breaks the pool (``PoolBroken``) by design.

Every item must end with its right value, its own ``ValueError``, ``WorkerCrashed``, or
(with a timeout) ``TaskTimeout`` -- a ``TimeoutError``, unlike the ``multiprocessing
.TimeoutError`` of a ``Pool`` wait that expires, which is the soak's "hung"; the counts add
up to the items submitted; no result comes for the wrong item or twice; every wait is
bounded (``BOUND``). Operations that stop at the first error by contract
(``Executor.map``, ``Pool.map_async``) are checked up to it. The trial's leak check
(``_ledger.trial``) then sees every segment of the zero-copy path gone.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import random
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from multiprocessing import TimeoutError as PoolTimeoutError
from typing import Any

import workhorse
from workhorse._backends.process._core import ProcessEngine

from . import _tasks
from ._ledger import BOUND, SLACK, Ledger

KIND = "pool"
OPS = {
    "executor": ("submit", "submit", "map"),
    "pool": ("imap", "imap_unordered", "apply_async", "map_async"),
}


class Chaos:
    """A thread killing a random ready worker of ``engine`` at random intervals."""

    def __init__(self, engine: object, rng: random.Random, gaps: tuple[float, float]) -> None:
        assert isinstance(engine, ProcessEngine)
        self.engine, self.kills = engine, 0
        self._rng = random.Random(rng.randrange(1 << 30))
        self._gaps = (math.log(gaps[0]), math.log(gaps[1]))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-pool-chaos")
        self._thread.start()

    def _run(self) -> None:
        rng = self._rng
        while not self._stop.wait(math.exp(rng.uniform(*self._gaps))):
            slots = list(self.engine._slots)
            ready = [w.pid for w in slots if w is not None and w.ready and w.pid]
            if ready:
                try:
                    os.kill(rng.choice(ready), signal.SIGKILL)
                    self.kills += 1
                except ProcessLookupError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Tally:
    """Outcomes of one trial's items."""

    def __init__(self, ledger: Ledger, what: str, timeouts: bool) -> None:
        self.ledger, self.what, self.timeouts = ledger, what, timeouts
        self.counts: Counter[str] = Counter()
        self.expected = 0  # items that must each end with exactly one outcome

    def value(self, x: int, value: Any, echoed: bool = False) -> None:
        if _tasks.right(x, value, echoed):
            self.counts["ok"] += 1
        else:
            got = value[0] if isinstance(value, tuple) and value else value
            self.counts["wrong"] += 1
            self.problem("wrong", f"item {x} returned a value of item {got!r}")

    def error(self, x: int | None, exc: BaseException) -> None:
        if isinstance(exc, workhorse.WorkerCrashed):
            self.counts["crashed"] += 1
        elif isinstance(exc, workhorse.TaskTimeout) and self.timeouts:
            self.counts["timed out"] += 1
        elif type(exc) is ValueError and (x is None or str(exc) == f"bad item {x}"):
            self.counts["raised"] += 1
        else:
            self.counts["wrong"] += 1
            self.problem("wrong", f"item {x} failed with {exc!r}")

    def problem(self, category: str, text: str) -> None:
        self.ledger.problem(category, KIND, f"{self.what}: {text}")

    def total(self) -> int:
        return sum(self.counts.values())

    def expect(self, items: int) -> None:
        self.expected += items

    def skip(self, items: int) -> None:
        """``items`` will not be seen: a problem (a hang) was reported for them already."""
        self.expected -= items

    def check(self) -> None:
        """The outcomes must add up to the items, exactly."""
        if self.total() < self.expected:
            self.problem("missing", f"{self.total()} outcomes for {self.expected} items")
        elif self.total() > self.expected:
            self.problem("duplicated", f"{self.total()} outcomes for {self.expected} items")


def pool_trial(ledger: Ledger, rng: random.Random) -> None:
    """One pool trial (see the module docstring)."""
    r = rng.random()
    method = "fork" if r < 0.7 else "forkserver" if r < 0.9 else "spawn"
    flavour = rng.choice(("executor", "pool"))
    op = rng.choice(OPS[flavour])
    retries = rng.choice((0, 0, 1, 3))
    timeout = 0.2 if rng.random() < 0.15 else None
    chunksize: int | str = 1 if rng.random() < 0.2 else "auto"
    n = rng.randint(300, 3000) if method == "fork" else rng.randint(100, 600)
    what = f"{flavour}.{op} ({method}, retries={retries}, timeout={timeout}, chunks={chunksize})"
    tally = Tally(ledger, what, timeout is not None)
    context = workhorse.processes.get_context(method)
    options: dict[str, Any] = {"retries": retries, "timeout": timeout, "chunksize": chunksize}
    # Kills far apart enough for workers to start (spawn, forkserver), and for the sleeper
    # to reach its timeout now and then instead of always being killed first.
    gaps = (5e-5, 0.03) if method == "fork" and timeout is None else (0.02, 0.5)
    if flavour == "executor":
        executor = workhorse.ProcessPoolExecutor(2, mp_context=context, **options)
        chaos = Chaos(executor._front.backend, rng, gaps)
        try:
            _run_executor(executor, op, n, tally, timeout is not None)
        finally:
            chaos.stop()
            _bounded(tally, "shutdown(wait=True)", executor.shutdown, executor.terminate)
    else:
        pool = workhorse.Pool(2, context=context, **options)
        chaos = Chaos(pool._front.backend, rng, gaps)
        try:
            _run_pool(pool, op, n, tally, timeout is not None)
        finally:
            chaos.stop()
            pool.close()
            _bounded(tally, "close(); join()", lambda: pool.join(BOUND), pool.terminate)
    tally.check()
    stats = ledger.kind(KIND)
    stats.kills += chaos.kills
    stats.items += tally.total()
    for outcome, count in tally.counts.items():
        ledger.note(KIND, outcome, count)
    ledger.note(KIND, f"{method} pools")


def _bounded(
    tally: Tally, what: str, call: Callable[[], object], rescue: Callable[[], object]
) -> None:
    """Run a call that has no timeout of its own in a thread, bounded; ``rescue`` if hung."""
    thread = threading.Thread(target=call, name="soak-pool-shutdown")
    thread.start()
    thread.join(BOUND)
    if thread.is_alive():
        tally.problem("hung", f"{what} took more than {BOUND} s")
        rescue()
        thread.join(BOUND)


def _run_executor(
    executor: workhorse.ProcessPoolExecutor, op: str, n: int, tally: Tally, timeouts: bool
) -> None:
    if op == "map":  # Executor.map stops at the first error: only quiet items
        results = executor.map(_tasks.quiet, range(n), timeout=BOUND)
        seen = 0
        try:
            for x, value in enumerate(results):
                tally.value(x, value)
                seen += 1
        except Exception as exc:
            tally.error(seen, exc)
            seen += 1
        tally.expect(seen)
        if seen < n and not tally.counts["crashed"] + tally.counts["timed out"]:
            tally.problem("missing", f"map yielded {seen} of {n} results, no error")
        return
    futures: list[tuple[int, bool, concurrent.futures.Future[Any]]] = []
    for x in range(n):
        if x % 29 == 5:  # a large argument, answered by reference into its segment
            futures.append((x, True, executor.submit(_tasks.echo_half, x, _tasks.echo_argument(x))))
        else:
            futures.append((x, False, executor.submit(_tasks.work, x)))
    if timeouts:
        futures.append((n, False, executor.submit(_tasks.sleeper, n)))
    _, not_done = concurrent.futures.wait([f for _, _, f in futures], timeout=BOUND + SLACK)
    tally.expect(len(futures))
    if not_done:
        tally.problem("hung", f"{len(not_done)} of {len(futures)} futures not done in {BOUND} s")
        tally.skip(len(not_done))
    for x, echoed, future in futures:
        if future in not_done:
            continue
        error = future.exception()
        if error is not None:
            tally.error(x, error)
        elif x == n:
            tally.value(x, None)  # the sleeper outlived its timeout: wrong
        else:
            tally.value(x, future.result(), echoed)


def _numbers(n: int) -> Iterator[int]:
    yield from range(n)  # a generator: no length, pulled lazily by imap


def _run_pool(pool: workhorse.Pool, op: str, n: int, tally: Tally, timeouts: bool) -> None:
    sleeper = pool.apply_async(_tasks.sleeper, (n,)) if timeouts else None
    if op == "imap":
        results = pool.imap(_tasks.work, _numbers(n))
        tally.expect(n)
        for x in range(n + 1):
            try:
                value = results.next(timeout=BOUND)
            except StopIteration:
                break  # early: counted as missing by tally.check()
            except PoolTimeoutError:
                tally.problem("hung", f"imap result {x} not in within {BOUND} s")
                tally.skip(n - x)
                break
            except Exception as exc:
                tally.error(x, exc)
                continue
            if x == n:
                tally.problem("duplicated", f"imap yielded {n + 1} results for {n} items")
            else:
                tally.value(x, value)
    elif op == "imap_unordered":
        _imap_unordered(pool, n, tally)
    elif op == "apply_async":
        pending = [pool.apply_async(_tasks.work, (x,)) for x in range(n)]
        tally.expect(n)
        for x, result in enumerate(pending):
            try:
                tally.value(x, result.get(timeout=BOUND))
            except PoolTimeoutError:
                tally.problem("hung", f"apply_async({x}).get() not in within {BOUND} s")
                tally.skip(1)
            except Exception as exc:
                tally.error(x, exc)
    else:  # map_async: the first error in input order, or every result
        try:
            values = pool.map_async(_tasks.quiet, range(n)).get(BOUND)
            tally.expect(n)
            if len(values) != n:
                tally.problem("wrong", f"map_async returned {len(values)} values for {n} items")
            for x, value in enumerate(values):
                tally.value(x, value)
        except PoolTimeoutError:
            tally.problem("hung", f"map_async().get() not in within {BOUND} s")
        except Exception as exc:
            tally.expect(1)  # the first error in input order stands for the call
            tally.error(None, exc)
    if sleeper is not None:
        tally.expect(1)
        try:
            tally.value(n, sleeper.get(timeout=BOUND))  # outlived its timeout: wrong
        except PoolTimeoutError:
            tally.problem("hung", f"a task with a 0.2 s timeout still running after {BOUND} s")
            tally.skip(1)
        except Exception as exc:
            tally.error(n, exc)


def _imap_unordered(pool: workhorse.Pool, n: int, tally: Tally) -> None:
    """Results in any order: each item once, errors counted; the sum must be ``n``."""
    results = pool.imap_unordered(_tasks.work, _numbers(n))
    tally.expect(n)
    seen: set[int] = set()
    for _ in range(n + 1):
        try:
            value = results.next(timeout=BOUND)
        except StopIteration:
            break
        except PoolTimeoutError:
            tally.problem("hung", f"imap_unordered: no result within {BOUND} s")
            tally.skip(n - tally.total())
            return
        except Exception as exc:
            tally.error(None, exc)
            continue
        x = value[0] if isinstance(value, tuple) and value else -1
        if x in seen:
            tally.problem("duplicated", f"imap_unordered yielded item {x} twice")
        seen.add(x)
        tally.value(x, value)
