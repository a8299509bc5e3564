"""Tutorial 18: ProcessPoolExecutor.submit; result() blocks until each future is ready."""

import concurrent.futures


def task(total: int) -> int:
    return sum(range(total))


if __name__ == "__main__":
    with concurrent.futures.ProcessPoolExecutor(max_workers=5) as executor:
        futures = [executor.submit(task, total) for total in (100, 1000, 10000, 100000)]
        for future in futures:
            print(future.result(), future.done())
    print("all done:", all(f.done() for f in futures))
