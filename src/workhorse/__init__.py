"""workhorse: processes, threads, queues, locks and task groups that never hang.

The top level is the process flavour, as in :mod:`multiprocessing` (plus :class:`Thread`),
and the names of :mod:`concurrent.futures` (``as_completed``, ``wait``, ``Future`` ... are
the stdlib's: workhorse's futures are real ``concurrent.futures.Future`` objects);
``workhorse.threads`` has the same names for threads. See the README for the tour.

Example::

    import workhorse

    if __name__ == "__main__":
        p = workhorse.Process(target=lambda: 6 * 7)
        p.start()
        print(p.result())   # 42
"""

import importlib as _importlib

from . import _names

# What type checkers see. At run time each name is imported on first use, from the module
# _names.TABLE gives; tests/test_names.py checks that the two agree.
if _names.TYPE_CHECKING:
    from concurrent.futures import ALL_COMPLETED as ALL_COMPLETED
    from concurrent.futures import FIRST_COMPLETED as FIRST_COMPLETED
    from concurrent.futures import FIRST_EXCEPTION as FIRST_EXCEPTION
    from concurrent.futures import BrokenExecutor as BrokenExecutor
    from concurrent.futures import CancelledError as CancelledError
    from concurrent.futures import Executor as Executor
    from concurrent.futures import Future as Future
    from concurrent.futures import InvalidStateError as InvalidStateError
    from concurrent.futures import TimeoutError as TimeoutError
    from concurrent.futures import wait as wait

    from . import _dask  # only for the annotation of dask(): importing workhorse never imports Dask
    from . import processes as processes
    from . import threads as threads
    from ._completion import as_completed as as_completed
    from ._context import Context as Context
    from ._context import ProcessContext as ProcessContext
    from ._context import ThreadContext as ThreadContext
    from ._context import get_context as get_context
    from ._decorators import process as process
    from ._decorators import thread as thread
    from ._errors import BrokenResourceError as BrokenResourceError
    from ._errors import Cancelled as Cancelled
    from ._errors import DeserializationError as DeserializationError
    from ._errors import PoolBroken as PoolBroken
    from ._errors import QueueShutDown as QueueShutDown
    from ._errors import RemoteError as RemoteError
    from ._errors import RemoteTraceback as RemoteTraceback
    from ._errors import SerializationError as SerializationError
    from ._errors import TaskTimeout as TaskTimeout
    from ._errors import WorkerCrashed as WorkerCrashed
    from ._errors import WorkhorseError as WorkhorseError
    from ._stats import PoolStats as PoolStats
    from ._stats import WorkerStats as WorkerStats
    from ._timeouts import TIMEOUT_MAX as TIMEOUT_MAX
    from ._worker_info import WorkerInfo as WorkerInfo
    from ._worker_info import worker as worker
    from .processes import Barrier as Barrier
    from .processes import BoundedSemaphore as BoundedSemaphore
    from .processes import Condition as Condition
    from .processes import Connection as Connection
    from .processes import Event as Event
    from .processes import JoinableQueue as JoinableQueue
    from .processes import Lock as Lock
    from .processes import Pipe as Pipe
    from .processes import Pool as Pool
    from .processes import Process as Process
    from .processes import ProcessPoolExecutor as ProcessPoolExecutor
    from .processes import Queue as Queue
    from .processes import RLock as RLock
    from .processes import Semaphore as Semaphore
    from .processes import SimpleQueue as SimpleQueue
    from .processes import TaskGroup as TaskGroup
    from .processes import ThreadPool as ThreadPool
    from .processes import ThreadPoolExecutor as ThreadPoolExecutor
    from .processes import active_children as active_children
    from .processes import cpu_count as cpu_count
    from .processes import current_process as current_process
    from .processes import get_start_method as get_start_method
    from .processes import group as group
    from .processes import with_start_method as with_start_method
    from .threads import Thread as Thread

    __all__ = (
        "ALL_COMPLETED",
        "FIRST_COMPLETED",
        "FIRST_EXCEPTION",
        "TIMEOUT_MAX",
        "Barrier",
        "BoundedSemaphore",
        "BrokenExecutor",
        "BrokenResourceError",
        "Cancelled",
        "CancelledError",
        "Condition",
        "Connection",
        "Context",
        "DeserializationError",
        "Event",
        "Executor",
        "Future",
        "InvalidStateError",
        "JoinableQueue",
        "Lock",
        "Pipe",
        "Pool",
        "PoolBroken",
        "PoolStats",
        "Process",
        "ProcessContext",
        "ProcessPoolExecutor",
        "Queue",
        "QueueShutDown",
        "RLock",
        "RemoteError",
        "RemoteTraceback",
        "Semaphore",
        "SerializationError",
        "SimpleQueue",
        "TaskGroup",
        "TaskTimeout",
        "Thread",
        "ThreadContext",
        "ThreadPool",
        "ThreadPoolExecutor",
        "TimeoutError",
        "WorkerCrashed",
        "WorkerInfo",
        "WorkerStats",
        "WorkhorseError",
        "active_children",
        "as_completed",
        "cpu_count",
        "current_process",
        "dask",
        "get_context",
        "get_start_method",
        "group",
        "process",
        "processes",
        "thread",
        "threads",
        "wait",
        "with_start_method",
        "worker",
    )
else:
    __all__ = tuple(_names.public("workhorse"))


# Every public name and the module it comes from (None: the name is a submodule), imported
# on first use (PEP 562). A worker process imports ``workhorse._backends.process._worker``, which
# imports this package first: eager imports here cost it ~75 ms of start-up (half the
# package), lazy ones a few ms. Type checkers read the imports above instead.
_EXPORTS: dict[str, str | None] = _names.exports()

if not _names.TYPE_CHECKING:  # a module __getattr__ would make every typo type-check as Any

    def __getattr__(name: str) -> object:
        try:
            module = _EXPORTS[name]
        except KeyError:
            raise AttributeError(f"module 'workhorse' has no attribute {name!r}") from None
        if module is None:
            value = _importlib.import_module(f"{__name__}.{name}")
        else:
            value = getattr(_importlib.import_module(module, __name__), name)
            if module.startswith("._"):  # a class straight from a private module
                from . import _publish

                _publish.publish()
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"


def dask(
    address: str | None = None,
    client: object = None,
    *,
    timeout: float | None = None,
    **cluster_kwargs: object,
) -> "_dask._context.DaskContext":
    """The Dask context: the names of ``workhorse.processes`` on a Dask cluster.

    No address: an embedded ``LocalCluster`` (a worker process per core), closed on exit;
    ``address`` (or ``$DASK_SCHEDULER_ADDRESS``): a running cluster, left running; or an
    existing ``distributed.Client`` as ``client``. Dask is imported only here: without it,
    an ``ImportError`` names ``pip install "workhorse[dask]"``. ``timeout``: seconds to wait
    for the scheduler (10 by default); a bad address fails within it, naming the address and
    what is there: ``ValueError`` (malformed), ``ConnectionRefusedError`` (nothing listens),
    ``TimeoutError`` (no answer), ``ConnectionError`` (not a Dask scheduler).

    Example::

        with workhorse.dask() as cluster, cluster.Pool() as pool:
            print(pool.map(abs, [-1, 2]))   # [1, 2]
    """
    from ._dask._context import DaskContext

    return DaskContext(address, client, timeout=timeout, **cluster_kwargs)
