"""Leaving ``with Pool() as pool:`` right after apply_async: the stdlib terminates the pool,
so the submitted task is silently dropped and its callback never runs.
"""

# expect-workhorse: | leaving `with Pool() as pool:` | `terminate()`: the submitted work is
# expect-workhorse: dropped | `close()` + `join()`: it runs
# expect-workhorse-stdout:
# | callback got 'report written'
# | leaving the script
import time
from multiprocessing import Pool


def write_report() -> str:
    time.sleep(0.3)  # the task's nature: it takes a moment
    return "report written"


if __name__ == "__main__":
    with Pool(1) as pool:
        pool.apply_async(write_report, callback=lambda value: print("callback got", repr(value)))
    print("leaving the script")
