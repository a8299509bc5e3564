"""A Process subclass holding an open file object, written to by the child.

Fine with the stdlib's default start method on Linux up to 3.13 (fork: the object is
inherited, never pickled).
"""

import multiprocessing
from typing import TextIO


class Logger(multiprocessing.Process):
    def __init__(self, log: TextIO) -> None:
        super().__init__()
        self.log = log

    def run(self) -> None:
        self.log.write("written by the child\n")
        self.log.flush()


if __name__ == "__main__":
    with open("run.log", "w") as log:
        log.write("written by the parent\n")
        log.flush()
        child = Logger(log)
        child.start()
        child.join()
    with open("run.log") as log:
        print(log.read(), end="")
    print("exit code:", child.exitcode)
