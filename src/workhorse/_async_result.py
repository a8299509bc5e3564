"""The results of ``Pool.apply_async``/``map_async``: :mod:`multiprocessing.pool`'s shapes over
a :class:`concurrent.futures.Future`.

Example::

    result = pool.apply_async(pow, (2, 10))
    assert result.get(timeout=5) == 1024
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing import TimeoutError as PoolTimeoutError
from typing import Generic, TypeVar

__all__ = ["AsyncResult", "MapResult"]

T = TypeVar("T")


class AsyncResult(Generic[T]):
    """The result of ``apply_async``, as in :mod:`multiprocessing.pool`.

    As with the stdlib, ``callback``/``error_callback`` have run by the time the result is
    ready, so ``get()`` never returns before them.

    Example::

        result = pool.apply_async(pow, (2, 10))
        assert result.get(timeout=5) == 1024
    """

    def __init__(
        self,
        future: Future[T],
        callback: Callable[[T], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> None:
        self._future = future
        self._callback, self._error_callback = callback, error_callback
        self._ready = threading.Event()
        future.add_done_callback(self._on_done)

    def _on_done(self, future: Future[T]) -> None:
        try:
            if future.cancelled():
                return
            error = future.exception()
            if error is None:
                if self._callback is not None:
                    self._callback(future.result())
            elif self._error_callback is not None:
                self._error_callback(error)
        finally:  # a callback that raises is logged by the future; never leave get() hanging
            self._ready.set()

    def ready(self) -> bool:
        """Whether the call has completed."""
        return self._ready.is_set()

    def successful(self) -> bool:
        """Whether it completed without raising; ``ValueError`` if not ready yet."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return not self._future.cancelled() and self._future.exception() is None

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the result is available or ``timeout`` seconds pass."""
        self._ready.wait(timeout)

    def get(self, timeout: float | None = None) -> T:
        """The result; raises the task's exception, or ``multiprocessing.TimeoutError``."""
        if not self._ready.wait(timeout):
            raise PoolTimeoutError(f"no result within {timeout} s")
        return self._future.result()


class MapResult(AsyncResult[list[T]]):
    """The result of ``map_async``/``starmap_async``: a list, in input order."""
