"""Kill-at-every-point: SIGKILL a queue's producer or consumer at random instants.

Thousands of short-lived forked producers (``put``, ``put_many``, out-of-band items, a ring
far too small for them, so that they wrap, spill and block when bounded) and consumers
(``get``, ``get_many``) are killed after a random delay of 0-3 ms; after each kill the queue
is checked: no call hangs, every accepted item is delivered exactly once and in order, counts
are exact, iteration after ``shutdown()`` ends, and nothing is left in ``/dev/shm`` once the
queue is gone (``tests/faults/_queue_kill.py`` says exactly what is checked). The soak runs
the same trials for as long as asked: ``python -m tests.faults.soak_queues --minutes 10``
(the longer run: the default suite, which CI runs whole, stays under a minute here).
"""

from __future__ import annotations

import random
import time

import pytest

from ._helpers import no_fd_leak  # noqa: F401
from ._queue_kill import Outcome, consumer_trial, producer_trial

MAX_DELAY = 0.003  # seconds: kills land anywhere from the child's first call to its idling
BUDGET = 25.0  # seconds per test: the default suite stays fast on a loaded machine


def _run(trial: str, kills: int, seed: int) -> Outcome:
    """``kills`` trials, or as many as fit in ``BUDGET`` seconds on a busy machine."""
    out, rng = Outcome(), random.Random(seed)
    run = producer_trial if trial == "producer" else consumer_trial
    started = time.monotonic()
    while out.kills < kills and time.monotonic() - started < BUDGET:
        run(out, rng, MAX_DELAY)
        assert not out.problems(), out.problems()[:5]
    print(f"{trial}: {out.summary()} in {time.monotonic() - started:.1f} s")
    assert out.kills >= min(kills, 300), "too slow to kill enough"
    return out


@pytest.mark.timeout(120)
def test_producer_killed_at_random_instants_loses_nothing_accepted() -> None:
    out = _run("producer", 1500, seed=1)
    assert out.items > 50 * out.kills  # the kills landed while items were flowing


@pytest.mark.timeout(120)
def test_consumer_killed_at_random_instants_loses_only_its_call_in_flight() -> None:
    out = _run("consumer", 1000, seed=2)
    assert out.items > 50 * out.kills
