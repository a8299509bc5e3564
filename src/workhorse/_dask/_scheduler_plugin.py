"""workhorse's scheduler plugin: the handlers behind :mod:`._extension` (read that first).

It runs in the Dask scheduler, registered by the first pool or primitive of a client. Its
records are opaque bytes: the scheduler never unpickles what the workers and the client
exchange through it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from distributed.diagnostics.plugin import NannyPlugin, SchedulerPlugin

from ._extension import HANDLERS, NAME

__all__ = ["ExitReporter", "SchedulerExtension"]

EXITS_KEPT = 1024  # the latest worker exits the scheduler remembers
CLOSED_KEPT = 4096  # the latest pools closed for good (a late batch of one does not run)


def _trim(table: dict[Any, Any], keep: int) -> None:
    while len(table) > keep:
        del table[next(iter(table))]


class SchedulerExtension(SchedulerPlugin):  # type: ignore[misc]
    """The scheduler side of :mod:`._extension`; installed by its ``install``.

    Its handlers are named so as not to shadow the plugin hooks (``close`` is one). Every
    handler answers something other than ``None``: a ``None`` reply means that the
    scheduler has no such handler (it was restarted without the plugin), and the client then
    installs it again.

    Example::

        client.register_plugin(SchedulerExtension(), name=NAME)
    """

    name = NAME
    idempotent = True  # a second client's registration keeps the records already here

    def __init__(self) -> None:
        self.pools: dict[str, dict[str, bytes]] = {}
        self.owners: dict[str, str] = {}  # pool -> the client that opened it
        self.closed: dict[str, None] = {}  # pools shut down (an ordered set, trimmed)
        self.scheduler: Any = None
        self.exits: dict[tuple[str, int | None], int] = {}  # (address, pid) -> exit code
        self.exit_waiters: dict[str, asyncio.Event] = {}
        self.nanny_of: dict[str, str] = {}  # worker address -> its nanny's

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        for address in scheduler.workers:
            self.add_worker(scheduler, address)
        handlers = (
            self.open_pool, self.close_pool, self.begin, self.mark, self.read, self.forget,
            self.queue_get, self.queue_put, self.exited, self.exit_status,
        )  # fmt: skip
        scheduler.handlers.update({f"{HANDLERS}_{h.__name__}": h for h in handlers})

    def add_worker(self, scheduler: Any, worker: str) -> None:
        state = scheduler.workers.get(worker)
        if state is not None and state.nanny:
            self.nanny_of[worker] = state.nanny
            _trim(self.nanny_of, EXITS_KEPT)

    def remove_client(self, scheduler: Any, client: str) -> None:
        # Its records go; not its pools: a client that reconnects (same id) goes on using
        # them, and their next batches record themselves again (see begin).
        for pool in [p for p, owner in self.owners.items() if owner == client]:
            self.pools.pop(pool, None)

    # -- batch records -------------------------------------------------------------------
    def open_pool(self, pool: str, client: str) -> bool:
        self.pools.setdefault(pool, {})
        self.owners[pool] = client
        _trim(self.owners, CLOSED_KEPT)
        return True

    def close_pool(self, pool: str) -> bool:
        self.pools.pop(pool, None)
        self.owners.pop(pool, None)
        self.closed[pool] = None
        _trim(self.closed, CLOSED_KEPT)
        return True

    def begin(self, pool: str, key: str, record: bytes) -> list[Any]:
        if pool in self.closed:  # shut down: nobody wants this batch any more
            return ["gone"]
        records = self.pools.setdefault(pool, {})
        earlier = records.get(key)
        if earlier is not None:
            return ["earlier", earlier]
        records[key] = record
        return ["run"]

    def mark(self, pool: str, key: str, record: bytes) -> bool:
        records = self.pools.get(pool)
        if records is not None and key in records:  # never one forgotten already
            records[key] = record
        return True

    def read(self, pool: str, key: str) -> list[Any]:
        return [self.pools.get(pool, {}).get(key)]

    def forget(self, pool: str, keys: list[str]) -> bool:
        records = self.pools.get(pool, {})
        for key in keys:
            records.pop(key, None)
        return True

    # -- worker exit codes (reported by ExitReporter) ----------------------------------------
    def exited(self, address: str, pid: int | None, exitcode: int) -> bool:
        self.exits[(address, pid)] = exitcode
        _trim(self.exits, EXITS_KEPT)
        waiter = self.exit_waiters.pop(address, None)
        if waiter is not None:
            waiter.set()
        return True

    async def exit_status(self, address: str, pid: int, timeout: float) -> list[Any]:
        if address not in self.nanny_of or ExitReporter.name not in self.scheduler.nanny_plugins:
            return [None]  # no nanny watches it for us: nothing will come
        if not self._exit_of(address, pid):
            waiter = self.exit_waiters.setdefault(address, asyncio.Event())
            try:
                await asyncio.wait_for(waiter.wait(), timeout)
            except TimeoutError:
                self.exit_waiters.pop(address, None)
        return [self._exit_of(address, pid)]

    def _exit_of(self, address: str, pid: int) -> int | None:
        found = self.exits.get((address, pid))
        # a report without a pid (its nanny could not tell) stands for the address
        return found if found is not None else self.exits.get((address, None))

    # -- timed queue waits ---------------------------------------------------------------
    async def queue_get(self, name: str, timeout: float | None) -> list[Any]:
        queues = self.scheduler.extensions["queues"]
        try:
            return ["ok", (await queues.get(name=name, timeout=timeout))["value"]]
        except TimeoutError:
            return ["empty"]

    async def queue_put(self, name: str, data: Any, timeout: float | None) -> list[Any]:
        queues = self.scheduler.extensions["queues"]
        try:
            await queues.put(name=name, data=data, timeout=timeout)
        except TimeoutError:
            return ["full"]
        return ["ok"]


class ExitReporter(NannyPlugin):  # type: ignore[misc]
    """Tells workhorse's scheduler plugin how each worker process of a nanny ended (the
    exit code only the nanny sees), so that ``WorkerCrashed`` can say it.

    Example::

        client.register_plugin(ExitReporter(), name=f"{NAME}-exits")
    """

    name = f"{NAME}-exits"
    idempotent = True

    def setup(self, nanny: Any) -> None:
        if getattr(nanny, "_wh_reporting", False):  # registered again (a new scheduler)
            return
        nanny._wh_reporting = True
        original = nanny._on_worker_exit_sync
        _note_pids(nanny.process)

        def call(handler: str, **kwargs: Any) -> None:
            async def send() -> None:
                try:
                    await getattr(nanny.scheduler, f"{HANDLERS}_{handler}")(**kwargs)
                except Exception:  # advice only: without it the code is "not known"
                    pass

            try:
                nanny._ongoing_background_tasks.call_soon(send)
            except Exception:  # the nanny is closing
                pass

        def on_exit(exitcode: int | None) -> None:
            address = nanny.worker_address
            if address and exitcode is not None:
                pid = getattr(nanny.process, "_wh_pid", None)
                call("exited", address=address, pid=pid, exitcode=exitcode)
            original(exitcode)
            _note_pids(nanny.process)

        # the nanny hands this to each worker process it starts; the running one has its own
        nanny._on_worker_exit_sync = on_exit
        if nanny.process is not None:
            nanny.process.on_exit = on_exit


def _note_pids(process: Any) -> None:
    """Have the nanny's ``WorkerProcess`` keep the pid of the process that just stopped
    (it forgets its process before calling ``on_exit``)."""
    if process is None or getattr(process, "_wh_noting", False):
        return
    mark_stopped = process.mark_stopped

    def noting() -> None:
        process._wh_pid = getattr(process.process, "pid", None)
        mark_stopped()

    process.mark_stopped = noting
    process._wh_noting = True
