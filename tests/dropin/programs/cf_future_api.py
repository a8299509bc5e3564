"""Future's API on executor futures: shutdown(cancel_futures=True) cancels the calls that
have not started; cancel() of a queued call succeeds and of a running one fails (the call
completes); done callbacks and states.
"""

import threading
from concurrent.futures import Future, ThreadPoolExecutor


def hold(started: threading.Event, gate: threading.Event) -> int:
    started.set()
    gate.wait(timeout=10)
    return 42


def later(n: int) -> str:
    return f"later {n} ran"


if __name__ == "__main__":
    started, gate = threading.Event(), threading.Event()
    executor = ThreadPoolExecutor(max_workers=1)
    running = executor.submit(hold, started, gate)
    waiting = [executor.submit(later, n) for n in range(4)]
    started.wait(timeout=10)
    executor.shutdown(wait=False, cancel_futures=True)
    gate.set()
    print("running one:", running.result(timeout=10))
    print("cancelled:", [f.cancelled() for f in waiting])
    try:
        executor.submit(later, 99)
    except RuntimeError as exc:
        print("submit after shutdown:", exc)

    seen: list[str] = []
    started, gate = threading.Event(), threading.Event()
    with ThreadPoolExecutor(max_workers=1) as executor:
        busy = executor.submit(hold, started, gate)
        queued = executor.submit(hold, started, gate)

        def note(future: "Future[int]") -> None:
            seen.append(f"callback: cancelled={future.cancelled()}")

        queued.add_done_callback(note)
        print("cancel queued:", queued.cancel(), "cancelled:", queued.cancelled())
        started.wait(timeout=10)
        print("cancel running:", busy.cancel(), "running:", busy.running())
        gate.set()
        busy.add_done_callback(lambda f: seen.append(f"callback: result={f.result()}"))
        print("result:", busy.result(timeout=10), "done:", busy.done())
    print(sorted(seen))
