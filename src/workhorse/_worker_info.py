"""``workhorse.worker()``: the pool worker running the current task, and its state.

A task (or a pool's ``initializer``) calls :func:`worker` to learn which worker it runs in --
an ``id`` from ``0`` to the pool's size minus one, which a replacement takes over from the
worker it replaces, so per-worker resources can be named by it (a GPU, a port, a scratch
directory) -- and to keep state for the worker's life in ``state``, a dict its later tasks
see (a database connection opened by the initializer, a cache). Outside a pool worker it
returns ``None``.

Where it is kept: a process worker sets it once for the whole process (forked children of a
task do not inherit it); a thread worker, the serial backend (for the duration of each task)
and a Dask batch keep it in a thread-local.

Example::

    def init():
        workhorse.worker().state["db"] = connect()

    def task(query):
        return workhorse.worker().state["db"].execute(query)

    with workhorse.Pool(4, initializer=init) as pool:
        pool.map(task, queries)
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EXIT_TIMEOUT", "WorkerInfo", "enter", "leave", "run_exit_hook", "set_process_worker",
    "worker",
]  # fmt: skip

#: Seconds a ``worker_exit`` hook may run; then its worker goes on without it (a process
#: worker is killed by its pool at the same bound).
EXIT_TIMEOUT = 2.0
_log = logging.getLogger("workhorse")


@dataclass(frozen=True, slots=True, eq=False)
class WorkerInfo:
    """Who runs the current task (see :func:`worker`).

    ``id``: the worker's number in its pool, ``0`` to ``workers - 1`` (kept by a
    replacement; on Dask, the Dask worker's name); ``pid``: its process; ``name``: its thread
    or process name; ``backend``: ``"processes"``, ``"threads"``, ``"serial"`` or ``"dask"``;
    ``start_method``: of a process worker; ``state``: a dict that lives as long as the worker;
    ``shared``: the pool's ``shared=`` object (``None`` if it has none).

    Example::

        info = workhorse.worker()
        scratch = f"/tmp/job-{info.id}"
    """

    id: int | str
    pid: int
    name: str
    backend: str
    start_method: str | None = None
    state: dict[str, Any] = field(default_factory=dict, repr=False)
    shared: Any = field(default=None, repr=False)


_local = threading.local()
_process_worker: WorkerInfo | None = None


def worker() -> WorkerInfo | None:
    """The pool worker running the current task (or initializer); ``None`` elsewhere.

    Example::

        def task(x):
            state = workhorse.worker().state
            state["seen"] = state.get("seen", 0) + 1
            return x
    """
    info: WorkerInfo | None = getattr(_local, "info", None)
    return info if info is not None else _process_worker


def set_process_worker(info: WorkerInfo | None) -> None:
    """This process is a pool worker (called once, as it starts)."""
    global _process_worker
    _process_worker = info


def enter(info: WorkerInfo | None) -> WorkerInfo | None:
    """This thread runs as ``info`` from now on; returns what it ran as before."""
    previous: WorkerInfo | None = getattr(_local, "info", None)
    _local.info = info
    return previous


def leave(previous: WorkerInfo | None) -> None:
    """Undo :func:`enter`."""
    _local.info = previous


def run_exit_hook(hook: Callable[[], Any] | None, timeout: float = EXIT_TIMEOUT) -> None:
    """Run a pool's ``worker_exit`` hook for the worker this thread is, at most ``timeout``
    seconds: one that raises is logged (with its traceback, on stderr when logging is not
    configured), one that hangs is left running in a daemon thread, so the pool never waits
    for it longer than that."""
    if hook is None:
        return
    info = worker()
    failure: list[BaseException] = []

    def run() -> None:
        enter(info)  # the hook runs as the worker: workhorse.worker() finds its state
        try:
            hook()
        except BaseException as exc:  # SystemExit too: the worker is leaving anyway
            failure.append(exc)

    runner = threading.Thread(target=run, name="workhorse-worker-exit", daemon=True)
    runner.start()
    runner.join(timeout)
    name = getattr(hook, "__qualname__", repr(hook))
    if runner.is_alive():
        _log.warning("worker_exit hook %s still running after %s s: left behind", name, timeout)
    elif failure:
        error = failure[0]
        _log.warning(
            "worker_exit hook %s raised", name, exc_info=(type(error), error, error.__traceback__)
        )


def _forget_in_child() -> None:
    # A process a task forks is not the worker (a new worker sets its own after the fork).
    set_process_worker(None)
    _local.__dict__.clear()


os.register_at_fork(after_in_child=_forget_in_child)
