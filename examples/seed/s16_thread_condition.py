"""Condition between threads.

A producer and a consumer thread share a list and a condition and alternate over 5 items:
``wait_for`` re-checks its predicate after every wake-up, where the tutorial's ``if`` did not, and
both threads end after the last item instead of looping forever.
"""

from __future__ import annotations

import workhorse

ITEMS = 5


def main() -> None:
    cond = workhorse.threads.Condition()
    buffer: list[int] = []

    def producer() -> None:
        for i in range(ITEMS):
            with cond:
                cond.wait_for(lambda: not buffer)
                buffer.append(i)
                print(f"producer put {i}")
                cond.notify()

    def consumer() -> None:
        for _ in range(ITEMS):
            with cond:
                cond.wait_for(lambda: bool(buffer))
                print(f"consumer got {buffer.pop()}")
                cond.notify()

    with workhorse.threads.group() as g:
        g.start(producer)
        g.start(consumer)
    print("both threads finished")


if __name__ == "__main__":
    main()
