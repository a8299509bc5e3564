"""``Pool`` and ``ProcessPoolExecutor`` on a Dask cluster: the local faces over the Dask engine.

The faces of :mod:`workhorse._pool` and :mod:`workhorse._executor` only need an engine with
``submit``/``run``/``stop_job``/``shutdown``/``terminate``/``alive``; so lazy bounded
``imap``, ``with_options``, progress bars and the ``with`` semantics are theirs, unchanged.
What a Dask pool does not take: ``initializer`` (Dask has worker plugins for that) and a
per-worker task limit (Dask workers are long-lived services).

Example::

    with workhorse.dask() as cluster:
        with cluster.Pool() as pool:
            print(pool.map(abs, [-1, -2, 3]))   # [1, 2, 3]
"""

from __future__ import annotations

import weakref
from typing import Any

from .._executor import _PoolExecutor
from .._options import Progress, TaskOptions, check_chunksize, check_progress, check_workers
from .._pool import _BasePool
from ._engine import DaskEngine

__all__ = ["DaskExecutor", "DaskPool"]

RetryOn = type[BaseException] | tuple[type[BaseException], ...]


def _workers(value: Any, client: Any, name: str) -> int | None:
    """``None`` (the cluster's threads, looked up by the engine) or a positive int."""
    return None if value is None else check_workers(value, 1, name=name)


class DaskExecutor(_PoolExecutor):
    """A :class:`concurrent.futures.Executor` whose tasks run on a Dask cluster, in batches.

    Returned futures are real :class:`concurrent.futures.Future` objects. ``max_workers``
    caps the batches running at once (default: every worker thread of the cluster).
    ``timeout``, ``retries``/``retry_on``, ``progress`` and ``chunksize`` mean what they mean
    for :class:`workhorse.ProcessPoolExecutor`; a task past its ``timeout`` or cancelled
    while running is stopped by killing its Dask worker, which the nanny restarts.

    Example::

        with workhorse.dask() as cluster, cluster.ProcessPoolExecutor(timeout=60) as pool:
            print(list(pool.map(pow, [2, 3], [10, 2])))   # [1024, 9]
    """

    def __init__(
        self,
        client: Any,
        max_workers: int | None = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        retry_on: RetryOn = (Exception,),
        progress: Progress = False,
        chunksize: int | str = "auto",
        cancel_running: bool = False,
    ) -> None:
        workers = _workers(max_workers, client, "max_workers")
        options = TaskOptions(timeout, retries, retry_on, cancel_running)  # type: ignore[arg-type]
        self._setup(options, progress)
        engine = DaskEngine(
            client, workers, options=self._options, chunksize=check_chunksize(chunksize)
        )
        self._engine = engine  # type: ignore[assignment]
        self._workers = engine.workers
        weakref.finalize(self, engine.shutdown, False)

    def __repr__(self) -> str:
        return f"<workhorse.dask Executor max_workers={self._workers}>"


class DaskPool(_BasePool):
    """A :class:`multiprocessing.pool.Pool` whose tasks run on a Dask cluster, in batches.

    ``processes`` caps the batches running at once (default: every worker thread of the
    cluster). The extras (``timeout``, ``retries``, ``retry_on``, ``progress``,
    ``chunksize``) are those of :class:`workhorse.Pool`.

    Example::

        with workhorse.dask() as cluster, cluster.Pool() as pool:
            squares = pool.imap(lambda x: x * x, itertools.count())
            print(next(squares), next(squares))   # 0 1
    """

    def __init__(
        self,
        client: Any,
        processes: int | None = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        retry_on: RetryOn = (Exception,),
        progress: Progress = False,
        chunksize: int | str = "auto",
    ) -> None:
        workers = _workers(processes, client, "processes")
        options = TaskOptions(timeout, retries, retry_on)  # type: ignore[arg-type]
        engine = DaskEngine(client, workers, options=options, chunksize=check_chunksize(chunksize))
        self._engine = engine  # type: ignore[assignment]
        self._workers = engine.workers
        self._setup(options, check_progress(progress))
        weakref.finalize(self, engine.shutdown, False)

    def __repr__(self) -> str:
        return f"<workhorse.dask Pool state={self._state} pool_size={self._workers}>"
