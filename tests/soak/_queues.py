"""Queue trials: the producer and consumer kills of ``tests/faults/_queue_kill.py``.

Those trials (a fresh small-ring queue, a forked producer or consumer SIGKILLed 0-3 ms into
its work, then exact checks of what was delivered, ``qsize()``, ``shutdown()`` iteration and
``/dev/shm``) are imported, not copied: the soak and the queue tests check the same thing.
One soak trial is a round of a few of them (each takes milliseconds, less than the soak's
per-trial leak check), and their ``Outcome`` is carried into the ledger.
"""

from __future__ import annotations

import random

# ``faults`` is a top-level package when tests/ is on sys.path (pytest's rootdir-relative
# import, and ``python -m tests.soak``, whose __main__ puts it there).
from faults._queue_kill import Outcome, consumer_trial, producer_trial

from ._ledger import Ledger

KIND = "queue"
MAX_DELAY = 0.003  # seconds: what the queue tests use (the child's whole run, at most)
ROUND = 4  # kills per soak trial


class QueueTrials:
    """Runs rounds of queue trials and carries their outcomes into a ledger."""

    def __init__(self) -> None:
        self.out = {"producer": Outcome(), "consumer": Outcome()}
        self._seen = {"producer": 0, "consumer": 0}
        self._items = 0
        self._recorded: dict[tuple[str, str], int] = {}

    def __call__(self, ledger: Ledger, rng: random.Random) -> None:
        for _ in range(ROUND // 2):
            producer_trial(self.out["producer"], rng, MAX_DELAY)
            consumer_trial(self.out["consumer"], rng, MAX_DELAY)
        self._carry(ledger)

    def _carry(self, ledger: Ledger) -> None:
        stats = ledger.kind(KIND)
        for who, out in self.out.items():
            fresh = out.kills - self._seen[who]
            self._seen[who] = out.kills
            stats.kills += fresh
            ledger.note(KIND, f"{who} killed", fresh)
        producer, consumer = self.out["producer"], self.out["consumer"]
        items = producer.items + consumer.items
        stats.items += items - self._items
        self._items = items
        stats.notes["in-flight items delivered"] = producer.in_flight
        stats.notes["items taken by killed consumers"] = consumer.lost_in_consumer
        for who, out in self.out.items():
            for category in ("wrong", "missing", "hung", "leaked"):
                problems: list[str] = getattr(out, category)
                for text in problems[self._recorded.get((who, category), 0) :]:
                    ledger.problem(category, KIND, f"{who}: {text}")
                self._recorded[who, category] = len(problems)
