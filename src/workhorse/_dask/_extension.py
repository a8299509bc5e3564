"""workhorse's scheduler extension, the client's side: batch records and timed waits that
leave no trace in the scheduler's log (the scheduler's side: :mod:`._scheduler_plugin`).

Built-in Dask coordination is loud on a cluster an operator runs: deleting a
``distributed.Variable`` logs "Remove client variable-..." at INFO (one line per batch when
each batch kept its record in one), and a ``Queue.get``/``put`` whose timeout expires
raises inside the scheduler, which logs "Exception while handling op queue_get" with a
traceback at ERROR. So workhorse installs a small scheduler plugin (once per scheduler,
through ``Client.register_plugin``) that adds its own handlers:

* **batch records** (see :mod:`._runner`): bytes kept per pool and key, which the scheduler
  never unpickles. ``begin`` stores a batch's "started" record and hands back the record an
  earlier attempt left, in one round trip: a batch that Dask re-runs on its own after its
  worker died (``allowed-failures`` above 0) learns so and returns that record instead of
  running again, so timeouts and crash isolation hold at Dask's defaults. A pool's records go
  when it shuts down, or when its client leaves the scheduler.
* **timed queue waits**: a ``get``/``put`` on a ``distributed.Queue`` whose time runs out
  returns a plain "no" instead of raising in the scheduler.

The scheduler must be able to import workhorse (as the workers must, to run batches); when
it cannot, :func:`install` raises a ``RuntimeError`` saying so.

Example::

    install(client)
    assert queue_get(client, "q", 0.1) is NOTHING  # an empty queue, and a quiet log
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from .._serialize import loads

__all__ = [
    "HANDLERS",
    "NAME",
    "NOTHING",
    "PoolRecords",
    "begin",
    "close_pool",
    "forget",
    "install",
    "mark",
    "open_pool",
    "queue_get",
    "queue_put",
    "read",
]

NAME = "workhorse-v1"  # the plugin's name and its handlers' prefix: bump on a change
HANDLERS = NAME.replace("-", "_")  # the scheduler's handlers are f"{HANDLERS}_{name}"
NOTHING: Any = object()  # a timed wait that ran out
# How long a crash report waits for the dead worker's nanny: it reports within milliseconds
# of the exit, usually before the client hears of the lost task.
EXIT_WAIT = 1.0
# Settled batches' records are dropped this many at a time (and all when the pool goes idle):
# one scheduler call per batch cost the client and the scheduler ~1 ms of CPU each, taken
# from the workers on a small machine; a record is a few hundred bytes.
FORGET_BATCH = 32


_installed: weakref.WeakSet[Any] = weakref.WeakSet()  # clients known to have it


def install(client: Any) -> None:
    """Make sure ``client``'s scheduler runs the extension (a no-op after the first time)."""
    if client in _installed:
        return
    from ._scheduler_plugin import ExitReporter, SchedulerExtension

    try:
        client.register_plugin(SchedulerExtension(), name=NAME)
    except Exception as exc:
        address = getattr(client.scheduler, "address", "?")
        raise RuntimeError(
            f"the Dask scheduler at {address} could not load workhorse's scheduler extension "
            f"({type(exc).__name__}: {exc}); install workhorse there, as on the workers"
        ) from exc
    try:
        client.register_plugin(ExitReporter(), name=ExitReporter.name)
    except Exception:  # exit codes are advice: without them WorkerCrashed says "not known"
        pass
    _installed.add(client)


class PoolRecords:
    """The client side of one pool's batch records.

    Example::

        records = PoolRecords(client, "workhorse-1234")
        assert records.read("workhorse-1234-0") is None  # that batch never started
        records.close()
    """

    def __init__(self, client: Any, pool: str) -> None:
        self.client, self.pool = client, pool
        self._open = True
        self._lock = threading.Lock()
        self._settled: list[str] = []  # records to drop with the next call (see forget)
        open_pool(client, pool)

    @staticmethod
    def decode(record: bytes | None) -> Any:
        """The record a batch left (None for none, or from a pool already gone)."""
        return loads(record) if record else None

    def read(self, key: str) -> Any:
        """Batch ``key``'s record, decoded (None: it never started)."""
        try:
            return self.decode(read(self.client, self.pool, key))
        except Exception:  # unreadable: treated as never started (re-run, then isolated)
            return None

    def exit_status(self, address: str, pid: int, wait: float = EXIT_WAIT) -> int | None:
        """The exit code of worker process ``pid`` that was at ``address`` (negative: killed
        by that signal), waiting up to ``wait`` seconds for its nanny to report it; None if
        none will (a worker without a nanny of workhorse's) or none did in time."""
        try:
            code: int | None = _call(
                self.client, "exit_status", address=address, pid=pid, timeout=wait
            )[0]
        except Exception:
            return None
        return code

    def forget(self, key: str, *, now: bool = False) -> None:
        """Drop the record of a settled batch: with the next :data:`FORGET_BATCH` of them, or
        ``now`` with every one waiting (the pool went idle)."""
        with self._lock:
            self._settled.append(key)
            if not now and len(self._settled) < FORGET_BATCH:
                return
            keys, self._settled = self._settled, []
        try:
            forget(self.client, self.pool, keys)
        except Exception:  # the cluster is gone: so are the records
            pass

    def close(self) -> None:
        """Drop every record of the pool (once)."""
        with self._lock:
            if not self._open:
                return
            self._open = False
        try:
            close_pool(self.client, self.pool)
        except Exception:  # the cluster is gone: so are the records
            pass


def _call(dask_client: Any, handler: str, /, **kwargs: Any) -> Any:
    op = getattr(dask_client.scheduler, f"{HANDLERS}_{handler}")
    reply = dask_client.sync(op, **kwargs)
    if reply is None:  # no such handler: a scheduler restarted without the plugin
        _installed.discard(dask_client)
        install(dask_client)
        reply = dask_client.sync(op, **kwargs)
        if reply is None:
            raise RuntimeError(f"the Dask scheduler does not answer workhorse's {handler!r}")
    return reply


def open_pool(client: Any, pool: str) -> None:
    """Start keeping records for ``pool`` (dropped by :func:`close_pool`, or when
    ``client`` leaves the scheduler until it comes back)."""
    install(client)
    _call(client, "open_pool", pool=pool, client=client.id)


def close_pool(client: Any, pool: str) -> None:
    """Drop every record of ``pool``."""
    _call(client, "close_pool", pool=pool)


def begin(client: Any, pool: str, key: str, record: bytes) -> bytes | None:
    """Store ``record`` for a batch about to run; the record of an earlier attempt if there
    was one (then nothing is stored), or ``b""`` if the pool was shut down."""
    reply = _call(client, "begin", pool=pool, key=key, record=record)
    if reply[0] == "run":
        return None
    earlier: bytes = reply[1] if reply[0] == "earlier" else b""
    return earlier


def mark(client: Any, pool: str, key: str, record: bytes) -> None:
    """Replace a batch's record."""
    _call(client, "mark", pool=pool, key=key, record=record)


def read(client: Any, pool: str, key: str) -> bytes | None:
    """A batch's record (None: it never started)."""
    result: bytes | None = _call(client, "read", pool=pool, key=key)[0]
    return result


def forget(client: Any, pool: str, keys: list[str]) -> None:
    """Drop the records of settled batches."""
    _call(client, "forget", pool=pool, keys=keys)


def queue_get(client: Any, name: str, timeout: float | None) -> Any:
    """The next item of the Dask queue ``name``, or :data:`NOTHING` after ``timeout``."""
    install(client)
    reply = _call(client, "queue_get", name=name, timeout=timeout)
    return reply[1] if reply[0] == "ok" else NOTHING


def queue_put(client: Any, name: str, data: Any, timeout: float | None) -> bool:
    """Put ``data`` on the Dask queue ``name``; False if it stayed full for ``timeout``."""
    install(client)
    done: bool = _call(client, "queue_put", name=name, data=data, timeout=timeout)[0] == "ok"
    return done
