"""A Process whose target raises: the child prints its traceback, the exit code is 1."""

# stderr: traceback
import multiprocessing as mp


def parse(text: str) -> int:
    return int(text)


def job() -> None:
    print("parsed", parse("12"), flush=True)
    parse("twelve")


if __name__ == "__main__":
    p = mp.Process(target=job)
    p.start()
    p.join()
    print("exit code:", p.exitcode)
