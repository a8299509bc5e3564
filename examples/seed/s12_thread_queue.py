"""Queue between threads.

A producer thread puts 0..4; once it is done, the main thread shuts the queue down, which wakes
the consumer blocked in ``get()`` after it has received every item. The tutorial's ``stop()``
only set a flag, which a consumer blocked in ``get()`` never saw.
"""

from __future__ import annotations

import random
import time

from workhorse._tour import say

import workhorse


def producer(q: workhorse.threads.Queue[int]) -> None:
    """Put 0..4 at an irregular pace."""
    for i in range(5):
        time.sleep(random.uniform(0.02, 0.08))
        q.put(i)
        say(f"producer put {i}")


def consumer(q: workhorse.threads.Queue[int]) -> None:
    """Print every item; the loop ends when the queue is shut down and drained."""
    for item in q:
        say(f"consumer got {item}")
    say("consumer finished")


def main() -> None:
    q: workhorse.threads.Queue[int] = workhorse.threads.Queue()
    threads = [
        workhorse.threads.Thread(target=consumer, args=(q,)),
        workhorse.threads.Thread(target=producer, args=(q,)),
    ]
    for t in threads:
        t.start()
    threads[1].join()  # the producer is done...
    q.shutdown()  # ...so stop the consumer, even while it is blocked in get()
    say("main shut the queue down")
    threads[0].join()


if __name__ == "__main__":
    main()
