"""The backend contract (``workhorse._backend``), checked on every local backend through the
same pool faces, and the serial backend's own promises."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

import workhorse
from workhorse._backend import Backend
from workhorse._config import BACKEND_ENV, PoolConfig
from workhorse._registry import backend_names, make_backend, register_backend

LOCAL = ("processes", "threads", "serial")


def _double(x: int) -> int:
    return 2 * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad {x}")
    return x


class _Flaky:
    """Fails its first ``failures`` calls (per process), then returns the argument."""

    def __init__(self, failures: int) -> None:
        self.left = failures

    def __call__(self, x: int) -> int:
        if self.left > 0:
            self.left -= 1
            raise ConnectionError("flaky")
        return x


def _where(_: object) -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


def _boom() -> None:
    raise RuntimeError("init failed")


@pytest.mark.parametrize("backend", LOCAL)
def test_every_backend_satisfies_the_contract(backend: str) -> None:
    config = PoolConfig.build(default_backend=backend, default_workers=2)
    engine = make_backend(config)
    try:
        assert isinstance(engine, Backend)
        assert engine.submit(pow, (2, 10), {}, config.options).result(timeout=30) == 1024
    finally:
        engine.shutdown()


@pytest.mark.parametrize("backend", LOCAL)
def test_map_errors_and_order_are_the_same_on_every_backend(backend: str) -> None:
    with workhorse.Pool(2, backend=backend) as pool:
        assert pool.map(_double, range(50)) == [2 * x for x in range(50)]
        assert list(pool.imap(_double, range(5))) == [0, 2, 4, 6, 8]
        assert sorted(pool.imap_unordered(_double, range(5))) == [0, 2, 4, 6, 8]
        with pytest.raises(ValueError, match="bad 3"):
            pool.map(_fail_on_three, range(6))
    with workhorse.ProcessPoolExecutor(2, backend=backend) as executor:
        futures = [executor.submit(_fail_on_three, x) for x in range(5)]
        assert [f.exception() is None for f in futures] == [True, True, True, False, True]
        assert isinstance(futures[3].exception(), ValueError)
        assert list(executor.map(_double, [1, 2], timeout=30)) == [2, 4]


@pytest.mark.parametrize("backend", LOCAL)
def test_retries_go_through_the_one_retry_path(backend: str) -> None:
    # One failure per process: a retry may land on the other worker, so allow two.
    with workhorse.ThreadPoolExecutor(2, backend=backend, retries=2) as executor:
        assert executor.submit(_Flaky(1), 7).result(timeout=30) == 7
    executor = workhorse.ThreadPoolExecutor(2, backend=backend, retries=1)
    with executor, pytest.raises(ConnectionError):
        executor.submit(_Flaky(5), 7).result(timeout=30)


@pytest.mark.parametrize("backend", LOCAL)
def test_a_failing_initializer_breaks_the_pool_on_every_backend(backend: str) -> None:
    executor = workhorse.ProcessPoolExecutor(1, initializer=_boom, backend=backend)
    try:
        with pytest.raises(workhorse.PoolBroken):
            executor.submit(_double, 1).result(timeout=30)
    finally:
        executor.shutdown(cancel_futures=True)


def test_serial_runs_inline_in_the_caller_in_order() -> None:
    seen: list[int] = []
    with workhorse.Pool(4, backend="serial") as pool:
        assert pool.map(_where, range(3)) == [(os.getpid(), threading.get_ident())] * 3
        assert pool.map(seen.append, range(5)) == [None] * 5  # a closure over caller state
    assert seen == [0, 1, 2, 3, 4]


def test_serial_imap_runs_each_call_when_it_is_read() -> None:
    ran: list[int] = []

    def record(x: int) -> int:
        ran.append(x)
        return x

    with workhorse.ThreadPool(2, backend="serial") as pool:
        results = pool.imap(record, iter(range(1_000_000)))  # lazy: an endless input is fine
        assert next(results) == 0
        assert next(results) == 1
        assert len(ran) <= 3
        results.close()


def test_serial_progress_and_with_options() -> None:
    import io

    stream = io.StringIO()
    with workhorse.Pool(2, backend="serial", progress=stream) as pool:
        assert pool.map(_double, range(10)) == [2 * x for x in range(10)]
        view = pool.with_options(retries=3)
        assert view.apply(_Flaky(2), (5,)) == 5
    assert "10/10" in stream.getvalue()


def test_serial_keyboard_interrupt_reaches_the_caller_and_cancels_the_rest() -> None:
    def interrupt(x: int) -> int:
        if x == 1:
            raise KeyboardInterrupt
        return x

    executor = workhorse.ThreadPoolExecutor(backend="serial")
    with pytest.raises(KeyboardInterrupt):
        executor.submit(interrupt, 1)
    pool = workhorse.Pool(backend="serial")
    with pytest.raises(KeyboardInterrupt):
        pool.map_async(interrupt, [0, 1, 2])
    pool.terminate()


def test_serial_timeout_interrupts_a_task_in_the_main_thread(tmp_path: Any) -> None:
    # pytest-timeout owns SIGALRM in this process: the alarm path runs in a fresh one.
    script = tmp_path / "serial_timeout.py"
    script.write_text(
        textwrap.dedent(
            """
            import time, workhorse
            with workhorse.ProcessPoolExecutor(backend="serial", timeout=0.2) as ex:
                began = time.monotonic()
                future = ex.submit(time.sleep, 30)
                assert isinstance(future.exception(), workhorse.TaskTimeout), future
                assert time.monotonic() - began < 10
                assert ex.submit(pow, 2, 3).result() == 8
            print("ok")
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_serial_timeout_outside_the_main_thread_fails_after_the_task() -> None:
    import time

    outcome: list[BaseException | None] = []

    def run() -> None:
        with workhorse.ThreadPoolExecutor(backend="serial", timeout=0.05) as executor:
            outcome.append(executor.submit(time.sleep, 0.2).exception())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert isinstance(outcome[0], workhorse.TaskTimeout)
    assert "could not be interrupted" in str(outcome[0])


def test_the_environment_switches_every_pool_without_a_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(BACKEND_ENV, "serial")
    with workhorse.ProcessPoolExecutor(2) as executor:
        assert executor.submit(os.getpid).result() == os.getpid()
    with workhorse.Pool(2, backend="threads") as pool:  # an explicit backend wins
        assert pool.apply(os.getpid) == os.getpid()
        assert pool.apply(threading.get_ident) != threading.get_ident()
    monkeypatch.setenv(BACKEND_ENV, "gpu")
    with pytest.raises(ValueError, match=r"\$WORKHORSE_BACKEND must be one of .*'serial'.*'gpu'"):
        workhorse.Pool(2)


@pytest.mark.parametrize("bad", ["gpu", 3, ""])
def test_a_bad_backend_name_is_refused_naming_the_argument(bad: object) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        workhorse.ThreadPool(2, backend=bad)  # type: ignore[arg-type]


def test_the_dask_backend_refuses_what_dask_workers_cannot_take() -> None:
    with pytest.raises(ValueError, match="does not take initializer"):
        PoolConfig.build(default_backend="dask", initializer=print)
    with pytest.raises(ValueError, match="does not take a per-worker task limit"):
        PoolConfig.build(default_backend="dask", max_tasks_per_worker=3)


def test_a_new_backend_is_one_registration() -> None:
    from workhorse._backends.serial import SerialEngine

    made: list[PoolConfig] = []

    def factory(config: PoolConfig) -> Backend:
        made.append(config)
        return SerialEngine(config)

    register_backend("test-inline", factory)
    try:
        assert "test-inline" in backend_names()
        with workhorse.Pool(3, backend="test-inline", timeout=9) as pool:
            assert pool.map(_double, [1, 2]) == [2, 4]
        assert made[0].workers == 3
        assert made[0].options.timeout == 9.0
    finally:
        from workhorse import _registry

        _registry._factories.pop("test-inline")


def test_cancelled_future_on_serial_is_never_run() -> None:
    with workhorse.ThreadPoolExecutor(backend="serial") as executor:
        future = executor.submit(_double, 1)
        assert future.result() == 2
        assert not future.cancel()
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(_double, 1)
