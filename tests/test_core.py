"""The shared building blocks: timeouts, cancellation, serialization, remote exceptions,
named semaphores, shared memory and the per-process registry."""

from __future__ import annotations

import multiprocessing
import pickle
import sys
import threading
import time
import types
from types import TracebackType
from typing import Any

import pytest

from workhorse import _cancel
from workhorse._errors import Cancelled, RemoteError, RemoteTraceback, SerializationError
from workhorse._remote import dump_exception, load_exception
from workhorse._semlock import NamedSemaphore
from workhorse._serialize import dumps, loads
from workhorse._sharing import Shared
from workhorse._shm import Segment
from workhorse._timeouts import (
    TIMEOUT_MAX,
    Deadline,
    lock_timeout,
    queue_timeout,
    semaphore_timeout,
    wait_timeout,
)


class TestTimeouts:
    def test_lock_timeout_follows_threading(self) -> None:
        assert lock_timeout(True, -1) is None
        assert lock_timeout(False, -1) == 0.0
        assert lock_timeout(True, 0.5) == 0.5
        assert lock_timeout(True, TIMEOUT_MAX) == TIMEOUT_MAX
        with pytest.raises(ValueError, match="non-blocking"):
            lock_timeout(False, 1)
        with pytest.raises(ValueError, match="non-negative"):
            lock_timeout(True, -100)
        with pytest.raises(OverflowError):
            lock_timeout(True, 1e100)

    def test_semaphore_wait_and_queue_timeouts(self) -> None:
        assert semaphore_timeout(False, None) == 0.0
        with pytest.raises(ValueError, match="non-blocking"):
            semaphore_timeout(False, 1.0)
        assert wait_timeout(None) is None
        assert wait_timeout(-3) == 0.0
        assert queue_timeout(False, 5) == 0.0
        with pytest.raises(ValueError, match="non-negative"):
            queue_timeout(True, -1)
        with pytest.raises(TypeError):
            wait_timeout("soon")  # type: ignore[arg-type]

    def test_deadline(self) -> None:
        assert Deadline(None).remaining() is None
        assert not Deadline(None).expired()
        assert Deadline(0).expired()
        left = Deadline(10).remaining()
        assert left is not None
        assert 9 < left <= 10


class TestCancel:
    def test_block_without_scope_passes_timeout_through(self) -> None:
        seen: list[float | None] = []

        def attempt(t: float | None) -> bool:
            seen.append(t)
            return False

        assert not _cancel.block(attempt, 1.5)
        assert seen == [1.5]

    def test_block_in_cancelled_scope_raises(self) -> None:
        scope = _cancel.CancelScope()
        lock = threading.Lock()
        lock.acquire()
        started = threading.Event()
        outcome: list[BaseException] = []

        def member() -> None:
            with _cancel.entered(scope):
                started.set()
                try:
                    _cancel.block(lambda t: lock.acquire(True, -1 if t is None else t), None)
                except Cancelled as exc:
                    outcome.append(exc)

        thread = threading.Thread(target=member)
        thread.start()
        started.wait()
        scope.cancel("stop")
        thread.join(5)
        assert not thread.is_alive()
        assert len(outcome) == 1
        assert str(outcome[0]) == "stop"

    def test_block_in_scope_times_out(self) -> None:
        def attempt(t: float | None) -> bool:
            time.sleep(t or 0)
            return False

        with _cancel.entered(_cancel.CancelScope()):
            start = time.monotonic()
            assert not _cancel.block(attempt, 0.1)
            assert 0.09 <= time.monotonic() - start < 1.0

    def test_checkpoint(self) -> None:
        scope = _cancel.CancelScope()
        with _cancel.entered(scope):
            _cancel.checkpoint()
            scope.cancel()
            with pytest.raises(Cancelled):
                _cancel.checkpoint()
        _cancel.checkpoint()  # outside the scope again


class TestSerialize:
    def test_lambda_and_closure_round_trip(self) -> None:
        factor = 3
        assert loads(dumps(lambda x: x * factor))(2) == 6

    def test_functions_travel_by_reference_unless_the_stdlib_cannot(self) -> None:
        def local(x: int) -> int:
            return x + 1

        assert loads(dumps(local))(1) == 2  # by value: the stdlib cannot pickle it
        assert b"_raise_value_error" in dumps(_raise_value_error)  # by reference
        assert loads(dumps(_raise_value_error)) is _raise_value_error

    def test_main_script_functions_by_value_only_when_asked(self) -> None:
        main = types.ModuleType("__main__")
        exec("def f(x):\n    return x * 2\n", vars(main))
        saved = sys.modules["__main__"]
        sys.modules["__main__"] = main
        try:
            by_reference, by_value = dumps(main.f), dumps(main.f, main_by_value=True)
        finally:
            sys.modules["__main__"] = saved
        assert len(by_reference) < 40  # "__main__", "f" and a few opcodes
        assert loads(by_value)(21) == 42  # no __main__.f here: it came by value

    def test_code_keeps_its_file_name(self) -> None:
        factor = 2
        copy = loads(dumps(lambda x: x * factor))
        assert copy.__code__.co_filename == __file__

    def test_open_files_are_refused_as_by_the_stdlib(self) -> None:
        with open(__file__) as handle, pytest.raises(SerializationError) as caught:
            dumps([1, handle], what="item")
        assert "item[1] of type _io.TextIOWrapper" in str(caught.value)
        assert isinstance(caught.value.__cause__, TypeError)

    def test_unpicklable_names_the_type_and_where_it_sits(self) -> None:
        with pytest.raises(SerializationError, match=r"item\['lock'\]\[1\] of type _thread\.lock"):
            dumps({"lock": [0, threading.Lock()]}, what="item")


def _raise_value_error() -> None:
    raise ValueError("boom")


class _Unbuildable(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(a)
        self.b = b

    def __reduce__(self) -> Any:
        raise TypeError("no pickling for you")


class TestRemote:
    def test_original_type_message_and_frames(self) -> None:
        try:
            _raise_value_error()
        except ValueError as exc:
            blob = dump_exception(exc, "process P-1 (pid 1)")
        rebuilt = load_exception(blob)
        assert type(rebuilt) is ValueError
        assert str(rebuilt) == "boom"
        assert rebuilt.__traceback__ is not None
        frames = []
        tb: TracebackType | None = rebuilt.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        assert "_raise_value_error" in frames
        assert "[raised in process P-1 (pid 1)]" in getattr(rebuilt, "__notes__", [])
        assert isinstance(rebuilt.__cause__, RemoteTraceback)  # as concurrent.futures does
        assert "_raise_value_error" in str(rebuilt.__cause__)

    def test_unpicklable_exception_becomes_remote_error(self) -> None:
        try:
            raise _Unbuildable(1, 2)
        except _Unbuildable as exc:
            blob = dump_exception(exc, "p")
        rebuilt = load_exception(blob)
        assert isinstance(rebuilt, RemoteError)
        assert "_Unbuildable" in str(rebuilt)
        assert "_Unbuildable" in str(rebuilt.__cause__)


def _use_semaphore(sem: NamedSemaphore, done: Any) -> None:
    sem.release()
    done.put(sem.name)


class TestNamedSemaphore:
    def test_open_by_name_in_another_process(self, start_method: str) -> None:
        ctx: Any = multiprocessing.get_context(start_method)
        sem = NamedSemaphore(0, 10)
        done = ctx.SimpleQueue()
        proc = ctx.Process(target=_use_semaphore, args=(sem, done))
        proc.start()
        assert done.get() == sem.name
        proc.join()
        assert sem.acquire(timeout=5)
        assert sem.value() == 0
        done.close()

    def test_pickled_after_start_through_a_queue(self) -> None:
        sem = NamedSemaphore(1, 1)
        clone = pickle.loads(pickle.dumps(sem))
        assert clone.try_acquire()
        assert not sem.try_acquire()
        clone.release()
        assert sem.acquire(timeout=0)

    def test_acquire_timeout(self) -> None:
        sem = NamedSemaphore(0, 1)
        start = time.monotonic()
        assert not sem.acquire(timeout=0.1)
        assert time.monotonic() - start >= 0.09
        assert not sem.acquire(timeout=0)

    def test_unlinked_when_collected(self) -> None:
        sem = NamedSemaphore(0, 1)
        name = sem.name
        del sem
        with pytest.raises(FileNotFoundError):
            NamedSemaphore.open(name, 1, 1)


class TestSegment:
    def test_attach_sees_writes(self) -> None:
        seg = Segment.create(4096)
        other = Segment.attach(seg.name)
        other.buf[10] = 7
        assert seg.buf[10] == 7
        assert other.size == 4096
        other.close()
        seg.unlink()
        seg.close()


class _Thing(Shared):
    def __init__(self, value: int) -> None:
        self.value = value
        self._register()

    def _shared_state(self) -> int:
        return self.value

    @classmethod
    def _from_shared_state(cls, uid: str, state: int) -> _Thing:
        obj = cls.__new__(cls)
        obj.value = state
        obj._register(uid)
        return obj


def test_shared_objects_are_unique_per_process() -> None:
    thing = _Thing(5)
    assert pickle.loads(pickle.dumps(thing)) is thing
    data = pickle.dumps(thing)
    uid = thing._uid
    del thing
    first, second = pickle.loads(data), pickle.loads(data)
    assert first is second
    assert first._uid == uid
    assert first.value == 5
