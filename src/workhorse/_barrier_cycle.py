"""The pass logic of :class:`threading.Barrier`, shared by the thread and process barriers.

A barrier is a state (filling, draining, resetting, broken) and a count of the parties inside
``wait``, changed only under a condition. How a party waits differs by flavour (a
cancel-aware thread condition; a process condition that also looks for dead parties), and so
does where state and count live (attributes; shared memory): those are each barrier's own.
The rest -- who releases a pass, who lets the next one in, reset, abort -- is here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

__all__ = ["BROKEN", "DRAINING", "FILLING", "RESETTING", "BarrierCycle"]

# As in threading: filling, draining, resetting, broken.
FILLING, DRAINING, RESETTING, BROKEN = 0, 1, -1, -2


class _Notifier(Protocol):
    def notify_all(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _Barrier(Protocol):
    """What :class:`BarrierCycle` needs of the barrier it is mixed into."""

    @property
    def _cond(self) -> _Notifier: ...
    @property
    def _action(self) -> Callable[[], object] | None: ...
    @property
    def _parties(self) -> int: ...
    @property
    def _count(self) -> int: ...
    @property
    def _state(self) -> int: ...
    @_state.setter
    def _state(self, value: int) -> None: ...
    def _arrive(self, delta: int, /) -> None: ...
    def _wait(self, limit: Any, /) -> None: ...
    def _release(self) -> None: ...
    def _break(self) -> None: ...
    def _exit(self) -> None: ...
    def _repr_name(self) -> str: ...


class BarrierCycle:
    """Mixin: everything of a barrier but how it waits and where its state and count live."""

    def _take_part(self: _Barrier, limit: Any) -> int:
        """The core of ``wait`` (condition held, the pass filling): arrive, then release the
        pass (the last party) or wait for it (``limit``: the argument of ``_wait``); leave."""
        index = self._count
        self._arrive(1)
        try:
            if index + 1 == self._parties:
                self._release()
            else:
                self._wait(limit)
            return index
        finally:
            self._arrive(-1)
            self._exit()

    def _release(self: _Barrier) -> None:
        """The last party arrived: run the action, then let the pass drain."""
        try:
            if self._action is not None:
                self._action()
            self._state = DRAINING
            self._cond.notify_all()
        except BaseException:
            self._break()
            raise

    def _exit(self: _Barrier) -> None:
        """A party left (condition held): the last one out lets the next pass in."""
        if self._count == 0 and self._state in (DRAINING, RESETTING):
            self._state = FILLING
            self._cond.notify_all()

    def _break(self: _Barrier) -> None:
        self._state = BROKEN
        self._cond.notify_all()

    def reset(self: _Barrier) -> None:
        """Return the barrier to its empty state; current waiters get BrokenBarrierError."""
        with self._cond:
            if self._count > 0:
                if self._state in (FILLING, BROKEN):
                    self._state = RESETTING  # cleared by the last waiter to leave
            else:
                self._state = FILLING
            self._cond.notify_all()

    def abort(self: _Barrier) -> None:
        """Break the barrier: current and future ``wait`` calls raise BrokenBarrierError."""
        with self._cond:
            self._break()

    @property
    def parties(self: _Barrier) -> int:
        """The number of parties needed to pass the barrier."""
        return self._parties

    @property
    def n_waiting(self: _Barrier) -> int:
        """The number of parties waiting in the current pass."""
        return self._count if self._state == FILLING else 0

    @property
    def broken(self: _Barrier) -> bool:
        """True if the barrier is broken."""
        return self._state == BROKEN

    def _repr_name(self) -> str:
        raise NotImplementedError

    def __repr__(self: _Barrier) -> str:
        where = f"<{self._repr_name()} at {id(self):#x}"
        if self._state == BROKEN:
            return f"{where}: broken>"
        waiting = self._count if self._state == FILLING else 0
        return f"{where}: waiters={waiting}/{self._parties}>"
