"""Tutorial 15: a Semaphore of 4 over 10 threads: never more than 4 inside."""

import threading
import time

sem = threading.Semaphore(4)
count_lock = threading.Lock()
inside = 0
most = 0


def worker() -> None:
    global inside, most
    with sem:
        with count_lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.02)  # stays inside, so that the others pile up at the semaphore
        with count_lock:
            inside -= 1


if __name__ == "__main__":
    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("at most 4 inside:", most <= 4, "- inside now:", inside)
