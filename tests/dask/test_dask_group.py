"""Task groups on the Dask context: results in start order, a failure stops the siblings."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("distributed")

from dask_cluster import *  # noqa: F403

from workhorse import WorkerCrashed
from workhorse._dask._context import DaskContext

pytestmark = pytest.mark.timeout(60)


def fail(message: str) -> None:
    raise ValueError(message)


def crash() -> None:
    os._exit(3)


def test_group_results_in_start_order(cluster: DaskContext) -> None:
    with cluster.group() as g:
        first = g.start(pow, 2, 10)
        g.start(pow, 3, 2)
        g.start(sorted, [3, 1, 2])
    assert g.results == [1024, 9, [1, 2, 3]]
    assert first.result() == 1024
    assert not first.is_alive()


def test_group_progress_counts_finished_members(cluster: DaskContext) -> None:
    import io

    stream = io.StringIO()
    with cluster.group(progress=stream) as g:
        for n in range(3):
            g.start(pow, 2, n)
    assert g.results == [1, 2, 4]
    assert "3/3" in stream.getvalue().rstrip("\n").rsplit("\r", 1)[-1]


def test_group_failure_stops_a_blocked_sibling(cluster: DaskContext) -> None:
    never = cluster.Event()
    with pytest.raises(ExceptionGroup) as caught, cluster.group() as g:  # noqa: PT012
        waiter = g.start(never.wait, 60)  # stopped (its worker killed) by the failure
        g.start(fail, "boom")
    assert [str(e) for e in caught.value.exceptions] == ["boom"]
    assert waiter.exception() is not None
    assert not waiter.is_alive()


def test_group_body_exception_stops_members(cluster: DaskContext) -> None:
    never = cluster.Event()
    with pytest.raises(ExceptionGroup) as caught, cluster.group() as g:  # noqa: PT012
        g.start(never.wait, 60)
        raise KeyError("body")
    assert caught.group_contains(KeyError)


def test_group_member_crash_is_worker_crashed(cluster: DaskContext) -> None:
    with pytest.raises(ExceptionGroup) as caught, cluster.group() as g:
        g.start(crash)
    assert caught.group_contains(WorkerCrashed)


def test_group_start_outside_the_block(cluster: DaskContext) -> None:
    group = cluster.group()
    with pytest.raises(RuntimeError):
        group.start(pow, 2, 2)
