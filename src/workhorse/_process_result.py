"""The result pipe of a :class:`~workhorse._process.Process`, both of its ends.

The child sends one message before it exits: ``R`` and the pickled return value of
``run()``, or ``E`` and the exception it raised (original type and traceback kept); under
spawn and forkserver an ``S`` first, once its start-up went through, so that a child that
died before can be told apart. The parent reads whatever is ready while it waits in
``join()``/``is_alive()`` (a large result cannot deadlock the child) and decodes it once.
"""

from __future__ import annotations

import os
import threading
from multiprocessing import connection as mpconn
from multiprocessing.process import BaseProcess
from typing import Any

from ._errors import SerializationError, WorkerCrashed
from ._process_launch import FRESH_METHODS, _Call
from ._remote import dump_exception, load_exception
from ._serialize import dumps, loads

__all__ = ["ResultPipe"]

_OK, _RAISED = b"R", b"E"  # first byte of the child's last message
_STARTED = b"S"  # spawn/forkserver: the child got past its start-up (see _bootstrap)


class ResultPipe(BaseProcess):
    """Mixin of :class:`~workhorse._process.Process`: the ends of its result pipe."""

    # Private attributes of BaseProcess that typeshed does not declare.
    _target: Any
    _args: tuple[Any, ...]
    _kwargs: dict[str, Any]
    # Set by Process.__init__ and start().
    _wh_lock: threading.Lock
    _wh_reader: mpconn.Connection | None
    _wh_pending: bool
    _wh_message: bytes | None
    _wh_pid: int | None
    _wh_exitcode: int | None

    # -- parent side -----------------------------------------------------------------

    def _collect(self) -> None:
        """Read the child's messages that are ready (or note that no more will come)."""
        with self._wh_lock:
            reader = self._wh_reader
            while self._wh_pending and reader is not None and reader.poll(0):
                try:
                    message = reader.recv_bytes()
                except (EOFError, OSError):  # the child died before (or while) sending
                    self._wh_pending = False
                    return
                if message == _STARTED:
                    self._wh_started = True
                    continue
                self._wh_message = message
                self._wh_pending = False

    def _decode(self) -> tuple[bool, Any]:
        data = self._wh_message
        if data is None:
            reason = None
            method = self.__dict__.get("_wh_method")
            if method in FRESH_METHODS and not self.__dict__.get("_wh_started"):
                reason = (
                    f"while starting under {method!r}, before running its target: importing "
                    "the main module or unpickling the process failed (the child printed why "
                    "on stderr; a script that starts processes when it is imported needs "
                    "`if __name__ == '__main__':`)"
                )
            crash = WorkerCrashed(f"process {self.name!r}", self._wh_pid, self._wh_exitcode, reason)
            return False, crash
        view = memoryview(data)[1:]
        if data[:1] == _OK:
            return True, loads(view)
        exc = load_exception(bytes(view))
        if isinstance(exc, SystemExit) and exc.code is None and exc.args:
            # tblib rebuilds exceptions without __init__, which is what sets `code`.
            exc.code = exc.args[0] if len(exc.args) == 1 else exc.args  # type: ignore[assignment]
        if isinstance(exc, SystemExit) and self._wh_exitcode == 0:
            return True, None
        return False, exc

    # -- child side ------------------------------------------------------------------

    def _bootstrap(self, parent_sentinel: int | None = None) -> int:
        reader = self.__dict__.pop("_wh_reader", None)
        if reader is not None:
            reader.close()  # fork: the parent's end of the result pipe
        writer: mpconn.Connection = self.__dict__.pop("_wh_writer")
        call: _Call | None = self.__dict__.pop("_wh_call", None)
        run = self.run
        origin = f"process {self.name!r} (pid {os.getpid()})"
        if call is not None:  # spawn/forkserver: tell the parent the start-up went through
            try:
                writer.send_bytes(_STARTED)
            except OSError:
                pass

        def run_and_deliver() -> Any:
            try:
                if call is not None:
                    self._target, self._args, self._kwargs = call.load()
                value = run()
            except BaseException as exc:
                _deliver(writer, _RAISED + dump_exception(exc, origin))
                raise  # the stdlib prints it and sets the exit code
            try:
                blob = _OK + dumps(value, what="the result")
            except SerializationError as exc:
                blob = _RAISED + dump_exception(exc, origin)
            _deliver(writer, blob)
            return value

        self.run = run_and_deliver  # type: ignore[method-assign]
        code: int = super()._bootstrap(parent_sentinel)  # type: ignore[misc]
        return code


def _deliver(writer: mpconn.Connection, blob: bytes) -> None:
    try:
        writer.send_bytes(blob)
    except OSError:
        pass  # the parent is gone; nobody wants the result
    finally:
        writer.close()
