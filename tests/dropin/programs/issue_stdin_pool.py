"""A script fed on stdin (``python - < job.py``) that maps a function of its own on a Pool."""

# run: stdin
from multiprocessing import Pool


def double(x: int) -> int:
    return 2 * x


if __name__ == "__main__":
    with Pool(2) as pool:
        print(pool.map(double, range(6)))
