"""Backends by name: the one table from a pool's ``backend=`` (or ``$WORKHORSE_BACKEND``) to
the engine that runs its tasks.

A backend is a factory taking a validated :class:`~._config.PoolConfig` and returning an
object that satisfies :class:`~._backend.Backend`. The local engines are imported with this
module (that is, with the pool faces: constructing a pool must not pay for importing its
engine, which a start-up benchmark counts); Dask only when a Dask pool is made. Importing
``workhorse`` alone (which a worker process does) imports none of them. Adding a backend is
one module plus one :func:`register_backend` line below.

Example::

    register_backend("inline-debug", lambda config: MyEngine(config))
    pool = workhorse.Pool(backend="inline-debug")
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._backends.process._core import ProcessEngine
from ._backends.serial import SerialEngine
from ._backends.thread._engine import ThreadEngine
from ._scheduler._events import PoolEvents

if TYPE_CHECKING:
    from ._backend import Backend
    from ._config import PoolConfig

__all__ = ["backend_names", "make_backend", "register_backend"]

Factory = Callable[["PoolConfig"], "Backend"]
_factories: dict[str, Factory] = {}
_lock = threading.Lock()


def register_backend(name: str, factory: Factory) -> None:
    """Make ``backend=name`` build its engine with ``factory(config)``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"a backend's name must be a non-empty str, not {name!r}")
    if not callable(factory):
        raise TypeError(f"the factory of backend {name!r} must be callable, not {factory!r}")
    with _lock:
        _factories[name] = factory


def backend_names() -> list[str]:
    """The registered backends' names, sorted."""
    with _lock:
        return sorted(_factories)


def make_backend(config: PoolConfig) -> Backend:
    """The engine of ``config.backend``, built from ``config``."""
    with _lock:
        factory = _factories.get(config.backend)
    if factory is None:
        raise ValueError(
            f"backend must be one of {', '.join(map(repr, backend_names()))}, "
            f"not {config.backend!r}"
        )
    return factory(config)


def _local(config: PoolConfig) -> dict[str, Any]:
    """The arguments the process and thread engines share."""
    assert config.workers is not None  # only the dask backend leaves it to the cluster
    return {
        "workers": config.workers, "initializer": config.initializer,
        "initargs": config.initargs, "max_tasks_per_worker": config.max_tasks_per_worker,
        "options": config.options, "chunksize": config.chunksize,
        "worker_exit": config.worker_exit, "shared": config.shared,
    }  # fmt: skip


def _processes(config: PoolConfig) -> Backend:
    assert config.start_method is not None
    return ProcessEngine(
        **_local(config), start_method=config.start_method, init_timeout=config.init_timeout,
        idle_timeout=config.idle_timeout, remote_traceback=config.remote_traceback,
        events=PoolEvents("processes", config.name),
    )  # fmt: skip


def _threads(config: PoolConfig) -> Backend:
    return ThreadEngine(
        **_local(config), name=config.name, events=PoolEvents("threads", config.name)
    )


def _serial(config: PoolConfig) -> Backend:
    return SerialEngine(config)


def _dask(config: PoolConfig) -> Backend:
    from ._dask._engine import DaskEngine

    client: Any = config.client
    if client is None:  # by name: the current Dask client, as joblib's dask backend
        try:
            from distributed import get_client
        except ImportError:
            raise ImportError(
                'the dask backend needs distributed: pip install "workhorse[dask]"'
            ) from None
        try:
            client = get_client()
        except ValueError:
            raise ValueError(
                "backend='dask' runs on the current Dask client and there is none: open one "
                "with `with workhorse.dask() as cluster:` (or distributed.Client(...)) first"
            ) from None
    events = PoolEvents("dask", config.name)
    return DaskEngine(
        client, config.workers, options=config.options, chunksize=config.chunksize,
        events=events, shared=config.shared,
    )  # fmt: skip


register_backend("processes", _processes)
register_backend("threads", _threads)
register_backend("serial", _serial)
register_backend("dask", _dask)
