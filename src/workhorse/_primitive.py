"""Small pieces that the primitives of every flavour (process, thread, Dask) share.

* :class:`LockContext`: ``with`` support for anything with ``acquire()`` and ``release()``;
* :class:`NonRecursiveLock`: a plain process lock's side of the ``Condition`` protocol;
* :class:`SegmentBacked`: pickling of a process primitive whose state is one shared-memory
  segment (it travels as the segment's name);
* :func:`wait_for`: the loop of ``Condition.wait_for``;
* :func:`until_shutdown`: the loop of a queue's ``for item in q``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar, cast

from . import _cancel
from ._errors import QueueShutDown
from ._sharing import Shared
from ._shm import Segment

__all__ = ["LockContext", "NonRecursiveLock", "SegmentBacked", "until_shutdown", "wait_for"]

_T = TypeVar("_T")


class LockContext:
    """``with obj:`` acquires ``obj`` (blocking) and releases it on the way out."""

    def acquire(self) -> bool:
        """Acquire (subclasses take their own, optional, arguments)."""
        raise NotImplementedError

    def release(self) -> None:
        """Release what :meth:`acquire` took."""
        raise NotImplementedError

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class NonRecursiveLock(LockContext):
    """The protocol ``Condition`` uses (threading's names), for a lock held at most once:
    ``_release_save`` releases it, ``_acquire_restore`` takes it back even in a cancelled
    thread (a ``Condition`` must always hold its lock again when ``wait`` returns)."""

    def _is_owned(self) -> bool:
        raise NotImplementedError

    def _release_save(self) -> int:
        self.release()
        return 1

    def _acquire_restore(self, state: int) -> None:
        with _cancel.shielded():
            self.acquire()


class SegmentBacked(Shared):
    """A shared primitive whose ``_setup`` takes a :class:`~workhorse._shm.Segment` last.

    It pickles to :meth:`_setup_args` (the other arguments) plus the segment's name, and is
    rebuilt in another process by ``_setup(*args, Segment.attach(name))``.
    """

    _seg: Segment

    def _setup_args(self) -> tuple[Any, ...]:
        """The arguments of ``_setup`` but the segment, as they pickle."""
        return ()

    def _shared_state(self) -> Any:
        return (*self._setup_args(), self._seg.name)

    @classmethod
    def _from_shared_state(cls, uid: str, state: Any) -> Self:
        self = cls.__new__(cls)
        # _setup's signature is each subclass's own; only the segment comes last in all.
        setup: Callable[..., None] = cast(Any, self)._setup
        setup(*state[:-1], Segment.attach(state[-1]))
        self._register(uid)
        return self


def wait_for(
    wait: Callable[[float | None], object], predicate: Callable[[], _T], timeout: float | None
) -> _T:
    """Call ``wait(remaining)`` until ``predicate()`` is true or ``timeout`` seconds (already
    validated: None or >= 0) have passed; return the predicate's last value.

    :meth:`threading.Condition.wait_for`'s loop, step for step: the first wait gets the
    whole timeout (with ``timeout=0`` too: one wait that releases the lock and takes it
    back), later ones what is left, and none starts once nothing is left.
    """
    deadline: float | None = None
    waittime = timeout
    result = predicate()
    while not result:
        if waittime is not None:
            if deadline is None:
                deadline = time.monotonic() + waittime
            else:
                waittime = deadline - time.monotonic()
                if waittime <= 0:
                    break
        wait(waittime)
        result = predicate()
    return result


def until_shutdown(get: Callable[[], _T]) -> Iterator[_T]:
    """Yield ``get()`` until it raises :class:`~workhorse.QueueShutDown` (a queue's
    ``__iter__``: it ends once the queue is shut down and drained)."""
    while True:
        try:
            yield get()
        except QueueShutDown:
            return
