"""The threading primitives' contract: Lock, RLock, BoundedSemaphore, Event, Condition,
Barrier, Timer (one fires, one is cancelled) and the module functions.
"""

import threading

fired: list[str] = []


def ring(label: str) -> None:
    fired.append(label)


if __name__ == "__main__":
    lock = threading.Lock()
    print("lock:", lock.acquire(), lock.locked(), lock.acquire(timeout=0.01))
    lock.release()
    try:
        lock.release()
    except RuntimeError as exc:
        print("release unlocked lock:", type(exc).__name__)

    rlock = threading.RLock()
    with rlock, rlock:
        print("rlock re-entered")
    try:
        rlock.release()
    except RuntimeError as exc:
        print("release un-acquired rlock:", type(exc).__name__)

    bounded = threading.BoundedSemaphore(2)
    bounded.acquire()
    bounded.release()
    try:
        bounded.release()
    except ValueError as exc:
        print("over-release:", type(exc).__name__)

    event = threading.Event()
    print("event wait timeout:", event.wait(0.01))

    cond = threading.Condition()
    items: list[int] = []

    def add() -> None:
        with cond:
            items.append(1)
            cond.notify()

    adder = threading.Thread(target=add)
    with cond:
        adder.start()
        print("wait_for:", cond.wait_for(lambda: bool(items), timeout=5))
    adder.join()

    barrier = threading.Barrier(3)
    indices: list[int] = []
    waiters = [threading.Thread(target=lambda: indices.append(barrier.wait(5))) for _ in range(2)]
    for w in waiters:
        w.start()
    indices.append(barrier.wait(5))
    for w in waiters:
        w.join()
    print("barrier indices:", sorted(indices))
    barrier.abort()
    try:
        barrier.wait(1)
    except threading.BrokenBarrierError:
        print("aborted barrier: BrokenBarrierError")

    print(
        "main:",
        threading.current_thread().name,
        threading.current_thread() is threading.main_thread(),
    )
    print("active:", threading.active_count(), type(threading.get_ident()).__name__)

    soon = threading.Timer(0.05, ring, args=("soon",))
    never = threading.Timer(5.0, ring, kwargs={"label": "never"})
    soon.start()
    never.start()
    never.cancel()
    soon.join(timeout=5)
    never.join(timeout=5)
    print("timers fired:", fired, "alive:", soon.is_alive(), never.is_alive())
