"""``Pool`` and ``ProcessPoolExecutor`` on a Dask cluster: the local faces over the Dask engine.

The faces of :mod:`workhorse._pool` and :mod:`workhorse._executor` over the ``dask`` backend
(see :mod:`workhorse._registry`), bound to a client: lazy bounded ``imap``,
``with_options``, progress bars and the ``with`` semantics are the front end's, unchanged.
What a Dask pool does not take: ``initializer`` (Dask has worker plugins for that) and a
per-worker task limit (Dask workers are long-lived services).

Example::

    with workhorse.dask() as cluster:
        with cluster.Pool() as pool:
            print(pool.map(abs, [-1, -2, 3]))   # [1, 2, 3]
"""

from __future__ import annotations

from typing import Any, Unpack

from .._config import DaskExecutorExtras, DaskPoolExtras, Face, PoolConfig, takes_extras
from .._executor import _PoolExecutor
from .._front import Front
from .._pool import _BasePool

__all__ = ["DaskExecutor", "DaskPool"]

_EXECUTOR = Face("DaskExecutor", "dask", extras=DaskExecutorExtras)
_POOL = Face("DaskPool", "dask", workers="processes", extras=DaskPoolExtras)


class DaskExecutor(_PoolExecutor):
    """A :class:`concurrent.futures.Executor` whose tasks run on a Dask cluster, in batches.

    Returned futures are real :class:`concurrent.futures.Future` objects. ``max_workers``
    caps the batches running at once (default: every worker thread of the cluster).
    ``timeout``, ``retries``/``retry_on``, ``progress``, ``chunksize``, ``trace``,
    ``insights`` and ``shared`` mean what they mean for
    :class:`workhorse.ProcessPoolExecutor`; a task past
    its ``timeout`` or cancelled while running is stopped by killing its Dask worker, which
    the nanny restarts.

    Example::

        with workhorse.dask() as cluster, cluster.ProcessPoolExecutor(timeout=60) as pool:
            print(list(pool.map(pow, [2, 3], [10, 2])))   # [1024, 9]
    """

    @takes_extras(_EXECUTOR)
    def __init__(
        self, client: Any, max_workers: int | None = None, **extras: Unpack[DaskExecutorExtras]
    ) -> None:
        config = PoolConfig.for_face(_EXECUTOR, locals(), backend="dask")
        self._front = Front.open(config, self)

    def __repr__(self) -> str:
        return f"<workhorse.dask Executor max_workers={self._front.workers}>"


class DaskPool(_BasePool):
    """A :class:`multiprocessing.pool.Pool` whose tasks run on a Dask cluster, in batches.

    ``processes`` caps the batches running at once (default: every worker thread of the
    cluster). The extras (``timeout``, ``retries``, ``retry_on``, ``progress``,
    ``chunksize``, ``trace``, ``insights``, ``shared``) are those of :class:`workhorse.Pool`.

    Example::

        with workhorse.dask() as cluster, cluster.Pool() as pool:
            squares = pool.imap(lambda x: x * x, itertools.count())
            print(next(squares), next(squares))   # 0 1
    """

    @takes_extras(_POOL)
    def __init__(
        self, client: Any, processes: int | None = None, **extras: Unpack[DaskPoolExtras]
    ) -> None:
        self._open(PoolConfig.for_face(_POOL, locals(), backend="dask"))

    def __repr__(self) -> str:
        return f"<workhorse.dask Pool state={self._state} pool_size={self._front.workers}>"
