"""Cooperative cancellation of threads, and the one blocking-wait loop everything uses.

A thread cannot be killed, so a task group stops a member thread by *cancelling* it: it sets
the member's :class:`CancelScope`, and the next time the member blocks in, or enters, a
workhorse call, that call raises :class:`~workhorse.Cancelled`.

Every blocking call in workhorse funnels through :func:`block`. When the calling thread has
no active scope, ``block`` hands the whole timeout to the underlying primitive, so the fast
path costs nothing. Inside a scope it waits in slices of at most ``SLICE`` seconds and checks
the scope between slices: a wake-up by the primitive itself (a release, a put) is still
immediate, and only the reaction to a cancellation is delayed, by at most one slice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ._errors import Cancelled

__all__ = [
    "SLICE",
    "CancelScope",
    "block",
    "checkpoint",
    "current_scope",
    "entered",
    "shielded",
    "state",
    "swap",
]

#: Longest uninterrupted wait inside a cancel scope, in seconds.
SLICE = 0.02


class CancelScope:
    """A flag that cancels the thread(s) running inside it.

    Example::

        scope = CancelScope()
        with entered(scope):
            ...            # in another thread: scope.cancel()
    """

    # A plain flag: nobody waits on a scope, threads only poll it between wait slices, and
    # assigning an attribute is atomic under the GIL.
    __slots__ = ("cancelled", "reason")

    def __init__(self) -> None:
        self.cancelled = False
        self.reason = "cancelled"

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask every thread inside the scope to stop at its next workhorse call."""
        self.reason = reason
        self.cancelled = True


class _State(threading.local):
    # The class attribute is every thread's default: reading it costs one attribute lookup,
    # no getattr() default and no function call, which the uncontended fast paths of the
    # thread primitives rely on.
    scope: CancelScope | None = None


#: The calling thread's state: ``state.scope`` is its cancel scope (``None`` outside any).
#: Hot paths read and write it directly; everything else uses the functions below.
state = _State()


def current_scope() -> CancelScope | None:
    """The cancel scope of the calling thread, if any."""
    return state.scope


@contextmanager
def entered(scope: CancelScope) -> Iterator[CancelScope]:
    """Run the body of the ``with`` block inside ``scope`` (in the calling thread)."""
    previous = state.scope
    state.scope = scope
    try:
        yield scope
    finally:
        state.scope = previous


def swap(scope: CancelScope | None) -> CancelScope | None:
    """Make ``scope`` the calling thread's scope; returns the previous one (a fast
    ``entered`` for hot loops)."""
    previous = state.scope
    state.scope = scope
    return previous


@contextmanager
def shielded() -> Iterator[None]:
    """Run the body outside any cancel scope: its waits cannot be cancelled.

    For clean-up that must finish, such as re-taking a condition's lock before ``Cancelled``
    propagates (the caller's ``with lock:`` expects to hold it).
    """
    previous = swap(None)
    try:
        yield
    finally:
        swap(previous)


def checkpoint() -> None:
    """Raise :class:`Cancelled` if the calling thread's scope was cancelled."""
    scope = state.scope
    if scope is not None and scope.cancelled:
        raise Cancelled(scope.reason)


def block(attempt: Callable[[float | None], bool], timeout: float | None) -> bool:
    """Call ``attempt(t)`` until it returns True or ``timeout`` seconds have passed.

    ``attempt(t)`` must block for at most ``t`` seconds (``None``: until it succeeds) and
    return whether it succeeded. Returns False on timeout; raises :class:`Cancelled` if the
    calling thread's scope is cancelled meanwhile.
    """
    scope = state.scope
    if scope is None:
        return attempt(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if scope.cancelled:
            raise Cancelled(scope.reason)
        if deadline is None:
            step: float = SLICE
        else:
            left = deadline - time.monotonic()
            step = max(0.0, min(SLICE, left))
        if attempt(step):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
