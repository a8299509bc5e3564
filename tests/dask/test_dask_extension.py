"""workhorse's scheduler plugin (``workhorse._dask._extension``) when the scheduler forgets:
a client that reconnects, a scheduler that lost the plugin, a worker no nanny reports on."""

from __future__ import annotations

import queue
import time
from typing import Any

import pytest

pytest.importorskip("distributed")

from dask_cluster import *  # noqa: F403

import workhorse
from workhorse._dask import _extension
from workhorse._dask._context import DaskContext


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _forget_client(client_id: str, dask_scheduler: Any) -> None:
    plugin = dask_scheduler.plugins[_extension.NAME]
    plugin.remove_client(dask_scheduler, client_id)


def _drop_plugin(dask_scheduler: Any) -> None:
    prefix = _extension.HANDLERS
    for op in [op for op in dask_scheduler.handlers if op.startswith(prefix)]:
        del dask_scheduler.handlers[op]
    dask_scheduler.plugins.pop(_extension.NAME, None)


def test_a_pool_goes_on_after_its_client_was_dropped_and_came_back(cluster: DaskContext) -> None:
    """The scheduler drops a client's records when its connection goes; the client comes
    back under the same id and its pool keeps its guarantees (they failed as lost batches)."""
    with cluster.Pool(timeout=1.0) as pool:
        assert pool.map(abs, range(-20, 0)) == list(range(20, 0, -1))
        cluster.client.run_on_scheduler(_forget_client, cluster.client.id)
        assert pool.map(abs, range(-20, 0)) == list(range(20, 0, -1))
        results = pool.imap(nap, [0.01, 60])
        assert results.next(timeout=30) == 0.01
        with pytest.raises(workhorse.TaskTimeout):  # the record that says which item it was
            results.next(timeout=30)


def test_queues_work_on_when_the_scheduler_lost_the_plugin(cluster: DaskContext) -> None:
    q = cluster.Queue()
    q.put(1)
    cluster.client.run_on_scheduler(_drop_plugin)  # as a restarted scheduler would be
    assert q.get(timeout=10) == 1  # installed again on the way
    with pytest.raises(queue.Empty):
        q.get(timeout=0.1)
    with cluster.Pool() as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]


def test_an_exit_no_nanny_will_report_is_not_waited_for(cluster: DaskContext) -> None:
    client = cluster.client
    _extension.install(client)
    began = time.monotonic()
    reply = _extension._call(client, "exit_status", address="tcp://192.0.2.1:1", pid=1, timeout=20)
    assert list(reply) == [None]
    assert time.monotonic() - began < 10  # it did not wait out the 20 s
