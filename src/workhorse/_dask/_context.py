"""``workhorse.dask()``: the Dask context -- the names of ``workhorse.processes``, on a cluster.

Three ways in, one object out:

* no address: an embedded ``distributed.LocalCluster`` (one worker process per core, one
  thread each, on loopback, the dashboard on a free loopback port), closed
  on exit;
* ``address=`` (or ``$DASK_SCHEDULER_ADDRESS``): connect to a running scheduler (started
  with ``dask scheduler`` / ``dask worker``, say) and leave it running on exit;
  ``security=`` (a ``distributed.security.Security``, for TLS) passes through;
* ``client=``: use an existing ``distributed.Client`` and leave it open.

Why ``allowed-failures`` is 0 on the embedded cluster: Dask re-runs a task whose worker died
up to ``allowed-failures`` times, on its own, and workhorse decides itself what a worker's
death means for each item (see :mod:`._engine`). On a cluster you connect to, at Dask's
default of 3, Dask's second attempt at a batch finds the first one's record and returns it
without running (see :mod:`._runner`): the outcome is the same, a restarted worker later.

Why the lock lease timeout is 10 s on the embedded cluster (Dask's default is 30 s): a lock
or semaphore held by a worker that died is freed by the scheduler once its lease runs out.
Live holders refresh their lease every fifth of the timeout (2 s) and the scheduler checks
every ``lease-validation-interval`` (1 s here), so 10 s frees a dead holder's lock three times
sooner while leaving a stalled-but-alive holder room. The timeout is fixed when a lock is
first used, from that process's Dask config: while an embedded cluster is open, the client's
config says 10 s too (put back when the last embedded context closes). A test kills a holder
and measures it.

Why ``lost-worker-timeout`` is raised while an embedded cluster is open: 15 s after a worker
is removed, Dask's ``LocalCluster`` closes that worker's nanny for good if no worker of the
same name is registered *at that instant*. The nanny restarts a dead worker in well under a
second, so the check only ever fires when the worker happens to be dying again 15 s after
an earlier death -- and then the cluster loses it forever (seen in our crash tests). A crash
every few seconds is normal life for a workhorse pool, so the nanny alone restarts workers.
This setting is process-wide in Dask's config; it is put back when the last embedded context
closes (contexts may overlap in any order: see :class:`_ConfigHold`).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Self, Unpack

from .. import _publish
from .._config import DaskExecutorExtras, DaskPoolExtras
from .._options import Progress
from .._taskgroup import TaskGroup
from . import _queue, _sync
from ._connect import DEFAULT_CONNECT_TIMEOUT, check_scheduler
from ._faces import DaskExecutor, DaskPool
from ._group import DaskTask, member_class
from ._shared import restore_default_client, set_default_client

__all__ = ["DaskContext"]

INSTALL_HINT = 'the Dask backend needs distributed: pip install "workhorse[dask]"'
EMBEDDED_CONFIG = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.scheduler.locks.lease-validation-interval": "1s",
    # Housekeeping timers, slowed down: on a machine where the workers, the scheduler and the
    # client share the cores, each wake-up is compute time lost (an idle 2-worker cluster took
    # 4.3% of a core, 1.3% with these). The statistical profiler samples each worker's stacks
    # every 10 ms for the dashboard; the event-loop health check runs every 20 ms on every
    # server (500 ms still catches Dask's 3 s "unresponsive" warning); the system monitor
    # (dashboard plots) every 500 ms; the memory monitors (spill, pause, nanny's terminate)
    # every 100 ms; the GIL-contention monitor, when gilknocker is installed, polls every 1 ms.
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.memory.monitor-interval": "500ms",
}
# Read after the cluster is made, so kept set while it is open: by LocalCluster at each worker
# removal, and by whichever process first uses a lock or semaphore (the client here, or a
# worker), which registers its lease timeout with the scheduler.
WHILE_OPEN_CONFIG = {
    "distributed.deploy.lost-worker-timeout": "365 days",
    "distributed.scheduler.locks.lease-timeout": "10s",
    # Read by the nanny at every worker (re)start. Pure-Python items ran 7-23% slower (CPU
    # time, median per run of 12 paired measurements, 4 runs) in workers Dask started with
    # its default ``spawn`` than in workhorse's pool workers; in workers forked from a
    # forkserver, 0.98-1.01x (4 runs). The cause inside the spawned image was not found;
    # the forkserver is also how workhorse starts its own workers.
    "distributed.worker.multiprocessing-method": "forkserver",
    # Read at each connection, by the scheduler (in this process) too. A result fetched
    # just as its worker dies is gathered from the dead worker's address, and Dask retries a
    # refused connection until this timeout (30 s by default) before it recomputes the
    # result: seen as a 30 s stall of a map on Python 3.12 (1 run in ~100 of the crash
    # test). On loopback a live peer connects in milliseconds.
    "distributed.comm.timeouts.connect": "5s",
}


class _ConfigHold:
    """Keeps :data:`WHILE_OPEN_CONFIG` set while any embedded context is open.

    Counted, not nested: ``dask.config.set(...).__exit__`` puts back what it saw on entry, so
    two contexts closed in the order they were opened would leave the second one's view (our
    settings) in place for good, and the first close would undo them under the second.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._saved: Any = None

    def acquire(self) -> None:
        import dask

        with self._lock:
            if self._count == 0:
                self._saved = dask.config.set(WHILE_OPEN_CONFIG)
            self._count += 1

    def release(self) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0:
                self._saved.__exit__(None, None, None)
                self._saved = None


_while_open = _ConfigHold()


def _connect_timeout(timeout: float | None) -> float:
    if timeout is None:
        return DEFAULT_CONNECT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return distributed


class DaskContext:
    """The Dask backend: pools, executors, queues and locks on a Dask cluster.

    Made by :func:`workhorse.dask`; see there. ``client`` is the ``distributed.Client``;
    ``cluster`` the embedded ``LocalCluster`` (``None`` when connected to another one).

    Example::

        with workhorse.dask() as cluster:
            with cluster.ProcessPoolExecutor() as pool:
                print(pool.submit(pow, 2, 10).result())   # 1024
    """

    name = "dask"

    def __init__(
        self,
        address: str | None = None,
        client: Any = None,
        *,
        timeout: float | None = None,
        **cluster_kwargs: Any,
    ) -> None:
        distributed = _distributed()
        import dask

        self.cluster: Any = None
        self._holds_config = False
        self._owns_client = client is None
        address = address or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        connect = _connect_timeout(timeout)
        if client is not None:
            if address is not None or cluster_kwargs or timeout is not None:
                raise TypeError("give client= alone, without address, timeout or cluster arguments")
            self.client: Any = client
        elif address is not None:
            security = cluster_kwargs.pop("security", None)
            if cluster_kwargs:
                raise TypeError(f"unexpected arguments with address=: {sorted(cluster_kwargs)}")
            if not isinstance(address, str):
                raise TypeError(f"address must be a str, not {type(address).__name__}")
            check_scheduler(distributed, address, connect)
            self.client = distributed.Client(
                address, security=security, set_as_default=False, timeout=connect
            )
        else:
            settings = {
                "n_workers": os.cpu_count() or 1,
                "threads_per_worker": 1,
                "processes": True,
                "host": "127.0.0.1",
                # Dask's HTTP server starts anyway (dashboard_address=None means its default
                # port 8787, and a warning when that is taken): a free port on loopback.
                "dashboard_address": "127.0.0.1:0",
            }
            settings.update(cluster_kwargs)
            _while_open.acquire()
            self._holds_config = True
            try:
                _share_forkserver()
                with dask.config.set(EMBEDDED_CONFIG):
                    self.cluster = distributed.LocalCluster(**settings)
                self.client = distributed.Client(
                    self.cluster, set_as_default=False, timeout=connect
                )
            except BaseException:
                if self.cluster is not None:
                    self.cluster.close()
                self._holds_config = False
                _while_open.release()
                raise
        # A closed context must not stay the default of a still-open outer one.
        self._previous_client = set_default_client(self.client)

    # -- pools ------------------------------------------------------------------------

    def Pool(self, processes: int | None = None, **extras: Unpack[DaskPoolExtras]) -> DaskPool:
        """A :class:`~workhorse._dask._faces.DaskPool` on this cluster.

        Example::

            with cluster.Pool(timeout=30) as pool:
                pool.map(work, items)
        """
        return DaskPool(self.client, processes, **extras)

    def ProcessPoolExecutor(
        self, max_workers: int | None = None, **extras: Unpack[DaskExecutorExtras]
    ) -> DaskExecutor:
        """A :class:`~workhorse._dask._faces.DaskExecutor` on this cluster.

        Example::

            with cluster.ProcessPoolExecutor(retries=2) as pool:
                pool.submit(work, 1).result()
        """
        return DaskExecutor(self.client, max_workers, **extras)

    if TYPE_CHECKING:  # bound from workhorse._names.TABLE below; checked by a test
        Executor = ProcessPoolExecutor

    def group(self, *, progress: Progress = False) -> TaskGroup[DaskTask]:
        """A task group whose members run as tasks on this cluster (see :mod:`._group`;
        ``progress``: a bar counting finished members, as for the pools).

        Example::

            with cluster.group() as g:
                g.start(download, url1)
                g.start(download, url2)
            print(g.results)
        """
        return TaskGroup(member_class(self.client), progress=progress)

    # -- primitives (see _sync.py and _queue.py for the differences from threading) ---------

    def Queue(self, maxsize: int = 0) -> _queue.Queue:
        """A cluster-wide queue with ``shutdown()``.

        Example::

            q = cluster.Queue()
            q.put_many([1, 2]); q.shutdown()
            assert list(q) == [1, 2]
        """
        return _queue.Queue(maxsize, client=self.client)

    def JoinableQueue(self, maxsize: int = 0) -> _queue.JoinableQueue:
        """A cluster-wide queue with ``task_done()``/``join()``.

        Example::

            q = cluster.JoinableQueue()
        """
        return _queue.JoinableQueue(maxsize, client=self.client)

    if TYPE_CHECKING:
        SimpleQueue = Queue

    def Lock(self) -> _sync.Lock:
        """A cluster-wide lock (a Dask lease: freed when its holder dies, after the lease
        timeout).

        Example::

            with cluster.Lock():
                ...
        """
        return _sync.Lock(client=self.client)

    def RLock(self) -> _sync.RLock:
        """A cluster-wide re-entrant lock.

        Example::

            rlock = cluster.RLock()
        """
        return _sync.RLock(client=self.client)

    def Semaphore(self, value: int = 1) -> _sync.Semaphore:
        """A cluster-wide semaphore of ``value`` (>= 1) leases.

        Example::

            slots = cluster.Semaphore(4)
        """
        return _sync.Semaphore(value, client=self.client)

    def BoundedSemaphore(self, value: int = 1) -> _sync.BoundedSemaphore:
        """A cluster-wide bounded semaphore.

        Example::

            slots = cluster.BoundedSemaphore(4)
        """
        return _sync.BoundedSemaphore(value, client=self.client)

    def Event(self) -> _sync.Event:
        """A cluster-wide event.

        Example::

            ready = cluster.Event()
        """
        return _sync.Event(client=self.client)

    def Condition(self, lock: _sync.Lock | _sync.RLock | None = None) -> _sync.Condition:
        """A cluster-wide condition variable over ``lock`` (default: a new RLock).

        Example::

            cond = cluster.Condition()
        """
        return _sync.Condition(lock, client=self.client)

    def Barrier(
        self, parties: int, action: Any = None, timeout: float | None = None
    ) -> _sync.Barrier:
        """A cluster-wide barrier for ``parties`` callers.

        Example::

            barrier = cluster.Barrier(2, timeout=30)
        """
        return _sync.Barrier(parties, action, timeout, client=self.client)

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        """Close the client (if made here) and the embedded cluster (if any).

        Example::

            cluster = workhorse.dask()
            try:
                ...
            finally:
                cluster.close()
        """
        restore_default_client(self.client, self._previous_client)
        if self._owns_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        if self._holds_config:
            self._holds_config = False
            _while_open.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<workhorse context 'dask' scheduler={self.client.scheduler.address!r}>"


_publish.bind(DaskContext, "dask")


def _share_forkserver() -> None:
    """Let Dask set the forkserver's preload list (it does so once, on first use, if the
    server is not running yet), then add workhorse's module back: local pools started later
    fork from the same server (see :mod:`workhorse._process`)."""
    try:
        from distributed.utils import get_mp_context

        get_mp_context()
    except Exception:  # an internal of Dask: without it, Dask does this itself later
        return
    from .._process import _preload_into_forkserver

    _preload_into_forkserver()
