"""``Process``: :class:`multiprocessing.Process` with results, exceptions and lambdas.

A :class:`Process` *is* a multiprocessing process object (a subclass of the start method's
class), so ``multiprocessing.active_children()``, ``current_process()`` and
``isinstance(p, multiprocessing.process.BaseProcess)`` keep working. What it adds:

* ``result(timeout)`` / ``exception(timeout)``: the child sends the return value of ``run()``
  (or the exception it raised, original type and traceback kept) back over a one-way pipe.
  The parent drains that pipe while it waits in ``join()``/``is_alive()``, so a 10 MB result
  cannot deadlock ``join()`` -- the classic hang of a child blocked writing into a full pipe
  that nobody reads -- and keeps the result after the child exited.
* lambdas, closures and local functions as ``target``/``args``/``kwargs`` under every start
  method: under spawn and forkserver, ``(target, args, kwargs)`` travel as one cloudpickle
  blob, made while the child is being launched so that pipes, sockets and stdlib
  multiprocessing objects among the arguments still go through multiprocessing's own
  reducers. Under fork nothing is pickled.
* ``WorkerCrashed`` (naming the exit code or the signal) when the child died without
  delivering a result, and ``SerializationError`` from ``start()`` naming the argument that
  cannot be pickled, before any process exists.

Start method: the one :mod:`multiprocessing` uses (``multiprocessing.get_start_method()``,
decided when the process starts: ``fork`` on Linux up to Python 3.13, ``forkserver`` from
3.14; ``set_start_method`` changes it for both), so a program behaves as with the stdlib.
``process_class("spawn")`` and friends give a fixed method. So that forkserver children do
not re-import workhorse, importing this module adds ``workhorse._process`` to the
forkserver's preload list (``multiprocessing.set_forkserver_preload``; it takes effect if the
server is not running yet).

Under spawn and forkserver the child imports the main script again. A script that starts a
process while it is being imported that way (no ``if __name__ == "__main__":`` guard) gets a
one-line ``RuntimeError`` naming the fix in the child, and the parent's :meth:`result`
raises :class:`WorkerCrashed` saying the child failed while starting, not while running.

Module layout: the class here; what launching a child takes in :mod:`._process_launch`; the
result pipe's two ends in :mod:`._process_result`.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context as mpc
import os
import pickle
import threading
from collections.abc import Callable, Mapping
from functools import cache
from multiprocessing import connection as mpconn
from multiprocessing.process import BaseProcess
from typing import Any, cast

from . import _cancel
from ._errors import SerializationError
from ._process_launch import _Call, check_not_bootstrapping, main_importable
from ._process_result import ResultPipe
from ._timeouts import Deadline, wait_timeout

__all__ = ["PidFd", "Process", "check_not_bootstrapping", "main_importable", "process_class"]


class Process(ResultPipe):
    """A process running ``target(*args, **kwargs)`` (or an overriding ``run()``).

    Same constructor and methods as :class:`multiprocessing.Process`, plus :meth:`result` and
    :meth:`exception`. Uses multiprocessing's start method (``fork`` on Linux up to Python
    3.13); :func:`process_class` gives the class of a fixed method.

    Example::

        p = Process(target=lambda x: x * 2, args=(21,))
        p.start()
        assert p.result(timeout=10) == 42
        p.join()

    Differences from the stdlib:
        * ``run()`` returns the target's return value, which the child sends to the parent
          (after pickling it; a result that cannot be pickled becomes a
          ``SerializationError`` from :meth:`result`, and the child still exits 0).
        * A large result is collected while the parent waits in ``join()``, ``is_alive()``,
          ``result()`` or ``exception()``; a child whose result exceeds the pipe buffer
          (64 KiB) stays alive until then, so code that waits only on ``sentinel`` should
          call one of these.
        * Starting twice, or ``join()``/``result()`` before ``start()``, raises
          ``RuntimeError`` (the stdlib uses ``assert``, which ``python -O`` removes).
        * A non-callable ``target`` raises ``TypeError`` at construction.
        * Lambdas and closures work as target and arguments under every start method.
    """

    _start_method: str | None = None  # None: multiprocessing's default, when it starts
    # Private attributes of BaseProcess that typeshed does not declare.
    _popen: Any
    _closed: bool
    _parent_pid: int

    def __init__(
        self,
        group: None = None,
        target: Callable[..., Any] | None = None,
        name: str | None = None,
        args: Any = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        daemon: bool | None = None,
    ) -> None:
        if target is not None and not callable(target):
            raise TypeError(f"target must be callable, not {type(target).__name__}")
        super().__init__(group, target, name, args, {} if kwargs is None else kwargs, daemon=daemon)
        self._wh_lock = threading.Lock()
        self._wh_poll_lock = threading.Lock()
        self._wh_reader: mpconn.Connection | None = None
        self._wh_pending = False  # the child's message may still arrive
        self._wh_message: bytes | None = None
        self._wh_pid: int | None = None
        self._wh_exitcode: int | None = None
        self._wh_outcome: tuple[bool, Any] | None = None

    @staticmethod
    def _Popen(process_obj: BaseProcess) -> Any:
        method = cast(Process, process_obj)._start_method
        return multiprocessing.get_context(method).Process._Popen(process_obj)  # type: ignore[attr-defined]

    @staticmethod
    def _after_fork() -> None:
        # In the child: what the start method's own class does (a fork child forgets the
        # parent's multiprocessing finalizers; a spawned child has nothing to forget).
        multiprocessing.get_context().Process._after_fork()  # type: ignore[attr-defined]

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (by multiprocessing) only while a spawn/forkserver child is launched.
        state = self.__dict__.copy()
        for key in ("_wh_lock", "_wh_poll_lock", "_wh_reader", "_wh_outcome", "_wh_pidfd"):
            state.pop(key, None)
        return state

    def run(self) -> Any:
        """Run ``target(*args, **kwargs)`` in the child and return its value."""
        if self._target is not None:
            return self._target(*self._args, **self._kwargs)
        return None

    # -- parent side -----------------------------------------------------------------

    def start(self) -> None:
        """Start the child.

        Raises:
            RuntimeError: if the process was already started.
            SerializationError: (spawn, forkserver) if the target or an argument cannot be
                pickled; no process is started then.
            ValueError: if the process object is closed.
        """
        self._ensure_open()
        if self._popen is not None:
            raise RuntimeError("cannot start a process twice")
        method = self._start_method or multiprocessing.get_start_method()
        check_not_bootstrapping(method, f"process {self.name!r}")
        target, args, kwargs = self._target, self._args, self._kwargs
        reader, writer = mpconn.Pipe(duplex=False)
        self._wh_reader, self._wh_writer = reader, writer
        self._wh_method = method
        if method != "fork":
            owner = f"process {self.name!r}"
            self._wh_call = _Call((target, args, kwargs), owner, not main_importable())
            self._target, self._args, self._kwargs = None, (), {}
        try:
            super().start()
        except BaseException as exc:
            reader.close()
            self._wh_reader = None
            self._target, self._args, self._kwargs = target, args, kwargs
            if isinstance(exc, (pickle.PicklingError, TypeError, AttributeError)) and not (
                isinstance(exc, SerializationError)
            ):
                message = (
                    f"cannot pickle the process object of type {type(self).__qualname__} "
                    f"for the {method} start method: {type(exc).__name__}: {exc}"
                )
                raise SerializationError.wrapping(exc, message) from exc
            raise
        finally:
            writer.close()  # the child has its copy; ours would hide its exit
            self.__dict__.pop("_wh_writer", None)
            self.__dict__.pop("_wh_call", None)
        popen: Any = self._popen
        self._wh_pid = popen.pid
        self._wh_pidfd = PidFd.open(popen.pid)
        self._wh_pending = True

    def join(self, timeout: float | None = None) -> None:
        """Wait until the child exits, or ``timeout`` seconds (collecting its result)."""
        self._check_child("join")
        if _cancel.block(self._wait_exit, wait_timeout(timeout)):
            self._poll(block=True)  # the sentinel fired: reap the child (immediate)
            self._finish()

    def is_alive(self) -> bool:
        """Return whether the child is running (collecting its result if it is ready)."""
        self._ensure_open()
        if self is multiprocessing.current_process():
            return True
        if self._popen is None:
            return False
        self._check_child("test")
        if self._poll() is None and self._wh_pending:
            self._collect()
        if self._poll() is None:
            return True
        self._finish()
        return False

    def close(self) -> None:
        """Release the process object's resources (``ValueError`` if it is still running)."""
        if self._popen is not None and self._poll() is not None:
            self._finish()
        super().close()
        pidfd = self.__dict__.pop("_wh_pidfd", None)
        if pidfd is not None:
            pidfd.close()
        if self._wh_reader is not None:
            self._wh_reader.close()
            self._wh_reader = None

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the child to finish and return the value its ``run()`` returned.

        Raises:
            TimeoutError: if the child is still running after ``timeout`` seconds.
            WorkerCrashed: if the child died without delivering a result (``os._exit``,
                a signal such as SIGKILL or SIGSEGV).
            BaseException: the child's own exception, with its original type and the child's
                traceback (a :class:`~workhorse.RemoteError` if it cannot be re-created).
                ``sys.exit(code)`` in the child: ``result()`` returns ``None`` when the exit
                code is 0 (``sys.exit()``, ``sys.exit(0)``), and raises the ``SystemExit``
                otherwise.
            RuntimeError: if the process was never started.

        Example::

            p = Process(target=divmod, args=(7, 2)); p.start()
            assert p.result() == (3, 1)
        """
        ok, value = self._outcome(timeout)
        if ok:
            return value
        raise value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait like :meth:`result` and return the child's exception, or ``None``.

        A crash is returned as :class:`~workhorse.WorkerCrashed`; only ``TimeoutError`` (and
        ``RuntimeError`` before ``start()``) are raised.
        """
        ok, value = self._outcome(timeout)
        return None if ok else cast(BaseException, value)

    # -- internals -------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise ValueError("process object is closed")

    def _check_child(self, action: str) -> None:
        self._ensure_open()
        if self._popen is None:
            raise RuntimeError(f"can only {action} a started process")
        if self._parent_pid != os.getpid():
            raise RuntimeError(f"can only {action} a child process")

    def _poll(self, *, block: bool = False) -> int | None:
        # One waitpid() at a time: a thread that loses the race gets ECHILD, which the
        # stdlib's Popen.poll() reports as "still running".
        with self._wh_poll_lock:
            code: int | None = self._popen.wait(None) if block else self._popen.poll()
        return code

    def _exit_handle(self) -> Any:
        """What becomes readable when the child exits: its pidfd where the kernel has them
        (the stdlib's sentinel is a pipe that a grandchild may inherit and keep open long
        after the child died), else the sentinel."""
        pidfd = self.__dict__.get("_wh_pidfd")
        return self._popen.sentinel if pidfd is None else pidfd

    def _wh_handles(self) -> list[Any]:
        """What a watcher waits on: the exit handle, and the result pipe while it may fill."""
        reader = self._wh_reader if self._wh_pending else None
        return [self._exit_handle()] + ([] if reader is None else [reader])

    def _wait_exit(self, timeout: float | None) -> bool:
        """Wait for the child's exit for up to ``timeout`` s, draining the result meanwhile."""
        deadline = Deadline(timeout)
        sentinel = self._exit_handle()
        while True:
            reader = self._wh_reader if self._wh_pending else None
            handles: list[Any] = [sentinel] if reader is None else [sentinel, reader]
            ready = mpconn.wait(handles, deadline.remaining())
            if reader is not None and reader in ready:
                self._collect()
            if sentinel in ready:
                return True
            if deadline.expired():
                return False

    def _finish(self) -> None:
        """The child has exited: take what is left in the pipe and its exit code."""
        self._collect()
        self._wh_pending = False
        if self._wh_exitcode is None and self._popen is not None:
            self._wh_exitcode = self._poll()
            multiprocessing.process._children.discard(self)  # type: ignore[attr-defined]
        # The pidfd stays open until close() (or collection), like the stdlib's sentinel:
        # another thread may be waiting on it in join(), and closing an fd under a poll()
        # fails it with "pidfd is closed", or worse, waits on whatever reuses the number.

    def _wh_exited(self) -> bool:
        return self._closed or (self._popen is not None and self._poll() is not None)

    def _outcome(self, timeout: float | None) -> tuple[bool, Any]:
        if self._wh_outcome is not None:
            return self._wh_outcome
        if self._wh_pid is None:
            raise RuntimeError("cannot get the result of a process before it is started")
        if not self._closed:
            self.join(timeout)
            if self._poll() is None:
                raise TimeoutError(f"process {self.name!r} did not finish within {timeout} s")
            self._finish()
        with self._wh_lock:
            if self._wh_outcome is None:
                self._wh_outcome = self._decode()
            return self._wh_outcome


class PidFd:
    """A Linux pidfd: readable once the process exits, whoever holds which pipe.

    Example::

        pidfd = PidFd.open(pid)        # None where the kernel has no pidfds
        connection.wait([pidfd])
        pidfd.close()
    """

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def open(cls, pid: int | None) -> PidFd | None:
        """The pidfd of ``pid``, or None (no such process, or no pidfds here)."""
        if pid is None or not hasattr(os, "pidfd_open"):
            return None
        try:
            return cls(os.pidfd_open(pid))
        except OSError:
            return None

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("pidfd is closed")
        return self._fd

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


class ForkProcess(Process, mpc.ForkProcess):
    """:class:`Process` started with ``fork``."""

    _start_method = "fork"  # type: ignore[mutable-override]


class SpawnProcess(Process, mpc.SpawnProcess):
    """:class:`Process` started with ``spawn``."""

    _start_method = "spawn"  # type: ignore[mutable-override]


class ForkServerProcess(Process, mpc.ForkServerProcess):
    """:class:`Process` started with ``forkserver``."""

    _start_method = "forkserver"  # type: ignore[mutable-override]


_CLASSES: dict[str, type[Process]] = {
    "fork": ForkProcess,
    "spawn": SpawnProcess,
    "forkserver": ForkServerProcess,
}


def _preload_into_forkserver() -> None:
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    modules = list(getattr(server, "_preload_modules", None) or ["__main__"])
    if __name__ not in modules:
        forkserver.set_forkserver_preload([*modules, __name__])


_preload_into_forkserver()


@cache
def process_class(start_method: str | None) -> type[Process]:
    """The :class:`Process` class that starts children with ``start_method`` (``None``:
    :class:`Process`, multiprocessing's default method).

    It subclasses both :class:`Process` and the stdlib's class for that method
    (``multiprocessing.context.SpawnProcess`` ...). Subclass it to override ``run()``.

    Example::

        SpawnProcess = process_class("spawn")
        p = SpawnProcess(target=print, args=("hi",)); p.start(); p.join()
    """
    if start_method is None:
        return Process
    try:
        return _CLASSES[start_method]
    except KeyError:
        raise ValueError(f"cannot find context for {start_method!r}") from None
