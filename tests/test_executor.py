"""ProcessPoolExecutor and ThreadPoolExecutor: the concurrent.futures API, side by side with the
stdlib where the behaviour should match, plus the extras (lazy map, options views, progress)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import io
import itertools
import multiprocessing
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    CancelledError,
    Future,
    as_completed,
    wait,
)
from pathlib import Path
from typing import Any

import pytest

import workhorse
from workhorse._executor import OptionsView
from workhorse._lazy_map import MAX_MAP_WINDOW_PER_WORKER

Factory = Callable[..., Any]

FORK = workhorse.with_start_method("fork")
OURS: dict[str, Factory] = {
    "ProcessPoolExecutor": FORK.ProcessPoolExecutor,
    "ThreadPoolExecutor": workhorse.ThreadPoolExecutor,
}


def stdlib_process_executor(*args: Any, **kwargs: Any) -> Any:
    context = multiprocessing.get_context("fork")
    return concurrent.futures.ProcessPoolExecutor(*args, mp_context=context, **kwargs)  # type: ignore[call-overload]


STDLIB: dict[str, Factory] = {
    "cf.ProcessPoolExecutor": stdlib_process_executor,
    "cf.ThreadPoolExecutor": concurrent.futures.ThreadPoolExecutor,
}
BOTH = {**OURS, **STDLIB}


def square(x: int) -> int:
    return x * x


def fail(x: int) -> int:
    raise ValueError(f"bad {x}")


def pid(_: object = None) -> int:
    return os.getpid()


def keywords(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


def wait_for(event: Any, x: int) -> int:
    """Return ``x`` at once, except ``x < 0``, which waits for ``event`` first."""
    if x < 0:
        event.wait(10)
    return abs(x)


def blocked_then_mark(event: Any, marks: Any, x: int) -> int:
    """``x >= 0``: return it. ``x < 0``: wait for ``event``, then leave a mark in ``marks``."""
    if x < 0:
        event.wait(10)
        marks.put(x)
    return abs(x)


def signal_then_wait(started: Any, event: Any, x: int) -> int:
    started.set()
    event.wait(10)
    return x


def is_process(factory: Factory) -> bool:
    return factory == OURS["ProcessPoolExecutor"]


def event_for(factory: Factory) -> Any:
    return workhorse.Event() if is_process(factory) else workhorse.threads.Event()


def queue_for(factory: Factory) -> Any:
    return workhorse.Queue() if is_process(factory) else workhorse.threads.Queue()


class Counted:
    """An infinite iterable that records how far it was pulled."""

    def __init__(self) -> None:
        self.pulled = 0

    def __iter__(self) -> Iterator[int]:
        for i in itertools.count():
            self.pulled += 1
            yield i


@pytest.fixture(params=sorted(OURS))
def make(request: pytest.FixtureRequest) -> Factory:
    factory: Factory = OURS[request.param]
    return factory


@pytest.fixture(params=sorted(BOTH))
def any_executor(request: pytest.FixtureRequest) -> Factory:
    factory: Factory = BOTH[request.param]
    return factory


# --- the concurrent.futures contract -----------------------------------------------------


def test_executors_are_stdlib_executors_returning_real_futures(make: Factory) -> None:
    with make(2) as executor:
        assert isinstance(executor, concurrent.futures.Executor)
        future = executor.submit(square, 7)
        assert isinstance(future, Future)
        assert future.result(timeout=10) == 49
        assert list(executor.map(square, range(5))) == [0, 1, 4, 9, 16]
        assert list(executor.map(pow, [2, 3], [3, 2])) == [8, 9]


def test_wait_over_finished_failed_running_and_duplicate_futures(make: Factory) -> None:
    """Fault matrix I7, C8 (cancelled futures: the next test)."""
    hold = event_for(make)
    with make(1, chunksize=1) as executor:
        try:
            done = executor.submit(square, 3)
            failed = executor.submit(fail, 1)
            assert done.result(timeout=10) == 9
            assert isinstance(failed.exception(timeout=10), ValueError)
            blocker = executor.submit(wait_for, hold, -2)
            every = [done, failed, done, blocker, failed]  # duplicates on purpose

            some = wait(every, timeout=10, return_when=FIRST_COMPLETED)
            assert some.done == {done, failed}
            assert some.not_done == {blocker}
            error = wait(iter(every), timeout=10, return_when=FIRST_EXCEPTION)
            assert error.done == {done, failed}
            partial = wait(every, timeout=0.05, return_when=ALL_COMPLETED)
            assert partial.not_done == {blocker}
            no_error = wait([done, blocker], timeout=0.05, return_when=FIRST_EXCEPTION)
            assert no_error.not_done == {blocker}, "FIRST_EXCEPTION without one waits for all"
            with pytest.raises(concurrent.futures.TimeoutError):
                blocker.result(timeout=0.01)
            with pytest.raises(concurrent.futures.TimeoutError):
                blocker.exception(timeout=0.01)
            hold.set()
            complete = wait(every, timeout=10, return_when=ALL_COMPLETED)
            assert complete.done == {done, failed, blocker}
            assert not complete.not_done
            assert blocker.result() == 2
        finally:
            hold.set()


@pytest.mark.parametrize(
    "factory",
    [
        OURS["ProcessPoolExecutor"],
        OURS["ThreadPoolExecutor"],
    ],
    ids=["ProcessPoolExecutor", "ThreadPoolExecutor"],
)
def test_wait_and_as_completed_count_a_cancelled_future_as_done(factory: Factory) -> None:
    """Fault matrix I7: a cancelled future is done for wait() and as_completed()."""
    gate = event_for(factory)
    with factory(1, chunksize=1) as executor:
        first = executor.submit(wait_for, gate, -1)
        queued = executor.submit(square, 4)
        cancelled = queued.cancel()
        gate.set()
        first_result = first.result(timeout=10)
        seen = wait([first, queued, first], timeout=1.5, return_when=ALL_COMPLETED).done
        some = wait([queued], timeout=0.5, return_when=FIRST_COMPLETED).done
        try:
            yielded = list(as_completed([queued, first], timeout=0.5))
        except concurrent.futures.TimeoutError:
            yielded = []
    del gate  # free the shared memory before any assertion can keep this frame alive
    assert cancelled
    assert first_result == 1
    assert seen == {first, queued}
    assert some == {queued}
    assert set(yielded) == {first, queued}
    with pytest.raises(CancelledError):
        queued.result()


def test_as_completed_yields_each_future_once_and_times_out(make: Factory) -> None:
    """Fault matrix I7, C8: "2 (of 4) futures unfinished"."""
    event = event_for(make)
    with make(2, chunksize=1) as executor:
        finished = [executor.submit(square, 2), executor.submit(square, 3)]
        wait(finished, timeout=10)
        blocked = [executor.submit(wait_for, event, -1), executor.submit(wait_for, event, -2)]
        seen: list[Future[int]] = []
        with pytest.raises(concurrent.futures.TimeoutError, match=r"2 \(of 4\) futures unfinished"):  # noqa: PT012
            for future in as_completed([*finished, *blocked, finished[0]], timeout=0.1):
                seen.append(future)
        assert sorted(f.result() for f in seen) == [4, 9]
        event.set()
        everything = [*finished, *blocked, *blocked]
        again = list(as_completed(everything, timeout=10))
        assert len(again) == 4
        assert set(again) == set(everything)


def test_futures_work_with_asyncio(make: Factory) -> None:
    async def main(executor: Any) -> list[int]:
        futures = [asyncio.wrap_future(executor.submit(square, i)) for i in range(4)]
        loop = asyncio.get_running_loop()
        direct = await loop.run_in_executor(executor, square, 5)
        return [*(await asyncio.gather(*futures)), direct]

    with make(2) as executor:
        assert asyncio.run(main(executor)) == [0, 1, 4, 9, 25]


# --- side by side with the stdlib --------------------------------------------------------


def test_submit_passes_keywords_named_like_its_parameters(any_executor: Factory) -> None:
    with any_executor(1) as executor:
        future = executor.submit(keywords, 1, self=2, fn=3)
        assert future.result(timeout=10) == ((1,), {"self": 2, "fn": 3})
        with pytest.raises(TypeError):
            executor.submit()
        with pytest.raises(TypeError):
            executor.submit(fn=keywords, arg=1)


@pytest.mark.parametrize("workers", [0, -1])
def test_max_workers_must_be_positive(any_executor: Factory, workers: int) -> None:
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        any_executor(max_workers=workers)


@pytest.mark.parametrize(
    "factory",
    [OURS["ProcessPoolExecutor"], OURS["ThreadPoolExecutor"], STDLIB["cf.ProcessPoolExecutor"]],
    ids=["ours-process", "ours-thread", "stdlib-process"],
)
def test_map_rejects_a_negative_chunksize(factory: Factory) -> None:
    with factory(1) as executor:
        with pytest.raises(ValueError, match="chunksize"):
            executor.map(square, [1], chunksize=-1)
        assert list(executor.map(square, [1, 2], chunksize=5)) == [1, 4]


def test_map_and_empty_inputs_match_stdlib(any_executor: Factory) -> None:
    with any_executor(2) as executor:
        assert list(executor.map(square, [])) == []
        assert list(executor.map(pow, [], [])) == []
        assert list(executor.map(square, iter([]))) == []
        assert list(executor.map(square, range(100))) == [x * x for x in range(100)]
        assert list(executor.map(pow, range(5), [2] * 10)) == [x * x for x in range(5)]
        results = executor.map(fail, [1, 2])
        with pytest.raises(ValueError, match="bad 1"):
            next(results)


def test_submit_after_shutdown_raises(any_executor: Factory) -> None:
    """Fault matrix D1."""
    executor = any_executor(1)
    executor.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        executor.submit(square, 1)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        list(executor.map(square, [1]))
    executor.shutdown()  # twice is fine


def test_shutdown_wait_completes_every_queued_task(any_executor: Factory) -> None:
    """Fault matrix D2."""
    executor = any_executor(2)
    futures = [executor.submit(square, i) for i in range(50)]
    executor.shutdown(wait=True)
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == [i * i for i in range(50)]


def test_shutdown_cancel_futures_leaves_nothing_pending(make: Factory) -> None:
    """Fault matrix D3."""
    started, event = event_for(make), event_for(make)
    executor = make(1, chunksize=1)
    blocker = executor.submit(signal_then_wait, started, event, 7)
    assert started.wait(10), "the first task is running"
    queued = [executor.submit(square, i) for i in range(50)]
    executor.shutdown(wait=False, cancel_futures=True)
    event.set()
    executor.shutdown(wait=True)
    everything = [blocker, *queued]
    assert all(f.done() for f in everything), "none left pending"
    assert blocker.result() == 7
    cancelled = [f for f in queued if f.cancelled()]
    assert len(cancelled) > 20
    for future in queued:
        if not future.cancelled():
            assert future.result() in {i * i for i in range(50)}


def test_cancel_right_before_shutdown_does_not_hang(any_executor: Factory) -> None:
    """Fault matrix D4."""
    executor = any_executor(1)
    futures = [executor.submit(square, i) for i in range(5)]
    futures[-1].cancel()
    started = time.monotonic()
    executor.shutdown(wait=True)
    assert time.monotonic() - started < 5
    assert all(f.done() for f in futures)


def test_shutdown_without_waiting_still_delivers_results(any_executor: Factory) -> None:
    """Fault matrix D5."""
    executor = any_executor(2)
    futures = [executor.submit(square, i) for i in range(20)]
    executor.shutdown(wait=False)
    assert [f.result(timeout=30) for f in futures] == [i * i for i in range(20)]
    executor.shutdown(wait=True)


def test_map_timeout_yields_what_finished_then_stops_the_rest(make: Factory) -> None:
    """Fault matrix C6: map(slow, [0, 0, long], timeout=) yields 2 results, then TimeoutError,
    and with ``cancel_running=True`` the long call is stopped (its mark never appears)."""
    event, marks = event_for(make), queue_for(make)
    with make(3, chunksize=1, cancel_running=True) as executor:
        assert executor.submit(square, 1).result(timeout=10) == 1  # warm: workers up
        results = executor.map(blocked_then_mark, [event] * 3, [marks] * 3, [1, 2, -3], timeout=1.0)
        assert next(results) == 1
        assert next(results) == 2
        with pytest.raises(TimeoutError):
            next(results)
        with pytest.raises(StopIteration):
            next(results)
        assert executor.submit(square, 4).result(timeout=10) == 16, "the pool goes on"
        started = time.monotonic()
    # The event is never set: a call left running would wait 10 s, then leave a mark.
    assert time.monotonic() - started < 5, "the call past the map's timeout was stopped"
    assert marks.empty(), "the call past the map's timeout was stopped, not left running"


def test_executor_map_over_an_infinite_input_is_lazy_and_streams(make: Factory) -> None:
    source = Counted()
    with make(2) as executor:
        numbers = iter(source)
        results = executor.map(square, numbers)
        assert [next(results) for _ in range(50)] == [x * x for x in range(50)]
        # pulled = taken + in flight; the window grows while items are fast (2 workers)
        bound = 2 * MAX_MAP_WINDOW_PER_WORKER
        assert source.pulled - 50 <= bound, "a bounded number of calls in flight"
        results.close()
        pulled = source.pulled
        assert next(executor.map(square, numbers)) == pulled * pulled, "closed: no more reads"
        # leaving the with block with an infinite map still open must not hang either
        open_map = executor.map(square, Counted())
        assert next(open_map) == 0


def test_executor_map_streams_before_a_slow_last_item(make: Factory) -> None:
    event = event_for(make)
    with make(2, chunksize=1) as executor:
        results = executor.map(wait_for, [event] * 3, [1, 2, -3])
        assert next(results) == 1
        assert next(results) == 2
        assert not event.is_set(), "results came while the last item still waits"
        event.set()
        assert list(results) == [3]


# --- workers: initializer, per-worker task limits ----------------------------------------


def set_state(value: str) -> None:
    global STATE
    STATE = value


STATE = "unset"


def read_state(_: object = None) -> str:
    return STATE


def test_initializer_state_is_visible_to_tasks() -> None:
    """Fault matrix F1."""
    with FORK.ProcessPoolExecutor(2, initializer=set_state, initargs=("ready",)) as executor:
        assert set(executor.map(read_state, range(20))) == {"ready"}
        assert executor.submit(read_state).result(timeout=10) == "ready"
    assert STATE == "unset", "the initializer ran in the workers, not here"


def test_thread_executor_initializer_runs_in_each_worker() -> None:
    local = threading.local()

    def init(value: str) -> None:
        local.value = value

    with workhorse.ThreadPoolExecutor(2, initializer=init, initargs=("ready",)) as executor:
        assert set(executor.map(lambda _: local.value, range(20))) == {"ready"}


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_max_tasks_per_child_replaces_the_worker(method: str) -> None:
    """Fault matrix E1 (also with fork: a deliberate difference, the stdlib refuses it)."""
    context = workhorse.with_start_method(method)
    with context.ProcessPoolExecutor(1, max_tasks_per_child=3) as executor:
        pids = [executor.submit(pid).result(timeout=30) for _ in range(6)]
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5]
    with pytest.raises(ValueError, match="max_tasks_per_child"):
        concurrent.futures.ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("fork"), max_tasks_per_child=3
        )


def test_max_tasks_per_worker_replaces_workers() -> None:
    with FORK.ProcessPoolExecutor(1, max_tasks_per_worker=2) as executor:
        pids = [executor.submit(pid).result(timeout=30) for _ in range(4)]
    assert pids[0] == pids[1] != pids[2] == pids[3]
    with workhorse.ThreadPoolExecutor(1, max_tasks_per_worker=2) as threads:
        ids = [threads.submit(threading.current_thread).result() for _ in range(4)]
    assert ids[0] is ids[1]
    assert ids[1] is not ids[2]
    assert ids[2] is ids[3]


# --- with_options views ------------------------------------------------------------------


def flaky(path: str, x: int) -> int:
    """Fails until it has been called three times (attempts counted in a file)."""
    with open(path, "a") as f:
        f.write(".")
    if len(Path(path).read_text()) < 3:
        raise ConnectionError("try again")
    return x


def test_with_options_views_share_workers_and_apply_their_own_options(
    make: Factory, tmp_path: Path
) -> None:
    event = event_for(make)
    with make(1, chunksize=1) as executor:
        quick = executor.with_options(timeout=0.3)
        patient = quick.with_options(timeout=None, retries=2, retry_on=ConnectionError)
        assert isinstance(quick, OptionsView)
        assert not hasattr(quick, "shutdown"), "a view has no lifecycle"
        ident = pid if is_process(make) else (lambda: threading.current_thread().name)
        assert executor.submit(ident).result(timeout=10) == quick.submit(ident).result(
            timeout=10
        ), "the view runs on the pool's own worker"
        with pytest.raises(workhorse.TaskTimeout):
            quick.submit(wait_for, event, -1).result(timeout=10)
        assert list(quick.map(square, [1, 2])) == [1, 4]
        counter = str(tmp_path / "attempts")
        with pytest.raises(ConnectionError):
            executor.submit(flaky, counter, 1).result(timeout=10)
        assert patient.submit(flaky, counter, 7).result(timeout=10) == 7
        slow = executor.submit(wait_for, event, -5)
        with pytest.raises(concurrent.futures.TimeoutError):
            slow.result(timeout=0.5)  # the pool's own default: no timeout
        event.set()
        assert slow.result(timeout=10) == 5
    with pytest.raises(RuntimeError, match="cannot schedule new futures"):
        quick.submit(square, 1)


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": "1"}, TypeError, "timeout"),
        ({"retries": -1}, ValueError, "retries"),
        ({"retry_on": 3}, TypeError, "retry_on"),
        ({"progress": "sometimes"}, TypeError, "progress"),
    ],
)
def test_with_options_rejects_invalid_values(
    options: dict[str, Any], error: type[Exception], name: str
) -> None:
    with workhorse.ThreadPoolExecutor(1) as executor:
        with pytest.raises(error, match=name):
            executor.with_options(**options)
        with pytest.raises(TypeError):
            executor.with_options(max_workers=2)  # type: ignore[call-arg]


# --- concurrency on one executor ---------------------------------------------------------


def test_one_executor_shared_by_ten_threads(make: Factory) -> None:
    """Fault matrix I3."""
    errors: list[BaseException] = []
    start = threading.Barrier(10)

    def client(n: int) -> None:
        try:
            start.wait(10)
            futures = [executor.submit(square, n * 100 + i) for i in range(20)]
            for future in futures[::4]:
                future.cancel()
            mapped = list(executor.map(square, range(n, n + 30)))
            assert mapped == [x * x for x in range(n, n + 30)]
            for i, future in enumerate(futures):
                if not future.cancelled():
                    assert future.result(timeout=30) == (n * 100 + i) ** 2
        except BaseException as exc:
            errors.append(exc)

    with make(2) as executor:
        clients = [threading.Thread(target=client, args=(n,)) for n in range(10)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(60)
        assert not any(t.is_alive() for t in clients)
    assert not errors, errors


# --- what a process executor can run ----------------------------------------------------


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_lambdas_closures_and_local_functions(method: str) -> None:
    offset = 10

    def local(x: int) -> int:
        return x + offset

    context = workhorse.ProcessPoolExecutor if method == "forkserver" else None
    executor = context(1) if context else workhorse.with_start_method(method).ProcessPoolExecutor(1)
    with executor:
        assert executor.submit(lambda: offset * 2).result(timeout=60) == 20
        assert executor.submit(local, 1).result(timeout=60) == 11
        assert list(executor.map(lambda x: x - offset, [10, 11])) == [0, 1]
        assert executor.submit(pid).result(timeout=60) != os.getpid()


class Unsendable(Exception):
    """Carries a lock: it cannot be pickled to cross back to the parent."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raise_unsendable(_: object = None) -> None:
    raise Unsendable("no way back")


def raise_key_error(x: int) -> None:
    raise KeyError(x)


def test_exceptions_keep_their_type_and_the_worker_traceback(make: Factory) -> None:
    with make(1) as executor:
        error = executor.submit(raise_key_error, 3).exception(timeout=10)
        assert type(error) is KeyError
        assert error.args == (3,)
        frames = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
        assert "raise_key_error" in frames, "the worker's frames are in the traceback"
        with pytest.raises(KeyError) as caught:
            list(executor.map(raise_key_error, [5]))
        assert caught.value.args == (5,)
        if is_process(make):
            notes = getattr(error, "__notes__", [])
            assert any("raised in" in note for note in notes), notes


def test_an_exception_that_cannot_cross_becomes_remote_error() -> None:
    with FORK.ProcessPoolExecutor(1) as executor:
        error = executor.submit(raise_unsendable).exception(timeout=10)
        assert isinstance(error, workhorse.RemoteError)
        assert "Unsendable" in str(error)
        assert "no way back" in str(error)
        assert "Unsendable" in error.type_name
        # the stdlib executor's own type, which code checks by type
        assert type(error.__cause__) is concurrent.futures.process._RemoteTraceback
        assert "raise_unsendable" in str(error.__cause__)
        assert executor.submit(square, 3).result(timeout=10) == 9, "the pool goes on"


# --- workhorse primitives as task arguments ----------------------------------------------


def meet(barrier: Any, x: int) -> int:
    barrier.wait(10)
    return x


def put_into(queue: Any, x: int) -> int:
    queue.put(("from task", x))
    return x


def hold(lock: Any) -> bool:
    acquired: bool = lock.acquire(timeout=10)
    if acquired:
        lock.release()
    return acquired


def bounded(semaphore: Any, marks: Any, x: int) -> int:
    with semaphore:
        marks.put(1)
        marks.put(-1)
    return x


def notify(condition: Any, flag: Any) -> bool:
    with condition:
        flag.set()
        condition.notify_all()
    return True


def test_workhorse_primitives_work_as_task_arguments(make: Factory) -> None:
    with make(3, chunksize=1) as executor:
        barrier = workhorse.Barrier(2)
        met = [executor.submit(meet, barrier, i) for i in (1, 2)]
        assert [f.result(timeout=20) for f in met] == [1, 2], "both tasks passed the barrier"

        queue = workhorse.Queue()
        assert executor.submit(put_into, queue, 5).result(timeout=10) == 5
        assert queue.get(timeout=10) == ("from task", 5)

        lock = workhorse.Lock()
        with lock:
            pending = executor.submit(hold, lock)
            with pytest.raises(concurrent.futures.TimeoutError):
                pending.result(timeout=0.1)
        assert pending.result(timeout=10) is True

        semaphore, marks = workhorse.Semaphore(2), workhorse.Queue()
        assert sorted(executor.map(bounded, [semaphore] * 12, [marks] * 12, range(12))) == list(
            range(12)
        )
        level, high = 0, 0
        for _ in range(24):
            level += marks.get(timeout=10)
            high = max(high, level)
        assert 1 <= high <= 2, "never more than the semaphore's value inside"

        condition, flag = workhorse.Condition(), workhorse.Event()
        with condition:
            notified = executor.submit(notify, condition, flag)
            assert condition.wait_for(flag.is_set, timeout=10)
        assert notified.result(timeout=10) is True


# --- progress ----------------------------------------------------------------------------


def test_executor_map_progress_bar_reaches_the_total(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for tqdm_installed in (True, False):
        if not tqdm_installed:
            monkeypatch.setitem(sys.modules, "tqdm", None)
        out = io.StringIO()
        with make(2, progress=out) as executor:
            assert list(executor.map(square, range(30))) == [x * x for x in range(30)]
            assert executor.submit(square, 2).result(timeout=10) == 4
        text = out.getvalue()
        assert "30/30" in text
        assert text.endswith("\n")
        quiet = io.StringIO()
        with make(1) as executor:
            assert list(executor.with_options(progress=quiet).map(square, range(4))) == [
                0,
                1,
                4,
                9,
            ]
        assert "4/4" in quiet.getvalue()
