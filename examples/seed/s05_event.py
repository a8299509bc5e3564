"""Event.

Two processes block on ``event.wait()`` until the parent sets the event, then run the producer and
consumer of scenario 3. The two processes run in a task group, which waits for both at the end
of the ``with`` block and would report a failure of either.
"""

from __future__ import annotations

import time

from workhorse._tour import say

import workhorse


def producer(ready: workhorse.Event, q: workhorse.Queue) -> None:
    """Wait for the signal, put 0..4, shut the queue down."""
    say("producer waiting for the event")
    ready.wait()
    say("producer released")
    for i in range(5):
        q.put(i)
        say(f"producer put {i}")
    q.shutdown()


def consumer(ready: workhorse.Event, q: workhorse.Queue) -> None:
    """Wait for the signal, then print every item until the queue is shut down and drained."""
    say("consumer waiting for the event")
    ready.wait()
    say("consumer released")
    for item in q:
        say(f"consumer got {item}")
    say("consumer finished")


def main() -> None:
    ready = workhorse.Event()
    q: workhorse.Queue = workhorse.Queue()
    with workhorse.group() as g:
        g.start(producer, ready, q)
        g.start(consumer, ready, q)
        time.sleep(0.2)  # paces the demo only: the children wait for the event, not for this
        say("parent sets the event")
        ready.set()
    say("both processes finished")


if __name__ == "__main__":
    main()
