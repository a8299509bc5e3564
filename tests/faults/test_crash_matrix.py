"""The crash matrix, as data: (stage, fault) -> the exception the affected future raises.

The types are the stdlib's (CPython's ``ExecutorDeadlockTest``): what pickling raised --
``SystemExit`` itself, or a ``SerializationError`` that is also of the raised type --
``BrokenProcessPool`` (here ``DeserializationError``) for what cannot be unpickled, and
``BrokenProcessPool`` (``WorkerCrashed``) for a dead worker; only the message is workhorse's.

Stages: the parent pickling the task's argument (submit-pickle), the worker unpickling it
(worker-unpickle), the task itself (run), the worker pickling the result (result-pickle) and
the parent unpickling the result (parent-unpickle). Faults: segfault, ``os._exit``,
``sys.exit``, an ordinary exception, SIGKILL. In every row only the guilty future fails,
its siblings complete, and the pool goes on with the same workers or new ones.

Not in the matrix, by design: a segfault, ``os._exit`` or SIGKILL while the *parent*
pickles an argument or unpickles a result kills the caller's own process (fault-matrix A3);
nothing can report it.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
from collections.abc import Callable
from typing import Any

import pytest

import workhorse

from ._helpers import (
    EXIT_CODE,
    FORK,
    CrashError,
    FaultAtPickle,
    FaultAtUnpickle,
    double,
    identity,
    no_fd_leak,  # noqa: F401  (autouse)
    return_fault_at_pickle,
    return_fault_at_unpickle,
    run_fault,
)

SIGSEGV = "killed by SIGSEGV"
SIGKILL = "killed by SIGKILL"
EXITED = f"exited with code {EXIT_CODE}"

# (stage, fault, expected exception type, regex its message must match)
MATRIX: list[tuple[str, str, type[BaseException], str]] = [
    ("submit-pickle", "raise", CrashError, r"FaultAtPickle.*CrashError"),
    ("submit-pickle", "sys_exit", SystemExit, str(EXIT_CODE)),
    ("worker-unpickle", "raise", workhorse.DeserializationError,
     r"could not be unpickled in the worker: CrashError: message raised on purpose"),
    ("worker-unpickle", "sys_exit", workhorse.DeserializationError,
     r"could not be unpickled in the worker: SystemExit"),
    ("worker-unpickle", "segfault", workhorse.WorkerCrashed, rf"task identity.*{SIGSEGV}"),
    ("worker-unpickle", "os_exit", workhorse.WorkerCrashed, rf"task identity.*{EXITED}"),
    ("worker-unpickle", "sigkill", workhorse.WorkerCrashed, rf"task identity.*{SIGKILL}"),
    ("run", "raise", CrashError, r"message raised on purpose"),
    ("run", "sys_exit", SystemExit, str(EXIT_CODE)),
    ("run", "segfault", workhorse.WorkerCrashed, rf"task run_fault\('segfault'\).*{SIGSEGV}"),
    ("run", "os_exit", workhorse.WorkerCrashed, rf"task run_fault\('os_exit'\).*{EXITED}"),
    ("run", "sigkill", workhorse.WorkerCrashed, rf"task run_fault\('sigkill'\).*{SIGKILL}"),
    ("result-pickle", "raise", CrashError, r"FaultAtPickle.*CrashError"),
    ("result-pickle", "sys_exit", SystemExit, str(EXIT_CODE)),
    ("result-pickle", "segfault", workhorse.WorkerCrashed, rf"return_fault_at_pickle.*{SIGSEGV}"),
    ("result-pickle", "os_exit", workhorse.WorkerCrashed, rf"return_fault_at_pickle.*{EXITED}"),
    ("result-pickle", "sigkill", workhorse.WorkerCrashed, rf"return_fault_at_pickle.*{SIGKILL}"),
    ("parent-unpickle", "raise", workhorse.DeserializationError,
     r"result of task return_fault_at_unpickle\('raise'\) could not be unpickled.*CrashError"),
    ("parent-unpickle", "sys_exit", workhorse.DeserializationError,
     r"result of task return_fault_at_unpickle\('sys_exit'\) could not be unpickled.*SystemExit"),
]  # fmt: skip


def _guilty_call(stage: str, kind: str) -> tuple[Callable[..., Any], Any]:
    if stage == "submit-pickle":
        return identity, FaultAtPickle(kind)
    if stage == "worker-unpickle":
        return identity, FaultAtUnpickle(kind)
    if stage == "run":
        return run_fault, kind
    if stage == "result-pickle":
        return return_fault_at_pickle, kind
    return return_fault_at_unpickle, kind


@pytest.mark.parametrize(("stage", "kind", "expected", "match"), MATRIX,
                         ids=[f"{r[0]}-{r[1]}" for r in MATRIX])  # fmt: skip
@pytest.mark.parametrize("chunksize", [1, "auto"])
def test_crash_matrix_fails_only_the_guilty_task(
    stage: str, kind: str, expected: type[BaseException], match: str, chunksize: Any
) -> None:
    fn, arg = _guilty_call(stage, kind)
    with workhorse.ProcessPoolExecutor(2, mp_context=FORK, chunksize=chunksize) as pool:
        before = [pool.submit(double, i) for i in range(20)]
        guilty = pool.submit(fn, arg)
        after = [pool.submit(double, i) for i in range(20, 40)]
        with pytest.raises(expected, match=match) as info:
            guilty.result(timeout=30)
        assert [f.result(timeout=30) for f in before + after] == [2 * i for i in range(40)]
        assert pool.submit(double, 21).result(timeout=30) == 42  # still usable
    if isinstance(info.value, workhorse.WorkerCrashed):
        assert isinstance(info.value, concurrent.futures.process.BrokenProcessPool)
        assert info.value.pid is not None
    pickling = stage.endswith("-pickle")
    if pickling and isinstance(info.value, CrashError):  # the stdlib's type, and our detail
        assert isinstance(info.value, workhorse.SerializationError)
    if isinstance(info.value, workhorse.DeserializationError):
        assert isinstance(info.value, concurrent.futures.process.BrokenProcessPool)
    if pickling and isinstance(info.value, SystemExit):  # as the stdlib does, with a note
        assert any("pickle" in note for note in info.value.__notes__)


def test_crash_matrix_repeated_pickling_errors_never_wedge_the_pool() -> None:
    """A22: 100 tasks failing at pickle, then 100 good ones, on one worker."""
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK) as pool:
        bad = [pool.submit(identity, FaultAtPickle("raise")) for _ in range(100)]
        good = [pool.submit(double, i) for i in range(100)]
        assert [f.result(timeout=30) for f in good] == [2 * i for i in range(100)]
        for future in bad:
            assert isinstance(future.exception(timeout=30), workhorse.SerializationError)


def test_crash_matrix_pool_map_reports_the_crash() -> None:
    """multiprocessing.Pool.map hangs forever when a worker dies; ours raises."""
    with workhorse.Pool(2, context=FORK) as pool:
        with pytest.raises(workhorse.WorkerCrashed, match=SIGSEGV):
            pool.map(run_fault, ["raise"] * 0 + ["segfault"])
        assert pool.map(double, range(10)) == [2 * i for i in range(10)]


def test_crash_matrix_pool_apply_async_error_callback_gets_the_crash() -> None:
    errors: list[BaseException] = []
    with workhorse.Pool(2, context=FORK) as pool:
        result = pool.apply_async(run_fault, ("os_exit",), error_callback=errors.append)
        with pytest.raises(workhorse.WorkerCrashed, match=EXITED):
            result.get(timeout=30)
    assert len(errors) == 1
    assert isinstance(errors[0], workhorse.WorkerCrashed)


def test_crash_matrix_stdlib_handler_catches_the_crash() -> None:
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK) as pool:
        future = pool.submit(run_fault, "sigkill")
        with pytest.raises(concurrent.futures.process.BrokenProcessPool) as info:
            future.result(timeout=30)
    assert isinstance(info.value, workhorse.WorkerCrashed)
    assert info.value.signal_name == "SIGKILL"
