"""A Pool task raises and the caller does not catch it: the traceback the user sees must
show the task's own file, line and source text (the runner compares its shape).
"""

# stderr: traceback
from multiprocessing import Pool


def average(values: list[int]) -> float:
    return sum(values) / len(values)


if __name__ == "__main__":
    with Pool(2) as pool:
        print(pool.apply(average, ([1, 2, 3],)))
        pool.map(average, [[4], []])
