"""Tutorial 12: producer and consumer threads over queue.Queue, stopped by a sentinel."""

import queue
import threading

STOP = object()


def producer(q: "queue.Queue[object]") -> None:
    for item in range(5):
        q.put(item)
    q.put(STOP)


def consumer(q: "queue.Queue[object]") -> None:
    while (item := q.get()) is not STOP:
        print("consumer got", item)
        q.task_done()
    q.task_done()


if __name__ == "__main__":
    q: "queue.Queue[object]" = queue.Queue()
    threads = [
        threading.Thread(target=consumer, args=(q,)),
        threading.Thread(target=producer, args=(q,)),
    ]
    for t in threads:
        t.start()
    q.join()
    for t in threads:
        t.join()
    print("queue empty:", q.empty())
