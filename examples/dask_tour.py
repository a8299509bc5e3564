"""Four seed scenarios on a Dask cluster, their task functions unchanged.

The seed tour (``workhorse demo``, ``examples/seed/``) runs on local processes. Here the same
functions run on ``workhorse.dask()`` -- an embedded ``LocalCluster`` by default, or the
cluster at ``$DASK_SCHEDULER_ADDRESS`` -- only the pool, the primitives and the group come
from the Dask context instead of ``workhorse``:

* s06 pool: ``apply_async`` with an ``error_callback``; the failing task is not lost;
* s18 executor: ``submit`` returns real ``concurrent.futures.Future`` objects;
* s03 queue: a producer and a consumer (a task group) share a cluster-wide queue that the
  producer shuts down, so the consumer's loop ends by itself;
* s07 lock: two tasks append to one file under a cluster-wide lock (the cluster is on this
  machine, so the file is shared).

Run it with ``python examples/dask_tour.py`` (needs ``pip install "workhorse[dask]"``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from workhorse._tour import s03_queue, s06_pool, s07_lock, s18_executor_submit

import workhorse

if TYPE_CHECKING:
    from workhorse._dask._context import DaskContext


def pool(cluster: DaskContext) -> None:
    print("== s06 pool: apply_async on the cluster")
    with cluster.Pool() as p:
        results = [
            p.apply_async(s06_pool.task, (i,), error_callback=s06_pool.report) for i in range(10)
        ]
        p.close()
        p.join()
    failed = 0
    for result in results:
        try:
            result.get()
        except ValueError:
            failed += 1
    print(f"{len(results) - failed} tasks ran, {failed} failed on purpose (task 7)")


def executor(cluster: DaskContext) -> None:
    print("== s18 executor: submit on the cluster")
    with cluster.ProcessPoolExecutor() as ex:
        futures = [ex.submit(s18_executor_submit.task, t) for t in s18_executor_submit.TOTALS]
        for total, future in zip(s18_executor_submit.TOTALS, futures, strict=True):
            print(f"task({total}) = {future.result(timeout=60)}")


def queue(cluster: DaskContext) -> None:
    print("== s03 queue: producer and consumer as a task group")
    q = cluster.Queue()
    with cluster.group() as g:
        g.start(s03_queue.consumer, q)
        g.start(s03_queue.producer, q)
    print("the consumer's loop ended when the producer shut the queue down")


def lock(cluster: DaskContext) -> None:
    print("== s07 lock: two tasks append to one file under one lock")
    shared = cluster.Lock()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shared.log"
        with cluster.group() as g:
            for label in "AB":
                g.start(s07_lock.append_lines, label, path, shared)
        lines = path.read_text().splitlines()
    print("\n".join(lines))
    labels = [line[0] for line in lines]
    assert labels in (["A"] * 5 + ["B"] * 5, ["B"] * 5 + ["A"] * 5), "lines interleaved"


def main() -> None:
    # two workers: the queue and lock scenarios need two tasks running at once
    with workhorse.dask(n_workers=2) as cluster:
        pool(cluster)
        executor(cluster)
        queue(cluster)
        lock(cluster)
    print("all four scenarios ran on Dask")


if __name__ == "__main__":
    main()
