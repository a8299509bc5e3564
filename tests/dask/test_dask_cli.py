"""A cluster started the way operators do: ``dask scheduler`` and ``dask worker`` processes
on loopback, reached with ``workhorse.dask(address=...)``. The context leaves it running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from cli_cluster import START, start_cli_cluster
from dask_cluster import *  # noqa: F403

import workhorse
from workhorse import WorkerCrashed
from workhorse._dask._context import DaskContext

pytestmark = pytest.mark.timeout(90)


def exit_on(x: int) -> int:
    if x == 5:
        os._exit(9)
    return x * 2


def use_primitives(q: Any, lock: Any, event: Any, x: int) -> int:
    with lock:
        q.put(x)
    event.set()
    return x


@pytest.fixture
def cli_cluster(tmp_path: Path) -> Iterator[str]:
    """The operator's cluster, set as the embedded one is (see cli_cluster.ENV)."""
    with start_cli_cluster(tmp_path) as started:
        yield started.address


def test_a_cluster_started_with_the_dask_programs(cli_cluster: str, cluster: DaskContext) -> None:
    with workhorse.dask(address=cli_cluster) as remote:
        assert remote.cluster is None  # connected, not embedded
        remote.client.wait_for_workers(2, timeout=START)
        with remote.Pool() as pool:
            assert pool.map(exit_on, range(5)) == [0, 2, 4, 6, 8]
        with remote.ProcessPoolExecutor() as executor:  # a crash fails only its own task
            crashed, fine = executor.submit(exit_on, 5), executor.submit(exit_on, 4)
            with pytest.raises(WorkerCrashed):
                crashed.result(timeout=60)
            assert fine.result(timeout=60) == 8
        # the primitives from the client, on the remote scheduler
        event, q, lock = remote.Event(), remote.Queue(), remote.Lock()
        event.set()
        assert event.is_set()
        q.put_many([1, 2])
        assert q.get_many(2, timeout=10) == [1, 2]
        assert lock.acquire(timeout=10)
        assert lock.locked()
        lock.release()
        # ... and inside tasks: the scheduler unpickles a task's arguments and pickles them
        # again for the worker, in a process without a client (this hung before)
        done = remote.Event()
        with remote.ProcessPoolExecutor() as executor:
            assert executor.submit(use_primitives, q, lock, done, 7).result(timeout=60) == 7
        assert q.get(timeout=10) == 7
        assert done.is_set()
        assert not lock.locked()
    # The context closed its client only: the cluster is still there, its workers too.
    from distributed import Client

    with Client(cli_cluster, set_as_default=False, timeout=START) as again:
        again.wait_for_workers(2, timeout=START)
        assert again.submit(pow, 2, 5, pure=False).result(timeout=30) == 32


def test_workhorse_map_runs_on_a_cluster(cli_cluster: str, tmp_path: Path) -> None:
    """``workhorse map --dask ADDRESS``: the same job, its journal and output, on Dask (the
    function's module must be importable on the Dask workers: the bundled example's is)."""
    (tmp_path / "in.jsonl").write_text("".join(f'{{"n": {n}}}\n' for n in range(1, 51)))
    target = "workhorse._jobs._example:collatz_steps"
    run = subprocess.run(
        [sys.executable, "-m", "workhorse", "map", target, "in.jsonl", "-o", "out.jsonl",
         "--dask", cli_cluster, "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=START + 30, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["done"] == 50
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["result"]["n"] for r in lines) == list(range(1, 51))
    assert {r["result"]["steps"] for r in lines if r["result"]["n"] == 27} == {111}


def test_workhorse_run_runs_commands_on_dask_workers(cli_cluster: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "workhorse", "run", "--dask", cli_cluster, "-o", "r.jsonl",
         "--timeout", "5", "echo {#}; [ {} != b ]", ":::", "a", "b", "c"],
        cwd=tmp_path, capture_output=True, text=True, timeout=START + 30, check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # 'b' failed
    records = {
        r["key"]: r for r in map(json.loads, (tmp_path / "r.jsonl").read_text().split("\n")[:-1])
    }
    assert records["a"]["result"]["stdout"] == "1\n"
    assert records["b"]["error"]["exit"] == 1
    assert records["c"]["worker"].startswith("tcp://")  # a Dask worker ran it
    refused = subprocess.run(
        [sys.executable, "-m", "workhorse", "run", "--dask", cli_cluster, "--halt", "now,fail=1",
         "true", ":::", "a"],
        cwd=tmp_path, capture_output=True, text=True, timeout=START, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "--halt now cannot kill commands on Dask workers" in refused.stderr
