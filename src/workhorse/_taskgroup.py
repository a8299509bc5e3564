"""``TaskGroup``: structured concurrency for processes and threads.

Modelled on :class:`asyncio.TaskGroup` and trio's nurseries: workers started in a ``with``
block never outlive it, and a failure is never lost. A watcher thread (one per group, alive
while the group has running members) waits on process sentinels and on a self-pipe that
member threads poke when they finish, so a failing member stops its siblings *at once*, not
only when the body reaches the end of the block:

* processes are terminated (SIGTERM, then SIGKILL after :attr:`TaskGroup.grace` seconds);
* threads are cancelled cooperatively: their next (or current) workhorse blocking call
  raises :class:`~workhorse.Cancelled`.

Members the group stopped are not failures. The failures (and an exception of the body) are
raised together as an :class:`ExceptionGroup` -- a :class:`BaseExceptionGroup` if one of them
is not an :class:`Exception`. ``KeyboardInterrupt``, ``SystemExit`` and ``Cancelled`` in the
body (or while the block waits) stop the members and propagate unchanged.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from multiprocessing import connection as mpconn
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from . import _cancel
from ._errors import Cancelled
from ._options import Progress, check_progress
from ._progress_bar import ProgressBar, make_bar
from ._signals import start_quietly

__all__ = ["TaskGroup"]


class _Worker(Protocol):
    def start(self) -> None: ...
    def is_alive(self) -> bool: ...
    def result(self, timeout: float | None = None) -> Any: ...
    def exception(self, timeout: float | None = None) -> BaseException | None: ...


W = TypeVar("W", bound=_Worker)


class _Member:
    __slots__ = ("finished", "killed", "stopped", "worker")

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.stopped = False  # the group asked it to stop while it was running
        self.killed = False
        self.finished = False


class TaskGroup(Generic[W]):
    """Run workers in a ``with`` block; stop them all if one fails.

    ``TaskGroup(worker_class)`` takes :class:`~workhorse._process.Process` (or a class from
    ``process_class``) or :class:`~workhorse._thread.Thread`; the contexts expose it as
    ``group()``. ``progress=`` (as for the pools: ``True`` on a terminal, ``"always"``, or a
    stream) shows a bar counting the members that finished out of those started so far.

    Example::

        with workhorse.group() as g:
            a = g.start(download, url1)
            b = g.start(download, url2)
        print(g.results)  # [a.result(), b.result()]

        try:
            with workhorse.threads.group() as g:
                g.start(consumer, q)   # blocked in q.get(): cancelled when producer fails
                g.start(producer, q)
        except* ValueError as eg:
            ...
    """

    #: Seconds between SIGTERM and SIGKILL when the group stops a process.
    grace: float = 1.0

    def __init__(self, worker_class: Callable[..., W], *, progress: Progress = False) -> None:
        self._worker_class = worker_class
        self._progress = check_progress(progress)
        self._bar: ProgressBar | None = None
        self._members: list[_Member] = []
        self._lock = threading.Lock()
        self._state = "new"  # new -> open -> (stopping) -> done
        self._stopping = False
        self._stop_time = 0.0
        self._failures: list[BaseException] = []
        self._results: list[Any] | None = None
        self._watcher: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._closing = False
        self._all_done = threading.Event()

    # -- public API ------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError("a TaskGroup can only be entered once")
        self._state = "open"
        self._bar = make_bar(self._progress, 0, "group")
        return self

    def start(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> W:
        """Start a member running ``fn(*args, **kwargs)`` and return the worker.

        Raises:
            RuntimeError: if the group has not been entered, has ended, or is shutting down
                after a failure.
        """
        with self._lock:
            if self._state != "open":
                raise RuntimeError(f"cannot start a member in a TaskGroup that is {self._state}")
            if self._stopping:
                raise RuntimeError("cannot start a member: the TaskGroup is shutting down")
            worker = self._worker_class(target=fn, args=args, kwargs=kwargs)
            if hasattr(worker, "_wh_report"):
                worker._wh_report = False  # the group reports failures, not excepthook
            member = _Member(worker)
            worker.start()
            self._members.append(member)
            if self._bar is not None:
                self._bar.grow()
            self._all_done.clear()
            self._ensure_watcher()
            on_finish = getattr(worker, "_wh_on_finish", None)
        if on_finish is not None:
            on_finish(self._wake)
        else:
            self._wake()  # watch the new process's sentinel
        return worker

    @property
    def results(self) -> list[Any]:
        """The members' results in start order, once the block exited without error."""
        if self._results is None:
            raise RuntimeError("results are available once the block has exited without error")
        return list(self._results)

    @property
    def members(self) -> list[W]:
        """The workers started so far, in start order."""
        with self._lock:
            return [m.worker for m in self._members]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        interrupt: BaseException | None = None
        if exc is not None:
            if isinstance(exc, (KeyboardInterrupt, SystemExit, Cancelled)):
                interrupt = exc
            self._stop_all()
        try:
            self._wait_members(cancellable=interrupt is None)
        except BaseException as waited:  # Ctrl-C or Cancelled while waiting
            self._stop_all()
            self._wait_members(cancellable=False)
            interrupt = interrupt or waited
        finally:
            self._shutdown_watcher()
            with self._lock:
                self._state = "done"
            if self._bar is not None:
                self._bar.close()
        if interrupt is not None:
            if interrupt is exc:
                return  # propagates unchanged
            raise interrupt
        errors = ([exc] if exc is not None else []) + self._failures
        if errors:
            message = "unhandled errors in a TaskGroup"
            if all(isinstance(e, Exception) for e in errors):
                raise ExceptionGroup(message, errors)  # type: ignore[type-var]
            raise BaseExceptionGroup(message, errors)
        self._results = [m.worker.result(0) for m in self._members]

    # -- watching ----------------------------------------------------------------------

    def _ensure_watcher(self) -> None:
        if self._watcher is not None:
            return
        self._wake_r, self._wake_w = os.pipe()
        self._watcher = threading.Thread(
            target=self._watch, name="workhorse-taskgroup-watcher", daemon=True
        )
        start_quietly(self._watcher)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass

    def _watch(self) -> None:
        while True:
            with self._lock:
                pending = [m for m in self._members if not m.finished]
                if not pending:
                    self._all_done.set()
                    if self._closing:
                        self._state = "done"
                        return
            handles: list[Any] = [self._wake_r]
            for member in pending:
                handles += getattr(member.worker, "_wh_handles", list)()
            to_kill = [m for m in pending if m.stopped and not m.killed and _can_kill(m)]
            timeout = None
            if to_kill:
                timeout = max(0.0, self._stop_time + self.grace - time.monotonic())
            ready = mpconn.wait(handles, timeout)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            with self._lock:  # members started while we waited count too
                pending = [m for m in self._members if not m.finished]
            for member in pending:
                if self._is_finished(member):
                    self._on_finished(member)
            if to_kill and time.monotonic() >= self._stop_time + self.grace:
                for member in to_kill:
                    member.killed = True
                    if not member.finished:
                        try:
                            member.worker.kill()  # it ignored SIGTERM for `grace` seconds
                        except (OSError, ValueError):
                            pass

    @staticmethod
    def _is_finished(member: _Member) -> bool:
        worker = member.worker
        finished = getattr(worker, "_wh_finished", None)
        if finished is not None:
            return bool(finished())
        return not worker.is_alive()

    def _on_finished(self, member: _Member) -> None:
        member.finished = True
        if self._bar is not None:
            self._bar.update()
        is_process = hasattr(member.worker, "terminate")
        if member.stopped and is_process:
            return  # terminated by the group, whatever its exit code says
        error = member.worker.exception(0)
        if error is None:
            return
        if isinstance(error, Cancelled) and getattr(member.worker, "cancelled", False):
            return  # a thread cancelled on purpose: a clean stop
        with self._lock:
            self._failures.append(error)
        self._stop_all()

    def _stop_all(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._stop_time = time.monotonic()
            members = [m for m in self._members if not m.finished]
        # A member that already ended on its own is judged by its outcome, not stopped.
        members = [m for m in members if not self._is_finished(m)]
        for member in members:
            member.stopped = True
        for member in members:
            worker = member.worker
            stop = getattr(worker, "terminate", None) or worker.cancel
            try:
                stop()
            except (OSError, ValueError):
                pass  # it exited meanwhile
        self._wake()

    def _wait_members(self, *, cancellable: bool) -> None:
        if self._watcher is None:
            return
        with self._lock:
            self._closing = True
        self._wake()
        if cancellable:
            _cancel.block(self._all_done.wait, None)
        else:
            self._all_done.wait()

    def _shutdown_watcher(self) -> None:
        if self._watcher is None:
            return
        with self._lock:
            self._closing = True
        self._wake()
        self._watcher.join()
        # Reap processes and let threads finish their bootstrap, even inside a cancelled
        # scope (a fresh scope shields these joins from the caller's cancellation).
        with _cancel.entered(_cancel.CancelScope()):
            for member in self._members:
                join = getattr(member.worker, "join", None)
                if join is not None:
                    join()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _can_kill(member: _Member) -> bool:
    return hasattr(member.worker, "kill")
