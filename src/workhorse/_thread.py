"""``Thread``: :class:`threading.Thread` with results, exceptions and cooperative cancel.

The thread's ``run()`` executes inside its own :class:`~workhorse._cancel.CancelScope`, so
after :meth:`Thread.cancel` every workhorse blocking call in it (``Queue.get``,
``Event.wait``, ``Lock.acquire``, ``Connection.recv`` ...) raises
:class:`~workhorse.Cancelled`. Task groups use this to stop member threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import _cancel
from ._errors import Cancelled
from ._timeouts import wait_timeout

__all__ = ["Thread"]


class Thread(threading.Thread):
    """A thread running ``target(*args, **kwargs)`` (or an overriding ``run()``).

    Example::

        t = Thread(target=sum, args=([1, 2, 3],))
        t.start()
        assert t.result(timeout=5) == 6

    Differences from the stdlib:
        * :meth:`result`, :meth:`exception`, :meth:`cancel` and :attr:`cancelled` are new;
          ``run()`` returns the target's value.
        * A non-callable ``target`` raises ``TypeError`` at construction.
        * ``join()`` is cancel-aware: inside a cancelled task-group member it raises
          ``Cancelled``.
        * A thread that ends with ``Cancelled`` after :meth:`cancel` does not report it to
          :func:`threading.excepthook` (other uncaught exceptions still are, as in the stdlib).
    """

    _target: Any
    _args: Any
    _kwargs: Any

    def __init__(
        self,
        group: None = None,
        target: Callable[..., Any] | None = None,
        name: str | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        daemon: bool | None = None,
    ) -> None:
        if target is not None and not callable(target):
            raise TypeError(f"target must be callable, not {type(target).__name__}")
        super().__init__(group, target, name, args, kwargs, daemon=daemon)
        self._wh_scope = _cancel.CancelScope()
        self._wh_done = threading.Event()
        self._wh_outcome: tuple[bool, Any] | None = None
        self._wh_callbacks: list[Callable[[], None]] = []
        self._wh_lock = threading.Lock()
        self._wh_report = True  # pass uncaught exceptions to threading.excepthook

    def run(self) -> Any:
        """Run ``target(*args, **kwargs)`` and return its value."""
        try:
            if self._target is not None:
                return self._target(*self._args, **self._kwargs)
            return None
        finally:
            del self._target, self._args, self._kwargs  # as the stdlib: no reference cycles

    def start(self) -> None:
        """Start the thread (``RuntimeError`` if started twice, as the stdlib)."""
        run = self.run

        def run_in_scope() -> None:
            try:
                with _cancel.entered(self._wh_scope):
                    value = run()
            except BaseException as exc:
                self._set_outcome((False, exc))
                if isinstance(exc, Cancelled) and self.cancelled:
                    return  # a requested stop, not an error worth a traceback on stderr
                if self._wh_report:
                    raise
            else:
                self._set_outcome((True, value))

        self.run = run_in_scope  # type: ignore[method-assign]
        try:
            super().start()
        except BaseException:
            del self.run
            raise

    def _set_outcome(self, outcome: tuple[bool, Any]) -> None:
        with self._wh_lock:
            self._wh_outcome = outcome
            self._wh_done.set()
            callbacks, self._wh_callbacks = self._wh_callbacks, []
        for callback in callbacks:
            callback()

    def _wh_on_finish(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (in the thread) once ``run()`` has finished, or now if it has."""
        with self._wh_lock:
            if not self._wh_done.is_set():
                self._wh_callbacks.append(callback)
                return
        callback()

    def _wh_finished(self) -> bool:
        return self._wh_done.is_set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the thread ends, or ``timeout`` seconds (cancel-aware)."""
        threading.Thread.join(self, 0)  # the stdlib's checks (not started, current thread)

        def attempt(t: float | None) -> bool:
            threading.Thread.join(self, t)
            return not self.is_alive()

        _cancel.block(attempt, wait_timeout(timeout))

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the thread to stop: its next (or current) workhorse blocking call raises
        :class:`~workhorse.Cancelled`. Cooperative: code that never calls into workhorse
        runs on. Cancelling before ``start()`` makes the first such call raise."""
        self._wh_scope.cancel(reason)

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._wh_scope.cancelled

    def result(self, timeout: float | None = None) -> Any:
        """Wait for ``run()`` to finish and return its value, or raise its exception.

        A thread stopped by :meth:`cancel` re-raises its :class:`~workhorse.Cancelled`.

        Raises:
            TimeoutError: if the thread is still running after ``timeout`` seconds.
            RuntimeError: if the thread was never started.
        """
        ok, value = self._outcome(timeout)
        if ok:
            return value
        raise value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait like :meth:`result` and return the exception ``run()`` raised, or ``None``."""
        ok, value = self._outcome(timeout)
        return None if ok else value

    def _outcome(self, timeout: float | None) -> tuple[bool, Any]:
        if not self._started.is_set():  # type: ignore[attr-defined]
            raise RuntimeError("cannot get the result of a thread before it is started")
        done = self._wh_done
        if not _cancel.block(done.wait, wait_timeout(timeout)):
            raise TimeoutError(f"thread {self.name!r} did not finish within {timeout} s")
        assert self._wh_outcome is not None
        return self._wh_outcome
