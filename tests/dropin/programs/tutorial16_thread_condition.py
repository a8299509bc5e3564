"""Tutorial 16: a producer and a consumer thread alternate through a Condition, 5 items."""

import threading

cond = threading.Condition()
buffer: list[int] = []


def producer() -> None:
    for item in range(5):
        with cond:
            cond.wait_for(lambda: not buffer)
            buffer.append(item)
            cond.notify()


def consumer(seen: list[int]) -> None:
    for _ in range(5):
        with cond:
            cond.wait_for(lambda: bool(buffer))
            seen.append(buffer.pop())
            cond.notify()


if __name__ == "__main__":
    seen: list[int] = []
    threads = [threading.Thread(target=consumer, args=(seen,)), threading.Thread(target=producer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("consumed in order:", seen)
