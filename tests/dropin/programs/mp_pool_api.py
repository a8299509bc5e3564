"""Pool's methods: map (with chunksize), imap, imap_unordered, starmap, map_async, and
apply_async with callback and error_callback (the callbacks run in the parent).
"""

from multiprocessing import Pool


def square(x: int) -> int:
    return x * x


def power(base: int, exponent: int) -> int:
    return int(base**exponent)


def check(n: int) -> int:
    if n % 4 == 3:
        raise ArithmeticError(f"bad input {n}")
    return n + 100


if __name__ == "__main__":
    collected: list[list[int]] = []
    values: list[int] = []
    errors: list[str] = []
    with Pool(processes=2) as pool:
        print("map:", pool.map(square, range(10)))
        print("map chunked:", pool.map(square, range(10), chunksize=3))
        print("imap:", list(pool.imap(square, range(6))))
        print("imap_unordered:", sorted(pool.imap_unordered(square, range(6))))
        print("starmap:", pool.starmap(power, [(2, 3), (3, 2), (10, 0)]))
        print("starmap_async:", pool.starmap_async(power, [(2, 5)]).get(timeout=10))
        async_map = pool.map_async(square, [7, 8], callback=collected.append)
        async_map.wait(timeout=10)
        print("map_async:", async_map.get(), async_map.ready(), async_map.successful())
        pending = [
            pool.apply_async(
                check,
                (n,),
                callback=values.append,
                error_callback=lambda exc: errors.append(f"{type(exc).__name__}: {exc}"),
            )
            for n in range(8)
        ]
        for result in pending:
            result.wait(timeout=10)
        print("apply:", pool.apply(check, (1,)))
    print("map_async callback saw:", collected)
    print("apply_async values:", sorted(values))
    print("apply_async errors:", sorted(errors))
    print("successful:", [r.successful() for r in pending])
