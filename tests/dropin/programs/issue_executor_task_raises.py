"""A ProcessPoolExecutor task raises and the caller does not catch it: the traceback must
show the task's own file, line and source text (the runner compares its shape).
"""

# stderr: traceback
from concurrent.futures import ProcessPoolExecutor


def lookup(table: dict[str, int], key: str) -> int:
    return table[key]


if __name__ == "__main__":
    with ProcessPoolExecutor(max_workers=1) as executor:
        future = executor.submit(lookup, {"a": 1}, "b")
        future.result()
