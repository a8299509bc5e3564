"""Condition.

A producer and a consumer process share a queue and a condition and strictly alternate: the
producer waits while the queue holds an item, the consumer while it is empty. ``wait_for``
re-checks its predicate after every wake-up (the tutorial's ``if`` did not), and both stop after
5 items instead of looping forever.
"""

from __future__ import annotations

from workhorse._tour import say

import workhorse

ITEMS = 5


def producer(q: workhorse.Queue, cond: workhorse.Condition) -> None:
    """Put one item at a time, each once the consumer has taken the previous one."""
    for i in range(ITEMS):
        with cond:
            cond.wait_for(q.empty)
            q.put(i)
            say(f"producer put {i}")
            cond.notify()


def consumer(q: workhorse.Queue, cond: workhorse.Condition) -> None:
    """Take each item as soon as there is one."""
    for _ in range(ITEMS):
        with cond:
            cond.wait_for(lambda: not q.empty())
            say(f"consumer got {q.get()}")
            cond.notify()


def main() -> None:
    q: workhorse.Queue = workhorse.Queue()
    cond = workhorse.Condition()
    procs = [
        workhorse.Process(target=producer, args=(q, cond)),
        workhorse.Process(target=consumer, args=(q, cond)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    say(f"exit codes: {[p.exitcode for p in procs]}")


if __name__ == "__main__":
    main()
