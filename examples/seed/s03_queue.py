"""Queue.

A producer process puts 0..4 on a queue and shuts it down; a consumer process iterates over the
queue and ends by itself once every item is delivered. The tutorial's consumer looped forever
and had to be killed with ``terminate()``.
"""

from __future__ import annotations

import random
import time

from workhorse._tour import say

import workhorse


def producer(q: workhorse.Queue) -> None:
    """Put 0..4 at an irregular pace, then announce that nothing more will come."""
    for i in range(5):
        time.sleep(random.uniform(0.05, 0.15))
        q.put(i)
        say(f"producer put {i}")
    q.shutdown()  # put() now raises; consumers still receive everything put before
    say("producer shut the queue down")


def consumer(q: workhorse.Queue) -> None:
    """Print every item; the loop ends when the queue is shut down and drained."""
    for item in q:
        say(f"consumer got {item}")
    say("consumer finished")


def main() -> None:
    q: workhorse.Queue = workhorse.Queue()
    procs = [
        workhorse.Process(target=producer, args=(q,)),
        workhorse.Process(target=consumer, args=(q,)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()  # no terminate(): both processes end on their own
    say(f"exit codes: {[p.exitcode for p in procs]}")


if __name__ == "__main__":
    main()
