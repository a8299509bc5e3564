"""The odd corners of fault-matrix §1: strange exceptions and results (A14-A16, A21),
functions defined interactively (I2), a spawn script without a main guard (I6), a worker
killed while the pool shuts down (D6), and Ctrl-C inside a process Condition.wait (H1)."""

from __future__ import annotations

import ctypes
import dataclasses
import faulthandler
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

import workhorse

from ._helpers import BOUND, no_fd_leak  # noqa: F401

FORK = workhorse.with_start_method("fork")


@dataclasses.dataclass(frozen=True)
class FrozenError(Exception):
    code: int


class FalseyError(Exception):
    def __bool__(self) -> bool:
        return False


def raise_frozen() -> None:
    raise FrozenError(7)


def raise_falsey() -> None:
    raise FalseyError("falsey")


def return_exception() -> ValueError:
    return ValueError("returned, not raised")


class _CrashOnDelete:
    """Segfaults when a worker drops it -- never in the test process that made it."""

    def __init__(self) -> None:
        self.creator = os.getpid()

    def __del__(self) -> None:
        if os.getpid() != self.creator:
            faulthandler.disable()
            ctypes.string_at(0)


def result_then_crash_on_cleanup(value: int) -> int:
    # The crash happens when the worker drops the argument list after sending the results.
    return value


def test_exception_oddities_keep_their_type() -> None:
    with FORK.ProcessPoolExecutor(1) as pool:
        frozen = pool.submit(raise_frozen).exception(BOUND)
        assert isinstance(frozen, FrozenError)
        assert frozen.code == 7
        falsey = pool.submit(raise_falsey).exception(BOUND)
        assert isinstance(falsey, FalseyError)
        returned = pool.submit(return_exception).result(BOUND)
        assert isinstance(returned, ValueError)
        assert str(returned) == "returned, not raised"


def test_crash_after_the_result_was_sent_loses_nothing() -> None:
    """A21: the worker drops a finished batch while idle, so a crashing ``__del__`` costs no
    task -- neither its own (its result was sent) nor the next one."""
    with FORK.ProcessPoolExecutor(1, chunksize=1) as pool:
        first = pool.submit(result_then_crash_on_cleanup, 1)
        crash = pool.submit(result_then_crash_on_cleanup, _CrashOnDelete())
        assert first.result(BOUND) == 1
        assert isinstance(crash.result(BOUND), _CrashOnDelete)
        assert [pool.submit(abs, -n).result(BOUND) for n in range(5)] == list(range(5))


INTERACTIVE = textwrap.dedent(
    """
    import workhorse
    offset = 10
    def add(x):
        return x + offset
    def make(n):
        def inner(x):
            return x * n if x < 3 else inner(x - 1)
        return inner
    if __name__ == "__main__":
        ctx = workhorse.with_start_method("{method}")
        with ctx.ProcessPoolExecutor(2) as pool:
            print(list(pool.map(add, range(3))), list(pool.map(make(2), range(5))),
                  pool.submit(lambda: "lambda ok").result(), flush=True)
    """
)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_functions_defined_in_python_dash_c(method: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", INTERACTIVE.format(method=method)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[10, 11, 12] [0, 2, 4, 4, 4] lambda ok"


NO_MAIN_GUARD = textwrap.dedent(
    """
    import workhorse
    ctx = workhorse.with_start_method("spawn")
    pool = ctx.ProcessPoolExecutor(2)
    try:
        print("result", pool.submit(abs, -1).result(timeout=30), flush=True)
    except Exception as exc:
        print("error", type(exc).__name__, flush=True)
    pool.shutdown()
    """
)


def test_spawn_script_without_main_guard_is_no_fork_bomb(tmp_path: Any) -> None:
    script = tmp_path / "no_guard.py"
    script.write_text(NO_MAIN_GUARD)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=90, check=False
    )
    assert time.monotonic() - started < 90
    assert "error PoolBroken" in done.stdout, (done.stdout, done.stderr[-2000:])


def crash_after(event: Any) -> None:
    event.wait(BOUND)
    faulthandler.disable()  # a real crash, without a stack dump in the test output
    os.kill(os.getpid(), signal.SIGSEGV)


def test_worker_crash_after_shutdown_was_called_is_reported() -> None:
    event = workhorse.Event()
    pool = FORK.ProcessPoolExecutor(2)
    future = pool.submit(crash_after, event)
    other = pool.submit(abs, -3)
    pool.shutdown(wait=False)
    event.set()
    with pytest.raises(workhorse.WorkerCrashed, match="SIGSEGV"):
        future.result(BOUND)
    assert other.result(BOUND) == 3
    pool.shutdown(wait=True)


CONDITION_WAIT = textwrap.dedent(
    """
    import workhorse
    if __name__ == "__main__":
        condition = workhorse.Condition()
        with condition:
            print("waiting", flush=True)
            try:
                condition.wait(60)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
    """
)


def test_sigint_interrupts_a_process_condition_wait() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CONDITION_WAIT], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "waiting"
    time.sleep(0.2)  # slack: let it enter the wait (the outcome does not depend on it)
    started = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=BOUND)
    assert "interrupted" in out
    assert time.monotonic() - started < 5
