"""The Dask backend's pools and executors: API parity, faults, timeouts, retries, cancel."""

from __future__ import annotations

import io
import itertools
import logging
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

# The session's cluster and the Dask-aware leak guard (overrides the root no_leaks).
from dask_cluster import *  # noqa: F403

import workhorse
from workhorse._dask._context import DaskContext

pytestmark = pytest.mark.timeout(60)


def square(x: int) -> int:
    return x * x


def boom(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def exit_on(x: int, bad: int = 3) -> int:
    if x == bad:
        os._exit(7)
    return x


def exit_on_13(x: int) -> int:
    return exit_on(x, 13)


def sigkill_on(x: int) -> int:
    if x == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def flaky(path: str) -> str:
    """Fails on its first call (per ``path``), then succeeds."""
    marker = Path(path)
    if not marker.exists():
        marker.write_text("seen")
        raise ConnectionError("first try fails")
    return "ok"


def wait_then_sleep(name: str) -> None:
    from distributed import Event

    Event(name).set()
    time.sleep(60)


def total(array: Any) -> float:
    return float(array.sum())


def test_import_workhorse_never_imports_dask() -> None:
    code = "import sys, workhorse; assert not {'distributed', 'dask'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_missing_distributed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "workhorse\[dask\]"'):
        workhorse.dask()


def test_pool_api(cluster: DaskContext) -> None:
    with cluster.Pool() as pool:
        assert pool.map(square, range(100)) == [x * x for x in range(100)]
        assert pool.starmap(pow, [(2, 3), (3, 2)]) == [8, 9]
        assert pool.apply(pow, (2, 10)) == 1024
        seen: list[int] = []
        result = pool.apply_async(square, (7,), callback=seen.append)
        assert result.get(timeout=30) == 49
        assert seen == [49]
        assert pool.map_async(square, [1, 2]).get(timeout=30) == [1, 4]
        assert list(pool.imap(square, range(10))) == [x * x for x in range(10)]
        assert sorted(pool.imap_unordered(square, range(10))) == [x * x for x in range(10)]
        # lazy, bounded: an infinite input works
        assert list(itertools.islice(pool.imap(square, itertools.count()), 5)) == [0, 1, 4, 9, 16]
        with pytest.raises(ValueError, match="three"):
            pool.map(boom, range(5))


def test_executor_api(cluster: DaskContext) -> None:
    with cluster.ProcessPoolExecutor() as executor:
        assert executor.submit(pow, 2, 5).result(timeout=30) == 32
        assert list(executor.map(pow, [2, 3], [2, 2])) == [4, 9]
        view = executor.with_options(retries=1)
        assert view.submit(square, 4).result(timeout=30) == 16
        with pytest.raises(ValueError, match="three"):
            executor.submit(boom, 3).result(timeout=30)
    assert cluster.Executor is not None


def test_retries_are_logged_and_noted_as_on_the_local_backends(
    cluster: DaskContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workhorse")
    with cluster.ProcessPoolExecutor(retries=1) as executor:
        error = executor.submit(boom, 3).exception(timeout=30)
    assert isinstance(error, ValueError)
    assert "try 1 of 2 failed: ValueError: three" in error.__notes__
    records = [r for r in caplog.records if r.name == "workhorse.dask"]
    assert any("boom(3) failed on try 1 of 2" in r.getMessage() for r in records), records


def test_stats_count_outcomes_retries_and_busy_time(cluster: DaskContext) -> None:
    with cluster.ProcessPoolExecutor(retries=1) as executor:
        assert list(executor.map(square, range(200))) == [x * x for x in range(200)]
        assert isinstance(executor.submit(boom, 3).exception(timeout=30), ValueError)
        stats = executor.stats()
    assert (stats.submitted, stats.done, stats.failed, stats.retried) == (201, 200, 1, 1)
    assert stats.pending == 0
    assert sum(w.tasks for w in stats.workers) == 202  # the failed task ran twice
    assert all(w.worker.startswith("pid ") for w in stats.workers)


def test_asyncio_run_and_amap(cluster: DaskContext) -> None:
    import asyncio

    async def main() -> None:
        async with cluster.ProcessPoolExecutor() as executor:
            assert await executor.run(square, 12) == 144
            with pytest.raises(ValueError, match="three"):
                await executor.run(boom, 3)
            assert [x async for x in executor.amap(square, range(300))] == [
                x * x for x in range(300)
            ]

    asyncio.run(main())


def dask_worker_info(_: int) -> tuple[Any, str, int]:
    info = workhorse.worker()
    assert info is not None
    info.state["calls"] = info.state.get("calls", 0) + 1
    return info.id, info.backend, info.state["calls"]


def test_tasks_see_their_dask_worker(cluster: DaskContext) -> None:
    with cluster.Pool() as pool:
        seen = pool.map(dask_worker_info, range(50))
    workers = cluster.client.scheduler_info()["workers"]
    names = {worker["name"] for worker in workers.values()}
    assert {s[0] for s in seen} <= names
    assert {s[1] for s in seen} == {"dask"}
    assert max(s[2] for s in seen) > 1  # a worker's state outlives a batch


def shared_sum(offset: int) -> float:
    info = workhorse.worker()
    assert info is not None
    return float(info.shared["array"].sum()) + offset


def shared_of_worker() -> Any:
    info = workhorse.worker()
    assert info is not None
    return info.shared


def test_shared_data_reaches_every_batch(cluster: DaskContext) -> None:
    import numpy as np

    array = np.ones(300_000)
    with cluster.Pool(shared={"array": array}) as pool:
        assert pool.map(shared_sum, range(20)) == [300_000.0 + i for i in range(20)]
    with cluster.ProcessPoolExecutor() as executor:  # another pool: its own (no) shared data
        assert executor.submit(shared_of_worker).result(timeout=60) is None


def test_shared_data_that_cannot_be_pickled_is_refused(cluster: DaskContext) -> None:
    import threading

    with pytest.raises(workhorse.SerializationError, match="cannot pickle shared"):
        cluster.Pool(shared=threading.Lock())


def test_trace_and_insights(cluster: DaskContext, tmp_path: Path) -> None:
    import json

    path = tmp_path / "run.json"
    with cluster.Pool(trace=path) as pool:
        assert pool.map(square, range(100)) == [x * x for x in range(100)]
        assert "100 tasks submitted, 100 done" in pool.insights()
    events = json.loads(path.read_text())["traceEvents"]
    assert sum(e["args"]["tasks"] for e in events if e["ph"] == "X") == 100


def test_insights_true_times_each_task(cluster: DaskContext, tmp_path: Path) -> None:
    import json

    path = tmp_path / "run.json"
    with cluster.Pool(trace=path, insights=True) as pool:
        assert pool.map(square, range(100)) == [x * x for x in range(100)]
        text = pool.insights()
    assert "tasks: 100 timed" in text
    assert "slowest tasks:" in text
    events = json.loads(path.read_text())["traceEvents"]
    assert sum(1 for e in events if e.get("cat") == "task") == 100


def test_with_options_and_progress(cluster: DaskContext) -> None:
    stream = io.StringIO()
    with cluster.Pool(progress=stream) as pool:
        assert pool.map(square, range(50)) == [x * x for x in range(50)]
        assert pool.with_options(timeout=30).map(square, [3]) == [9]
    assert stream.getvalue()


def test_many_tiny_tasks_are_batched(cluster: DaskContext) -> None:
    with cluster.Pool() as pool:
        start = time.perf_counter()
        assert pool.map(abs, range(20_000)) == list(range(20_000))
        # one Dask task per item would take ~30 s at ~600 tasks/s; batches take well under 5
        assert time.perf_counter() - start < 5


def batch_key(_: int) -> str:
    from distributed import get_worker

    return str(get_worker().get_current_task())  # the Dask task: one per batch


def test_a_new_job_is_not_sized_by_the_last_jobs_timing(cluster: DaskContext) -> None:
    """The batch floor (50 ms of work) uses the time measured on the job's own items: after
    a map of no-ops, a floor from their microseconds would send the next map -- of items that
    may take seconds -- to one worker as one batch. Its first batches are a fair share."""
    with cluster.Pool() as pool:
        pool.map(square, range(20_000))
        assert len(set(pool.map(batch_key, range(8)))) >= 3  # 2 + 1 + 1 + ...


def test_large_numpy_arguments_are_scattered(cluster: DaskContext) -> None:
    numpy = pytest.importorskip("numpy")
    array = numpy.ones(300_000)  # 2.4 MB: above SCATTER_BYTES
    with cluster.ProcessPoolExecutor() as executor:
        assert executor.submit(total, array).result(timeout=30) == 300_000.0
        assert list(executor.map(total, [array, array])) == [300_000.0, 300_000.0]


def test_a_failed_scatter_fails_its_batch_instead_of_hanging(
    cluster: DaskContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    numpy = pytest.importorskip("numpy")
    array = numpy.ones(300_000)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("the cluster went away")

    with cluster.Pool() as pool:
        monkeypatch.setattr(cluster.client, "scatter", refuse)
        results = pool.map_async(total, [array, array], chunksize=1)
        with pytest.raises(workhorse.PoolBroken, match="the cluster went away"):
            results.get(timeout=30)


def test_ctrl_c_while_sending_leaves_nothing_in_flight(
    cluster: DaskContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt while a group of batches is pickled reaches the caller; the
    batches not sent go back to the queue, so the pool neither hangs nor loses them."""
    real_map = cluster.client.map
    interrupts = [KeyboardInterrupt()]

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        if interrupts:
            raise interrupts.pop()
        return real_map(*args, **kwargs)

    monkeypatch.setattr(cluster.client, "map", interrupted)
    with cluster.Pool() as pool:
        with pytest.raises(KeyboardInterrupt):
            pool.map_async(square, range(8), chunksize=2)
        assert pool.map(square, range(4), chunksize=1) == [0, 1, 4, 9]
        pool.close()
        pool.join()  # the interrupted map's batches ran too: nothing was left in flight


def test_a_task_that_exits_fails_alone(cluster: DaskContext) -> None:
    with cluster.ProcessPoolExecutor() as executor:
        futures = [executor.submit(exit_on, x) for x in range(6)]
        for x, future in enumerate(futures):
            if x == 3:
                with pytest.raises(workhorse.WorkerCrashed):
                    future.result(timeout=30)
            else:
                assert future.result(timeout=30) == x
        assert executor.submit(square, 5).result(timeout=30) == 25  # the pool goes on


def kill_self(how: str) -> None:
    if how == "exit":
        os._exit(3)
    os.kill(os.getpid(), signal.SIGKILL)


def test_worker_crashed_says_how_the_worker_ended(cluster: DaskContext) -> None:
    """The nanny's view of the exit reaches the client (it said "exited with code None")."""
    with cluster.ProcessPoolExecutor() as executor:
        exited = executor.submit(kill_self, "exit").exception(timeout=30)
        assert isinstance(exited, workhorse.WorkerCrashed)
        assert exited.exitcode == 3
        assert "exited with code 3" in str(exited)
        killed = executor.submit(kill_self, "kill").exception(timeout=30)
        assert isinstance(killed, workhorse.WorkerCrashed)
        assert (killed.exitcode, killed.signal_name) == (-signal.SIGKILL, "SIGKILL")


def test_a_batch_whose_worker_dies_loses_only_the_culprit(cluster: DaskContext) -> None:
    # fixed batches of 10: item 13 kills the worker in the middle of the second batch
    with cluster.Pool(chunksize=10) as pool:
        results = pool.imap(exit_on_13, range(30))
        for x in range(30):
            if x == 13:
                with pytest.raises(workhorse.WorkerCrashed):
                    results.next(timeout=30)
            else:
                assert results.next(timeout=30) == x


def test_sigkill_fails_only_its_task(cluster: DaskContext) -> None:
    with cluster.Pool() as pool:
        results = pool.imap(sigkill_on, range(5))
        for x in range(5):
            if x == 2:
                with pytest.raises(workhorse.WorkerCrashed) as info:
                    results.next(timeout=30)
                assert "KilledWorker" not in repr(info.value)
            else:
                assert results.next(timeout=30) == x


def test_timeout_really_stops_the_task(cluster: DaskContext) -> None:
    with cluster.Pool(timeout=1.0) as pool:
        start = time.monotonic()
        results = pool.imap(nap, [0.01, 60, 0.01])
        assert results.next(timeout=30) == 0.01
        with pytest.raises(workhorse.TaskTimeout):
            results.next(timeout=30)
        assert results.next(timeout=30) == 0.01
        assert time.monotonic() - start < 20


def test_retries_and_retry_on(cluster: DaskContext, tmp_path: Path) -> None:
    with cluster.ProcessPoolExecutor(retries=1) as executor:
        assert executor.submit(flaky, str(tmp_path / "a")).result(timeout=30) == "ok"
        picky = executor.with_options(retry_on=KeyError)
        with pytest.raises(ConnectionError):
            picky.submit(flaky, str(tmp_path / "b")).result(timeout=30)
    with cluster.ProcessPoolExecutor(retries=1) as executor:  # a crash is retried too
        assert executor.submit(exit_on, 1, 1).exception(timeout=30) is not None


def test_cancel_a_running_task(cluster: DaskContext) -> None:
    from distributed import Event

    name = f"started-{os.getpid()}-{time.monotonic_ns()}"
    with cluster.ProcessPoolExecutor(cancel_running=True) as executor:
        future = executor.submit(wait_then_sleep, name)
        assert Event(name, client=cluster.client).wait(timeout=30)
        assert future.cancel()
        with pytest.raises(CancelledError):
            future.result(timeout=1)
        assert executor.submit(square, 3).result(timeout=30) == 9


def test_shutdown_cancel_futures_and_terminate(cluster: DaskContext) -> None:
    executor = cluster.ProcessPoolExecutor(max_workers=1)
    futures = [executor.submit(nap, 0.2) for _ in range(5)]
    executor.shutdown(wait=True, cancel_futures=True)
    assert all(f.done() for f in futures)
    with pytest.raises(RuntimeError):
        executor.submit(square, 1)
    pool = cluster.Pool()
    result = pool.map_async(nap, [0.05] * 4)
    pool.close()
    pool.join(timeout=30)
    assert result.get(timeout=1) == [0.05] * 4


def test_batches_sent_together_are_refused_alone(
    cluster: DaskContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batches of a map go in one Dask call; when it is refused (an argument that
    does not pickle), each is sent alone: only the one holding that argument fails."""
    import threading

    refused_groups = []
    real_map = cluster.client.map

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_map(*args, **kwargs)
        except Exception:
            refused_groups.append(len(kwargs["key"]))
            raise

    monkeypatch.setattr(cluster.client, "map", spy)
    items: list[Any] = [-i for i in range(8)]
    items[5] = threading.Lock()
    with cluster.Pool() as pool:
        results = pool.imap(abs, items, chunksize=2)
        got: list[Any] = []
        for _ in items:
            try:
                got.append(next(results))
            except workhorse.SerializationError as exc:
                got.append(str(exc))
        assert pool.map(abs, [-1, -2, -3, -4], chunksize=1) == [1, 2, 3, 4]  # together again
    assert got[:5] + got[6:] == [0, 1, 2, 3, 4, 6, 7]
    assert "cannot pickle an argument of task abs" in got[5]
    assert max(refused_groups, default=0) > 1, refused_groups  # refused as a group first


def gives_a_lock(x: int) -> Any:
    import threading

    return threading.Lock() if x == 2 else x


def test_unpicklable_arguments_and_results_fail_alone_as_on_the_local_pools(
    cluster: DaskContext, capfd: pytest.CaptureFixture[str]
) -> None:
    import threading

    with cluster.ProcessPoolExecutor() as executor:
        futures = [executor.submit(abs, threading.Lock() if i == 1 else -i) for i in range(4)]
        errors = [f.exception(timeout=60) for f in futures]
        assert isinstance(errors[1], workhorse.SerializationError)
        assert isinstance(errors[1], TypeError)  # the type pickling raised, as locally
        assert "cannot pickle an argument of task abs" in str(errors[1])
        assert [f.result() for i, f in enumerate(futures) if i != 1] == [0, 2, 3]
        results = executor.map(gives_a_lock, range(5))  # one batch: one item fails
        assert [next(results), next(results)] == [0, 1]
        with pytest.raises(workhorse.SerializationError, match="result of task gives_a_lock"):
            next(results)
        with cluster.Pool() as pool:
            mapped = pool.map_async(gives_a_lock, [0, 1, 3, 4])
            assert mapped.get(60) == [0, 1, 3, 4]
    err = capfd.readouterr().err
    assert "Failed to serialize" not in err
    assert "Could not serialize" not in err
