"""Event between threads.

As scenario 5 with threads: a producer and a consumer thread wait for an event that the main
thread sets, then exchange 0..4 through a queue. A task group starts both and waits for them at
the end of the ``with`` block.
"""

from __future__ import annotations

import time

from workhorse._tour import say

import workhorse


def producer(ready: workhorse.threads.Event, q: workhorse.threads.Queue[int]) -> None:
    """Wait for the signal, put 0..4, shut the queue down."""
    say("producer waiting for the event")
    ready.wait()
    say("producer released")
    for i in range(5):
        q.put(i)
        say(f"producer put {i}")
    q.shutdown()


def consumer(ready: workhorse.threads.Event, q: workhorse.threads.Queue[int]) -> None:
    """Wait for the signal, then print every item until the queue is shut down and drained."""
    say("consumer waiting for the event")
    ready.wait()
    say("consumer released")
    for item in q:
        say(f"consumer got {item}")
    say("consumer finished")


def main() -> None:
    ready = workhorse.threads.Event()
    q: workhorse.threads.Queue[int] = workhorse.threads.Queue()
    with workhorse.threads.group() as g:
        g.start(producer, ready, q)
        g.start(consumer, ready, q)
        time.sleep(0.1)  # paces the demo only: the threads wait for the event, not for this
        say("main sets the event")
        ready.set()
    say("both threads finished")


if __name__ == "__main__":
    main()
