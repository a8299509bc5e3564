"""Tutorial 11: a Thread subclass overriding run(); default names are numbered."""

import threading


class Counter(threading.Thread):
    def __init__(self, upto: int) -> None:
        super().__init__()
        self.upto = upto
        self.total = 0

    def run(self) -> None:
        self.total = sum(range(self.upto))


if __name__ == "__main__":
    counters = [Counter(n) for n in (10, 100, 1000)]
    print("names:", [c.name for c in counters])
    print("daemon:", [c.daemon for c in counters])
    for c in counters:
        c.start()
    for c in counters:
        c.join()
    print("totals:", [c.total for c in counters])
