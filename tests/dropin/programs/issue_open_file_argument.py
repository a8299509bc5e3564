"""An open file passed as a task argument is refused: a TypeError naming the file's type,
from Pool.apply and from a ProcessPoolExecutor future.
"""

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool
from typing import TextIO


def first_line(f: TextIO) -> str:
    return f.readline()


if __name__ == "__main__":
    with open("data.txt", "w") as out:
        out.write("line one\nline two\n")
    with open("data.txt") as f:
        with Pool(1) as pool:
            try:
                pool.apply(first_line, (f,))
            except TypeError as exc:
                print("Pool: TypeError naming the type:", "TextIOWrapper" in str(exc))
        with ProcessPoolExecutor(max_workers=1) as executor:
            try:
                executor.submit(first_line, f).result(timeout=20)
            except TypeError as exc:
                print("executor: TypeError naming the type:", "TextIOWrapper" in str(exc))
