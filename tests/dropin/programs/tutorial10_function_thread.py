"""Tutorial 10: a function run in two threads, three lines each; the main thread joins both."""

# stdout: sorted
import threading

print_lock = threading.Lock()


def task(name: str) -> None:
    for i in range(3):
        with print_lock:
            print(f"{name} step {i} in {threading.current_thread().name}")


if __name__ == "__main__":
    threads = [threading.Thread(target=task, args=(f"t{i}",), name=f"T{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("alive after join:", [t.is_alive() for t in threads])
