"""Exceptions from futures keep their type, args and message, in threads and processes."""

from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor


class QuotaExceeded(Exception):
    def __init__(self, user: str, limit: int) -> None:
        super().__init__(user, limit)
        self.user = user
        self.limit = limit


def charge(user: str) -> str:
    if user == "bob":
        raise QuotaExceeded(user, 10)
    if user == "eve":
        raise KeyError(user)
    return f"charged {user}"


def show(future: "Future[str]") -> None:
    exc = future.exception(timeout=20)
    if exc is None:
        print("ok:", future.result())
        return
    print("raised:", type(exc).__name__, exc.args)
    try:
        future.result()
    except QuotaExceeded as err:
        print("  caught QuotaExceeded for", err.user, "limit", err.limit)
    except KeyError as err:
        print("  caught KeyError", err)


if __name__ == "__main__":
    for executor_class in (ThreadPoolExecutor, ProcessPoolExecutor):
        print(executor_class.__name__)
        with executor_class(max_workers=2) as executor:
            for user in ("ann", "bob", "eve"):
                show(executor.submit(charge, user))
