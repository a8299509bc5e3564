"""threading.local: each thread sees its own attributes, the main thread's are untouched;
and in executor threads (thread_name_prefix) set up by an initializer.
"""

import threading
from concurrent.futures import ThreadPoolExecutor


class Context(threading.local):
    def __init__(self) -> None:
        self.calls = 0


context = Context()
plain = threading.local()


def work(name: str, out: dict[str, tuple[int, str]]) -> None:
    for _ in range(3):
        context.calls += 1
    plain.owner = name
    out[name] = (context.calls, plain.owner)


def init(prefix: str) -> None:
    plain.prefix = prefix


def label(n: int) -> tuple[str, bool]:
    return f"{plain.prefix}{n}", threading.current_thread().name.startswith("loader")


if __name__ == "__main__":
    plain.owner = "main"
    out: dict[str, tuple[int, str]] = {}
    threads = [threading.Thread(target=work, args=(f"t{i}", out)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(sorted(out.items()))
    print("main:", context.calls, plain.owner)
    with ThreadPoolExecutor(
        2, thread_name_prefix="loader", initializer=init, initargs=("item-",)
    ) as ex:
        print(list(ex.map(label, range(4))))
