"""Timeout validation with the stdlib's exact rules, and deadlines.

Three families of blocking calls exist in the stdlib and each validates differently; every
workhorse primitive uses the helper of the family it imitates so that the errors match:

* ``lock_timeout`` -- ``Lock.acquire(blocking, timeout)`` (``-1`` means forever);
* ``wait_timeout`` -- ``Event.wait``/``Condition.wait``/``join`` (``None`` means forever,
  a negative value means "do not block");
* ``queue_timeout`` -- ``Queue.get``/``put(block, timeout)`` (negative is a ``ValueError``).

All return ``None`` for "forever" or a non-negative number of seconds.
"""

from __future__ import annotations

import math
import threading
import time

__all__ = [
    "TIMEOUT_MAX",
    "Deadline",
    "lock_timeout",
    "process_lock_timeout",
    "queue_timeout",
    "semaphore_timeout",
    "wait_timeout",
]

TIMEOUT_MAX: float = threading.TIMEOUT_MAX


def _check_number(timeout: float, name: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{name} must be a number or None, not {type(timeout).__name__}")
    if math.isnan(timeout):
        raise ValueError(f"{name} must not be NaN")
    if timeout > TIMEOUT_MAX:
        raise OverflowError(f"{name} value is too large (at most {TIMEOUT_MAX})")
    return float(timeout)


def lock_timeout(blocking: bool, timeout: float) -> float | None:
    """Validate ``acquire(blocking, timeout)`` arguments as :class:`threading.Lock` does."""
    timeout = _check_number(timeout)
    if not blocking:
        if timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        return 0.0
    if timeout == -1:
        return None
    if timeout < 0:
        raise ValueError("timeout value must be a non-negative number")
    return timeout


def process_lock_timeout(block: bool, timeout: float | None) -> float | None:
    """Validate ``acquire(block, timeout)`` of a process primitive as multiprocessing's
    ``SemLock`` does: the timeout is ignored when not blocking, ``None`` (or threading's
    ``-1``) is forever, and a negative one means "do not wait"."""
    if not block:
        return 0.0
    if timeout is None or timeout == -1:
        return None
    if isinstance(timeout, (int, float)) and timeout > TIMEOUT_MAX:
        return None  # as multiprocessing: longer than anyone waits
    return max(0.0, _check_number(timeout))


def semaphore_timeout(blocking: bool, timeout: float | None) -> float | None:
    """Validate ``Semaphore.acquire(blocking, timeout)`` as :class:`threading.Semaphore` does."""
    if not blocking:
        if timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        return 0.0
    return wait_timeout(timeout)


def wait_timeout(timeout: float | None) -> float | None:
    """Validate the timeout of ``wait``/``join``: ``None`` is forever, negative is zero."""
    if timeout is None:
        return None
    return max(0.0, _check_number(timeout))


def queue_timeout(block: bool, timeout: float | None) -> float | None:
    """Validate ``Queue.get``/``put(block, timeout)`` as :class:`queue.Queue` does."""
    if not block:
        return 0.0
    if timeout is None:
        return None
    if _check_number(timeout) < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return float(timeout)


class Deadline:
    """A point in time on the monotonic clock; ``None`` timeout means it never passes.

    Example::

        deadline = Deadline(2.0)
        while not done() and not deadline.expired():
            step(deadline.remaining())
    """

    __slots__ = ("_at",)

    def __init__(self, timeout: float | None) -> None:
        self._at = None if timeout is None else time.monotonic() + timeout

    @property
    def forever(self) -> bool:
        """True when the deadline never passes."""
        return self._at is None

    def remaining(self) -> float | None:
        """Seconds left (never negative), or ``None`` for no deadline."""
        if self._at is None:
            return None
        return max(0.0, self._at - time.monotonic())

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self._at is not None and time.monotonic() >= self._at
