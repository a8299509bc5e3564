"""What a program written for ``concurrent.futures`` observes, with workhorse's executors.

Each test is a behaviour CPython's own suite pins (named in its docstring) that an earlier
workhorse broke: work a script submits and never waits for, maps whose results are never
read, references kept after a future is done, ``cancel()`` of queued and running futures.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import workhorse

Factory = Callable[..., Any]
FORK = workhorse.with_start_method("fork")
EXECUTORS: dict[str, Factory] = {
    "process": FORK.ProcessPoolExecutor,
    "thread": workhorse.ThreadPoolExecutor,
}
BOUND = 30.0


@pytest.fixture(params=sorted(EXECUTORS))
def make(request: pytest.FixtureRequest) -> Factory:
    factory: Factory = EXECUTORS[request.param]
    return factory


def record(path: str, x: int) -> int:
    with open(path, "a") as out:
        out.write(f"{x}\n")
    return x


def recorded(path: Path) -> list[int]:
    return sorted(int(line) for line in path.read_text().split()) if path.exists() else []


class Thing:
    def method(self) -> None:
        pass


def make_thing(_: object) -> Thing:
    return Thing()


def _run_script(body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    command = [sys.executable, str(script)]
    return subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )


@pytest.mark.parametrize(
    ("executor", "context"),
    [("ThreadPoolExecutor", ""), ("ProcessPoolExecutor", "fork"),
     ("ProcessPoolExecutor", "spawn"), ("ProcessPoolExecutor", "forkserver")],
)  # fmt: skip
def test_work_submitted_by_a_script_that_never_shuts_down_runs(
    executor: str, context: str, tmp_path: Path
) -> None:
    """CPython's ``test_interpreter_shutdown``: the script ends without ``shutdown()``; the
    task runs (spawn and forkserver workers start while the script still runs: at its end
    the interpreter takes ``__file__`` off the main module, which they need)."""
    args = f"5, mp_context=get_context({context!r})" if context else "5"
    done = _run_script(
        f"""
        import sys, time
        from multiprocessing import get_context
        import workhorse

        def sleep_and_print(seconds, message):
            time.sleep(seconds)
            print(message)
            sys.stdout.flush()

        if __name__ == "__main__":
            pool = workhorse.{executor}({args})
            pool.submit(sleep_and_print, 0.5, "apple")
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "apple"
    assert not done.stderr


@pytest.mark.parametrize("executor", ["ThreadPoolExecutor", "ProcessPoolExecutor"])
def test_submit_after_interpreter_shutdown_is_refused(executor: str, tmp_path: Path) -> None:
    """CPython's ``test_submit_after_interpreter_shutdown``: an ``atexit`` function submits
    once the pools have shut down at exit; the stdlib's ``RuntimeError`` says so."""
    done = _run_script(
        f"""
        import atexit
        import workhorse

        @atexit.register
        def run_last():
            try:
                pool.submit(id, None)
            except RuntimeError as exc:
                print(exc)

        if __name__ == "__main__":
            pool = workhorse.{executor}(2)
            pool.submit(id, 42).result()
        """,
        tmp_path,
    )
    assert done.stdout.strip() == "cannot schedule new futures after interpreter shutdown"


def test_map_results_never_read_still_all_run(make: Factory, tmp_path: Path) -> None:
    """CPython's ``test_map_submits_without_iteration``, with more calls than a window: the
    iterator is dropped unread; every call runs, as with the stdlib's eager map."""
    out = tmp_path / "calls"
    calls = 3 * workhorse._lazy_map.MAP_WINDOW_PER_WORKER * 2 + 7
    with make(2) as executor:
        executor.map(record, [str(out)] * calls, range(calls))  # dropped at once
    assert recorded(out) == list(range(calls))


def test_map_over_a_generator_still_runs_after_the_pool_shut_down(make: Factory) -> None:
    """The stdlib reads the whole input inside ``map()``: results of a generator's calls can
    be read after the ``with`` block, however many there are."""
    count = 3 * workhorse._lazy_map.MAP_WINDOW_PER_WORKER * 2
    with make(2) as executor:
        results = executor.map(abs, (-i for i in range(count)))
    assert list(results) == list(range(count))


def record_pair(pair: tuple[str, int]) -> int:
    return record(*pair)


@pytest.mark.parametrize("read_first", [False, True])
def test_imap_dropped_still_runs_every_call(read_first: bool, tmp_path: Path) -> None:
    """``multiprocessing.Pool.imap`` runs every task whether its iterator is read or not:
    dropping it unread, or after a first result (its input has a length), runs the rest."""
    out = tmp_path / "calls"
    calls = 2 * workhorse._lazy_map.MAP_WINDOW_PER_WORKER * 2 + 3
    with workhorse.Pool(2, context=FORK) as pool:
        results = pool.imap(record_pair, [(str(out), i) for i in range(calls)])
        if read_first:
            assert next(results) == 0
        del results
    assert recorded(out) == list(range(calls))


def test_results_are_not_kept_once_yielded(make: Factory) -> None:
    """CPython's ``test_free_reference``: the result iterator keeps no reference to a result
    it has handed out."""
    with make(2) as executor:
        for thing in executor.map(make_thing, range(10)):
            ref = weakref.ref(thing)
            del thing
            gc.collect()
            assert ref() is None


def test_a_finished_task_keeps_nothing_alive(make: Factory) -> None:
    """CPython's ``test_no_stale_references``: the object behind a bound method that was
    submitted is freed once the task is done (the pool's function cache holds it weakly)."""
    thing = Thing()
    collected = threading.Event()
    ref = weakref.ref(thing, lambda _: collected.set())
    with make(2) as executor:
        executor.submit(thing.method).result(timeout=BOUND)
        del thing
        gc.collect()
        assert collected.wait(BOUND), "a stale reference kept the task's object alive"
        assert ref() is None


def test_queued_futures_stay_cancellable_while_batched(make: Factory) -> None:
    """A future is RUNNING only once its batch is sent to a worker, as the stdlib's are
    once they enter the call queue: queued ones, batched or not, can be cancelled."""
    gate = workhorse.Event() if make is EXECUTORS["process"] else threading.Event()
    with make(1) as executor:
        blocker = executor.submit(gate.wait, BOUND)
        queued = [executor.submit(abs, -i) for i in range(50)]
        cancelled = [f for f in queued if f.cancel()]
        assert len(cancelled) >= 45
        gate.set()
        assert blocker.result(timeout=BOUND) is True
        for future in queued:
            assert future.cancelled() or future.result(timeout=BOUND) == queued.index(future)


def test_shutdown_cancel_futures_cancels_what_has_not_started(make: Factory) -> None:
    """CPython's ``test_cancel_futures``."""
    gate = workhorse.Event() if make is EXECUTORS["process"] else threading.Event()
    executor = make(2)
    blockers = [executor.submit(gate.wait, BOUND) for _ in range(2)]
    deadline = time.monotonic() + BOUND
    while not all(b.running() for b in blockers):  # sent to the workers: no longer pending
        assert time.monotonic() < deadline
        time.sleep(0.001)
    queued = [executor.submit(abs, -i) for i in range(50)]
    threading.Timer(0.2, gate.set).start()
    executor.shutdown(wait=True, cancel_futures=True)
    assert all(b.result(timeout=0) for b in blockers)
    cancelled = [f for f in queued if f.cancelled()]
    assert len(cancelled) >= 40
    assert all(f.done() for f in queued)


class _Endless:
    def __init__(self) -> None:
        self.pulled = 0

    def __iter__(self) -> Iterator[int]:
        while True:
            self.pulled += 1
            yield self.pulled


def test_a_map_being_read_over_an_endless_input_streams_and_shuts_down(make: Factory) -> None:
    """The lazy map's own case (the stdlib hangs in ``map()`` on an endless input): one being
    read runs as far as it is read, and shutting the pool down does not pull it forever."""
    source = _Endless()
    with make(2) as executor:
        results = executor.map(abs, source)
        assert [next(results) for _ in range(10)] == list(range(1, 11))
    assert source.pulled < 10**6


def _first_byte(data: bytes) -> int:
    return data[0]


def test_read_ahead_is_bounded_by_bytes_too() -> None:
    """Issue 10 item 6: a lazy map pulled 16,384 inputs before its first result, whatever
    their size; 4 MiB items would have been 64 GiB. It now stops at its byte budget."""
    pulled = 0

    def big_items() -> Iterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield bytes([pulled % 256]) * (4 * 2**20)

    with FORK.Pool(2) as pool:
        results = pool.imap(_first_byte, big_items())
        assert next(results) == 1
        budget = 2 * workhorse._lazy_map.MAP_READ_AHEAD_BYTES_PER_WORKER // (4 * 2**20)
        assert pulled <= budget + 8, f"{pulled} items of 4 MiB pulled ahead"
        results.close()
