"""workhorse's scheduler plugin: the handlers behind :mod:`._extension` (read that first).

It runs in the Dask scheduler, registered by the first pool or primitive of a client. Its
records are opaque bytes: the scheduler never unpickles what the workers and the client
exchange through it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from distributed.diagnostics.plugin import NannyPlugin, SchedulerPlugin

from ._extension import NAME

__all__ = ["ExitReporter", "SchedulerExtension"]

EXITS_KEPT = 1024  # the latest worker exits the scheduler remembers


class SchedulerExtension(SchedulerPlugin):  # type: ignore[misc]
    """The scheduler side of :mod:`._extension`; installed by its ``install``.

    Example::

        client.register_plugin(SchedulerExtension(), name=NAME)
    """

    name = NAME
    idempotent = True  # a second client's registration keeps the records already here

    def __init__(self) -> None:
        self.pools: dict[str, dict[str, bytes]] = {}
        self.owners: dict[str, str] = {}  # pool -> the client that opened it
        self.scheduler: Any = None
        self.exits: dict[str, int] = {}  # worker address -> its process's exit code
        self.exit_waiters: dict[str, asyncio.Event] = {}

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        prefix = NAME.replace("-", "_")
        scheduler.handlers.update(
            {
                f"{prefix}_open": self.open,
                f"{prefix}_close": self.close,
                f"{prefix}_begin": self.begin,
                f"{prefix}_mark": self.mark,
                f"{prefix}_read": self.read,
                f"{prefix}_forget": self.forget,
                f"{prefix}_queue_get": self.queue_get,
                f"{prefix}_queue_put": self.queue_put,
                f"{prefix}_exited": self.exited,
                f"{prefix}_exit_status": self.exit_status,
            }
        )

    def remove_client(self, scheduler: Any, client: str) -> None:
        for pool in [p for p, owner in self.owners.items() if owner == client]:
            self.close(pool)

    # -- batch records -------------------------------------------------------------------
    def open(self, pool: str, client: str) -> None:
        self.pools.setdefault(pool, {})
        self.owners[pool] = client

    def close(self, pool: str) -> None:
        self.pools.pop(pool, None)
        self.owners.pop(pool, None)

    def begin(self, pool: str, key: str, record: bytes) -> bytes | None:
        records = self.pools.get(pool)
        if records is None:  # the pool is gone: nobody wants this batch any more
            return b""
        earlier = records.get(key)
        if earlier is None:
            records[key] = record
        return earlier

    def mark(self, pool: str, key: str, record: bytes) -> None:
        records = self.pools.get(pool)
        if records is not None:
            records[key] = record

    def read(self, pool: str, key: str) -> bytes | None:
        return self.pools.get(pool, {}).get(key)

    def forget(self, pool: str, keys: list[str]) -> None:
        records = self.pools.get(pool, {})
        for key in keys:
            records.pop(key, None)

    # -- worker exit codes (reported by ExitReporter) ----------------------------------------
    def exited(self, address: str, exitcode: int) -> None:
        self.exits.pop(address, None)  # a reused address: the latest exit goes last
        self.exits[address] = exitcode
        while len(self.exits) > EXITS_KEPT:
            del self.exits[next(iter(self.exits))]
        waiter = self.exit_waiters.pop(address, None)
        if waiter is not None:
            waiter.set()

    async def exit_status(self, address: str, timeout: float) -> int | None:
        if address not in self.exits:
            waiter = self.exit_waiters.setdefault(address, asyncio.Event())
            try:
                await asyncio.wait_for(waiter.wait(), timeout)
            except TimeoutError:  # no nanny reported it (a worker without one, say)
                self.exit_waiters.pop(address, None)
        return self.exits.get(address)

    # -- timed queue waits ---------------------------------------------------------------
    async def queue_get(self, name: str, timeout: float | None) -> Any:
        queues = self.scheduler.extensions["queues"]
        try:
            return (await queues.get(name=name, timeout=timeout))["value"]
        except TimeoutError:
            return None  # items are never None (see _queue: they travel as bytes or str)

    async def queue_put(self, name: str, data: Any, timeout: float | None) -> bool:
        queues = self.scheduler.extensions["queues"]
        try:
            await queues.put(name=name, data=data, timeout=timeout)
        except TimeoutError:
            return False
        return True


class ExitReporter(NannyPlugin):  # type: ignore[misc]
    """Tells workhorse's scheduler plugin how each worker process of a nanny ended (the
    exit code only the nanny sees), so that ``WorkerCrashed`` can say it.

    Example::

        client.register_plugin(ExitReporter(), name=f"{NAME}-exits")
    """

    name = f"{NAME}-exits"
    idempotent = True

    def setup(self, nanny: Any) -> None:
        handler = f"{NAME.replace('-', '_')}_exited"
        original = nanny._on_worker_exit_sync

        def on_exit(exitcode: int | None) -> None:
            address = nanny.worker_address
            if address and exitcode is not None:

                async def report() -> None:
                    try:
                        await getattr(nanny.scheduler, handler)(address=address, exitcode=exitcode)
                    except Exception:  # advice only: without it the code is "not known"
                        pass

                try:
                    nanny._ongoing_background_tasks.call_soon(report)
                except Exception:  # the nanny is closing
                    pass
            original(exitcode)

        # the nanny hands this to each worker process it starts; the running one has its own
        nanny._on_worker_exit_sync = on_exit
        if nanny.process is not None:
            nanny.process.on_exit = on_exit
