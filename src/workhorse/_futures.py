"""Futures that are real :class:`concurrent.futures.Future` objects and can stop a running
task.

``concurrent.futures.Future.cancel()`` refuses once a task runs. A workhorse future asks its
pool to stop the task instead -- the pool kills the worker process running it and starts a
new one -- and becomes cancelled at once, so ``wait``, ``as_completed``, callbacks and
``asyncio.wrap_future`` see an ordinary cancelled future.

This relies on ``Future``'s documented states and its ``_condition``/``_state``/``_waiters``
attributes, which have been stable since Python 3.2; the transition written here is the one
``Future.cancel()`` and ``set_running_or_notify_cancel()`` perform together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from concurrent.futures._base import CANCELLED_AND_NOTIFIED, FINISHED, RUNNING
from typing import Any, TypeVar

__all__ = ["TaskFuture", "force_cancel", "settle"]

T = TypeVar("T")
_log = logging.getLogger("workhorse")


class TaskFuture(Future[T]):
    """A :class:`concurrent.futures.Future` whose ``cancel()`` also stops a running task.

    Example::

        future = executor.submit(time.sleep, 60)
        future.cancel()      # True, even while it runs: the worker is stopped
    """

    _stop_running: Callable[[TaskFuture[Any]], None] | None = None

    def cancel(self) -> bool:
        """Cancel the task, stopping it if it is running; False once it has finished."""
        stop = self._stop_running
        if stop is None or self._state != RUNNING:
            return super().cancel()
        if not force_cancel(self):
            return False
        stop(self)
        return True


def force_cancel(future: Future[Any]) -> bool:
    """Cancel ``future`` whatever its state short of finished, notifying every waiter.

    Used for running tasks that are stopped, and for tasks a pool drops at shutdown:
    ``wait()``/``as_completed()`` waiters, ``result()`` callers and done-callbacks all see it.
    """
    with future._condition:
        state = future._state
        if state in (FINISHED, CANCELLED_AND_NOTIFIED):
            return state == CANCELLED_AND_NOTIFIED
        future._state = CANCELLED_AND_NOTIFIED
        for waiter in future._waiters:
            waiter.add_cancelled(future)
        future._condition.notify_all()
    future._invoke_callbacks()  # type: ignore[attr-defined]
    return True


def settle(future: Future[Any], ok: bool, value: Any) -> None:
    """Set a future's result or exception unless it was cancelled meanwhile.

    Callbacks run here; one that raises ``SystemExit`` or ``KeyboardInterrupt`` must not
    kill the pool's manager thread, so it is logged like an ordinary callback error.
    """
    try:
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
    except InvalidStateError:
        return  # cancelled meanwhile: the outcome has no taker
    except BaseException:
        if future._state != FINISHED:
            raise
        _log.exception("a done-callback of %r raised", future)
