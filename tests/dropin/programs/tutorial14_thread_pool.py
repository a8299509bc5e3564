"""Tutorial 14: a thread pool of 5 running 10 apply_async tasks, as multiprocessing.pool's
ThreadPool and as multiprocessing.dummy's Pool (the same API backed by threads).
"""

import threading
from multiprocessing.dummy import Pool as DummyPool
from multiprocessing.pool import ThreadPool


def task(n: int) -> tuple[int, bool]:
    return n * 10, threading.current_thread() is not threading.main_thread()


if __name__ == "__main__":
    pool = ThreadPool(5)
    results = [pool.apply_async(task, (n,)) for n in range(10)]
    pool.close()
    pool.join()
    print([r.get(timeout=5) for r in results])
    with DummyPool(3) as dummy:
        print(dummy.map(task, range(4)))
