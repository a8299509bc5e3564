"""The exception tree: stdlib mixins, pickling, messages."""

from __future__ import annotations

import pickle
import queue
import signal
from concurrent.futures.process import BrokenProcessPool

import pytest

from workhorse._errors import (
    BrokenResourceError,
    Cancelled,
    QueueShutDown,
    RemoteError,
    RemoteTraceback,
    SerializationError,
    WorkerCrashed,
    WorkhorseError,
)

EXAMPLES: list[BaseException] = [
    WorkhorseError("x"),
    QueueShutDown("x"),
    RemoteError("ValueError: x", "builtins.ValueError"),
    SerializationError("cannot pickle"),
    BrokenResourceError("dead"),
    WorkerCrashed("process P-1", 42, -signal.SIGKILL),
    Cancelled("cancelled"),
    RemoteTraceback("Traceback ..."),
]


@pytest.mark.parametrize("exc", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_error_survives_pickling(exc: BaseException) -> None:
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is type(exc)
    assert clone.args == exc.args
    assert str(clone) == str(exc)


def test_errors_refine_the_stdlib_exceptions() -> None:
    assert issubclass(WorkerCrashed, BrokenProcessPool)
    assert issubclass(SerializationError, pickle.PicklingError)
    assert issubclass(BrokenResourceError, RuntimeError)
    if hasattr(queue, "ShutDown"):
        assert issubclass(QueueShutDown, queue.ShutDown)
    for cls in (QueueShutDown, RemoteError, SerializationError, WorkerCrashed):
        assert issubclass(cls, WorkhorseError)
    assert not issubclass(Cancelled, Exception)


def test_worker_crashed_names_the_signal_or_exit_code() -> None:
    killed = WorkerCrashed("process P-1", 10, -signal.SIGSEGV)
    assert killed.signal_name == "SIGSEGV"
    assert "SIGSEGV" in str(killed)
    assert "pid 10" in str(killed)
    exited = WorkerCrashed("process P-2", 11, 3)
    assert exited.signal_name is None
    assert "exited with code 3" in str(exited)
    assert pickle.loads(pickle.dumps(killed)).pid == 10
    unknown = WorkerCrashed("task f(1)", 12, None)  # a Dask worker: the client has no code
    assert "code None" not in str(unknown)
    assert "its exit status is not known to the client" in str(unknown)
    lost = WorkerCrashed("task f(1) (batch lost)", None, None)
    assert "pid None" not in str(lost)
