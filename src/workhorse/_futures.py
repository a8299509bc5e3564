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
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING, RUNNING
from typing import Any, TypeVar

__all__ = ["TaskFuture", "count_outcome", "force_cancel", "settle", "start_running"]

T = TypeVar("T")
_log = logging.getLogger("workhorse")


class TaskFuture(Future[T]):
    """A :class:`concurrent.futures.Future` whose ``cancel()`` also stops a running task.

    Example::

        future = executor.submit(time.sleep, 60)
        future.cancel()      # True, even while it runs: the worker is stopped
    """

    _stop_running: Callable[[TaskFuture[Any]], None] | None = None
    # The pool's counts (pool.stats()), told how it ends by settle() or force_cancel(): a
    # done-callback per future would cost three times as much (see count_outcome).
    _tally: Any = None

    def cancel(self) -> bool:
        """Cancel the task, stopping it if it is running; False once it has finished."""
        stop = self._stop_running
        state = self._state
        if state == PENDING:
            # Queued: the pool skips it by its state. Notify now, so that wait() and
            # as_completed() count it as done at once, not when a worker would have taken it.
            return force_cancel(self)
        if stop is None or state != RUNNING:
            return super().cancel()
        if not force_cancel(self):
            return False
        stop(self)
        return True


def start_running(future: Future[Any]) -> bool:
    """Mark a queued future running; False if it was cancelled meanwhile (whatever the race)."""
    try:
        return future.set_running_or_notify_cancel()
    except RuntimeError:  # cancelled and notified between the caller's check and now
        return False


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
        tally = getattr(future, "_tally", None)
    if tally is not None:
        tally.settled(cancelled=1)
    invoke_callbacks(future)
    return True


def settle(future: Future[Any], ok: bool, value: Any) -> None:
    """Set a future's result or exception unless it was cancelled (or settled) meanwhile.

    The transition is ``Future.set_result``/``set_exception``'s; the difference is in the
    callbacks (see :func:`invoke_callbacks`): one that raises ``SystemExit`` must neither
    kill the pool's manager thread nor keep the callbacks after it from running.
    """
    with future._condition:
        if future._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED):
            return  # the outcome has no taker
        if ok:
            future._result = value
        else:
            future._exception = value
        future._state = FINISHED
        for waiter in future._waiters:
            if ok:
                waiter.add_result(future)
            else:
                waiter.add_exception(future)
        future._condition.notify_all()
        tally = getattr(future, "_tally", None)
    if tally is not None:
        if ok:
            tally.settled(done=1)
        else:
            tally.settled(failed=1)
    invoke_callbacks(future)


def count_outcome(future: Future[Any], tally: Any) -> None:
    """Have ``tally.settled`` told how ``future`` ends (now, if it has ended already).

    Set under the future's lock, which :func:`settle` and :func:`force_cancel` hold when they
    read it, so an outcome is counted exactly once however the two race.
    """
    with future._condition:
        if future._state not in (FINISHED, CANCELLED, CANCELLED_AND_NOTIFIED):
            future._tally = tally  # type: ignore[attr-defined]
            return
    tally.future_settled(future)


def invoke_callbacks(future: Future[Any]) -> None:
    """Run ``future``'s done-callbacks; log any that raises -- ``SystemExit`` included, which
    the stdlib lets escape -- and go on with the next one.

    ``KeyboardInterrupt`` in the main thread is the user's Ctrl-C and propagates.
    """
    for callback in future._done_callbacks:  # type: ignore[attr-defined]
        try:
            callback(future)
        except KeyboardInterrupt:
            if threading.current_thread() is threading.main_thread():
                raise
            _log.exception("a done-callback of %s raised", repr(future))
        except BaseException:  # repr now: a logged record must not keep the future alive
            _log.exception("a done-callback of %s raised", repr(future))
