"""Tests of workhorse._process.Process under fork, spawn and forkserver."""

from __future__ import annotations

import ctypes
import faulthandler
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

import pytest

from workhorse._errors import RemoteError, SerializationError, WorkerCrashed
from workhorse._process import (
    ForkProcess,
    ForkServerProcess,
    Process,
    SpawnProcess,
    process_class,
)


class Square(Process):
    """A subclass overriding run(); importable, so it works under spawn too."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def run(self) -> int:  # type: ignore[override]  # typeshed: BaseProcess.run -> None
        return self.n**2


class ForkSquare(Square, ForkProcess):
    pass


class SpawnSquare(Square, SpawnProcess):
    pass


class ForkServerSquare(Square, ForkServerProcess):
    pass


SQUARES: dict[str, type[Square]] = {
    "fork": ForkSquare,
    "spawn": SpawnSquare,
    "forkserver": ForkServerSquare,
}


def _started(procs: list[Process]) -> list[Process]:
    for p in procs:
        p.start()
    return procs


def test_process_targets_and_results(start_method: str) -> None:
    cls = process_class(start_method)
    factor = 3

    def local(a: int, *, b: int) -> tuple[int, int]:
        return a, b

    procs = _started(
        [
            cls(target=lambda x: x * factor, args=(14,)),  # closure
            cls(target=local, args=(1,), kwargs={"b": 2}),
            cls(target=lambda f: f(5), args=(lambda y: y + 1,)),  # lambda argument
            SQUARES[start_method](7),
            cls(target=lambda: multiprocessing.current_process().name, name="kid"),
            cls(target=lambda: None),
        ]
    )
    assert [p.result(timeout=30) for p in procs] == [42, (1, 2), 6, 49, "kid", None]
    for p in procs:
        assert p.exitcode == 0
        assert p.exception() is None
        assert isinstance(p, multiprocessing.process.BaseProcess)
        p.join()
        p.close()
        assert p.result() is not Ellipsis  # the result outlives close()


def test_process_exceptions_keep_type_and_traceback(start_method: str) -> None:
    cls = process_class(start_method)

    def fails_deep_inside() -> None:
        raise ValueError("boom")

    class Holding(Exception):
        def __init__(self, message: str) -> None:
            super().__init__(message)
            self.lock = threading.Lock()  # cannot cross a process boundary

    def raise_holding() -> None:
        raise Holding("held")

    bad, rigid = _started([cls(target=fails_deep_inside), cls(target=raise_holding)])
    exc = bad.exception(timeout=30)
    assert type(exc) is ValueError
    assert str(exc) == "boom"
    names = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
    assert "fails_deep_inside" in names
    assert any(str(bad.pid) in note for note in exc.__notes__)
    with pytest.raises(ValueError, match="boom"):
        bad.result()
    assert bad.exitcode == 1  # the stdlib's exit code for an uncaught exception

    remote = rigid.exception(timeout=30)
    assert isinstance(remote, RemoteError)
    assert "Holding: held" in str(remote)
    assert "raise_holding" in str(remote.__cause__)
    for p in (bad, rigid):
        p.join()


def _segfault() -> None:
    faulthandler.disable()  # keep the child's crash report off the test output
    ctypes.string_at(0)


def test_process_crash_raises_worker_crashed(start_method: str) -> None:
    cls = process_class(start_method)
    procs = _started(
        [
            cls(target=lambda: os._exit(3)),
            cls(target=lambda: os.kill(os.getpid(), signal.SIGKILL)),
            cls(target=_segfault),
        ]
    )
    crashes = [p.exception(timeout=30) for p in procs]
    assert all(isinstance(c, WorkerCrashed) for c in crashes)
    exit3, killed, segv = crashes
    assert isinstance(exit3, WorkerCrashed)
    assert isinstance(killed, WorkerCrashed)
    assert isinstance(segv, WorkerCrashed)
    assert exit3.exitcode == 3
    assert "code 3" in str(exit3)
    assert killed.signal_name == "SIGKILL"
    assert "SIGKILL" in str(killed)
    assert segv.signal_name == "SIGSEGV"
    assert segv.pid == procs[2].pid
    with pytest.raises(WorkerCrashed):
        procs[0].result()
    assert [p.exitcode for p in procs] == [3, -signal.SIGKILL, -signal.SIGSEGV]


def test_process_large_result_does_not_deadlock_join(start_method: str) -> None:
    p = process_class(start_method)(target=lambda: b"x" * 10_000_000)
    p.start()
    p.join(timeout=30)
    assert p.exitcode == 0
    assert len(p.result()) == 10_000_000


def test_process_result_timeout_then_result() -> None:
    from workhorse._pipe import Pipe

    a, b = Pipe()
    p = Process(target=lambda conn: conn.recv() + 1, args=(b,))
    p.start()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        p.result(timeout=0.2)
    with pytest.raises(TimeoutError):
        p.exception(timeout=0)
    assert time.monotonic() - t0 >= 0.15
    assert p.is_alive()
    a.send(41)
    assert p.result(timeout=30) == 42
    p.join()


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_process_unpicklable_argument_raises_in_start(start_method: str) -> None:
    before = set(multiprocessing.active_children())
    p = process_class(start_method)(target=print, args=(1, threading.Lock()))
    with pytest.raises(SerializationError, match=r"args\[1\].*_thread\.lock"):
        p.start()
    assert p.pid is None
    assert set(multiprocessing.active_children()) == before
    with pytest.raises(SerializationError, match="kwargs"):
        process_class(start_method)(target=print, kwargs={"file": threading.Lock()}).start()


def test_process_unpicklable_result_is_an_error_but_exit_code_zero() -> None:
    p = process_class("fork")(target=threading.Lock)
    p.start()
    with pytest.raises(SerializationError, match="result"):
        p.result(timeout=30)
    assert p.exitcode == 0


def test_process_sys_exit_codes_match_stdlib() -> None:
    cases: list[Any] = [[1, 2, 3], "msg", None, 8, 0]
    ours = _started([ForkProcess(target=sys.exit, args=(c,)) for c in cases])
    stdlib = [
        multiprocessing.get_context("fork").Process(target=sys.exit, args=(c,)) for c in cases
    ]
    for std in stdlib:
        std.start()
    for proc in [*stdlib, *ours]:
        proc.join(timeout=30)
    assert [p.exitcode for p in ours] == [p.exitcode for p in stdlib] == [1, 1, 0, 8, 0]
    # result(): None for exit code 0, the SystemExit otherwise.
    assert ours[2].result() is None
    assert ours[4].result() is None
    with pytest.raises(SystemExit) as info:
        ours[3].result()
    assert info.value.code == 8
    assert isinstance(ours[1].exception(), SystemExit)


def test_process_uncaught_exception_printed_by_child(capfd: pytest.CaptureFixture[str]) -> None:
    p = ForkProcess(target=lambda: 1 / 0, name="noisy")
    p.start()
    p.join(timeout=30)
    err = capfd.readouterr().err
    assert "Process noisy:" in err
    assert "ZeroDivisionError" in err


def test_process_stdlib_parity_errors() -> None:
    classes: list[Any] = [ForkProcess, multiprocessing.get_context("fork").Process]
    for cls in classes:
        p = cls(target=threading.Event().wait)  # blocks until terminated
        with pytest.raises(ValueError):
            p.sentinel
        p.start()
        t0 = time.monotonic()
        p.join(0)
        p.join(-1)
        assert time.monotonic() - t0 < 1.0
        assert p.is_alive()
        assert p in multiprocessing.active_children()
        with pytest.raises(ValueError, match="still running"):
            p.close()
        p.terminate()
        p.join(timeout=30)
        assert p.exitcode == -signal.SIGTERM
        p.close()
        for method in (p.is_alive, p.join, p.terminate):
            with pytest.raises(ValueError, match="closed"):
                method()
    killed = ForkProcess(target=threading.Event().wait)
    killed.start()
    killed.kill()
    killed.join(timeout=30)
    assert killed.exitcode == -signal.SIGKILL
    assert killed.ident == killed.pid


def test_process_misuse_raises_runtime_and_type_errors() -> None:
    with pytest.raises(TypeError, match="int"):
        Process(target=3)  # type: ignore[arg-type]
    p = ForkProcess(target=lambda: 1)
    with pytest.raises(RuntimeError):
        p.join()
    with pytest.raises(RuntimeError):
        p.result()
    p.start()
    with pytest.raises(RuntimeError, match="twice"):
        p.start()
    assert p.result(timeout=30) == 1
    p.join()


def test_process_class_per_start_method() -> None:
    assert Process._start_method is None  # multiprocessing's default, when it starts
    assert process_class(None) is Process
    assert process_class("spawn") is process_class("spawn") is SpawnProcess
    assert issubclass(SpawnProcess, multiprocessing.context.SpawnProcess)
    assert issubclass(ForkProcess, Process)
    with pytest.raises(ValueError):
        process_class("teleport")


def test_process_daemon_and_name_like_stdlib() -> None:
    p = ForkProcess(target=lambda: multiprocessing.current_process().daemon, daemon=True)
    assert p.daemon
    assert p.name.startswith("ForkProcess-")
    p.start()
    assert p.result(timeout=30) is True
    p.join()


def test_join_in_one_thread_while_another_sees_the_exit() -> None:
    # A TaskGroup's watcher calls is_alive() while the body join()s: the first to see
    # the exit must not close the handle the other is waiting on ("pidfd is closed").
    for _ in range(20):
        r, w = multiprocessing.Pipe(duplex=False)
        p = Process(target=r.recv)
        p.start()
        errors: list[BaseException] = []
        entered = threading.Event()

        def join(
            p: Process = p, errors: list[BaseException] = errors, entered: threading.Event = entered
        ) -> None:
            entered.set()
            try:
                p.join(timeout=30)
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=join)
        t.start()
        entered.wait(timeout=30)
        w.send(None)
        while p.is_alive():
            pass
        t.join(timeout=30)
        assert errors == []
        assert p.exitcode == 0
        p.close()
        r.close()
        w.close()


def _send_result(conn: Any, fn: Any) -> None:
    conn.send(fn())


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_pipe_end_and_a_lambda_as_arguments(method: str) -> None:
    # The stdlib's pickler takes the pipe end (passing its descriptor to the child), then
    # fails on the lambda; the fallback must not pass the descriptor a second time.
    r, w = multiprocessing.Pipe(duplex=False)
    with r, w:
        p = process_class(method)(target=_send_result, args=(w, lambda: 42))
        p.start()
        assert r.poll(30)
        assert r.recv() == 42
        p.join(30)
    assert p.exitcode == 0
