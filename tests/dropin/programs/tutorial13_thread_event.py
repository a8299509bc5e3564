"""Tutorial 13: two threads wait on an Event; the main thread sets it."""

# stdout: sorted
import threading

print_lock = threading.Lock()


def waiter(event: threading.Event) -> None:
    event.wait()
    with print_lock:
        print(threading.current_thread().name, "released")


if __name__ == "__main__":
    event = threading.Event()
    threads = [threading.Thread(target=waiter, args=(event,), name=f"w{i}") for i in range(2)]
    for t in threads:
        t.start()
    print("before set:", event.is_set(), event.wait(timeout=0.05))
    event.set()
    for t in threads:
        t.join()
    print("after set:", event.is_set())
