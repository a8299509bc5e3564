"""Process-flavour ``Barrier``: threading's algorithm in shared memory, and no dead parties.

The algorithm is :class:`threading.Barrier`'s (3.11 to 3.13 share it): a state (filling,
draining, resetting, broken) and a count of the parties inside ``wait``, under a condition.
Here both live in shared memory, as with ``multiprocessing.synchronize.Barrier``, with two
changes for processes that die, which threads cannot:

* the parties inside ``wait`` are counted per process (:class:`~._pid_table.PidTable`), and a
  party that waits :data:`~._sync.DEAD_HOLDER_CHECK` seconds in vain looks for dead ones. A
  dead party of the pass being filled means it can never fill: the barrier breaks
  (``BrokenBarrierError`` for everyone, as on a timeout) instead of hanging the others. A
  dead party of a pass being drained is counted out, so the next pass can start;
* the condition's lock is a :class:`~._robust_lock.RobustLock`: a process killed while it
  holds it (inside ``wait``, ``reset`` or ``abort``) may have left the state half-updated,
  so the next process to take the lock breaks the barrier.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from ._barrier_cycle import DRAINING, FILLING, RESETTING, BarrierCycle
from ._condition import Condition
from ._pid_table import PidTable
from ._primitive import SegmentBacked
from ._robust_lock import RobustLock
from ._shm import Segment
from ._sync import DEAD_HOLDER_CHECK, check_slice
from ._timeouts import Deadline

__all__ = ["Barrier"]

_MAX_TRACKED = 1024  # processes counted by pid; more are counted but not checked for death


class Barrier(BarrierCycle, SegmentBacked, threading.Barrier):
    """A barrier for a fixed number of parties, which may be threads of any processes.

    Args:
        parties: how many ``wait`` calls release the barrier (at least 1).
        action: called by one of the parties once per pass, just before they are released;
            pickled like a task (a lambda or closure works too).
        timeout: default timeout of :meth:`wait`.

    Example::

        barrier = Barrier(3, action=lambda: print("all here"))
        for _ in range(2):
            Process(target=lambda: barrier.wait()).start()
        index = barrier.wait(timeout=10)   # 0, 1 or 2

    Differences from the stdlib: shared across processes, picklable at any time; the action
    travels with the barrier, pickled each time the barrier is (a lambda or closure too,
    through workhorse's processes, queues and pools, which fall back on cloudpickle); its
    result is ignored.
    ``wait`` raises :class:`threading.BrokenBarrierError` exactly as :mod:`threading`, and
    also when a party's process dies inside ``wait`` (the stdlib's would hang the others).
    ``Barrier(0)`` raises ``ValueError`` on every Python version (3.13's behaviour).
    """

    def __init__(
        self, parties: int, action: Callable[[], object] | None = None, timeout: float | None = None
    ) -> None:
        if parties < 1:
            raise ValueError("parties must be > 0")
        tracked = min(parties, _MAX_TRACKED)
        seg = Segment.create(8 * (2 + PidTable.words(tracked)))
        self._setup(parties, action, timeout, Condition(RobustLock()), seg)
        self._register()

    def _setup(
        self,
        parties: int,
        action: Callable[[], object] | None,
        timeout: float | None,
        cond: Condition,
        seg: Segment,
    ) -> None:
        self._parties, self._timeout, self._cond, self._seg = parties, timeout, cond, seg
        # The object itself, pickled afresh with each copy of the barrier (as the stdlib's
        # is at each process start): some objects pickle to a one-time ticket, such as a
        # shared ctypes object's arena handed over by multiprocessing's resource sharer.
        self._action = action
        # [0]: state; [1]: parties inside wait() that the table could not hold; the table.
        self._array = seg.buf.cast("q")
        self._inside = PidTable(self._array, 2, min(parties, _MAX_TRACKED))
        lock = cond._lock
        assert isinstance(lock, RobustLock)
        lock.on_owner_dead = self._owner_died

    def _setup_args(self) -> tuple[Any, ...]:
        # The action goes into the same pickle as the rest (one memo: an object it shares
        # with the other arguments travels once, as with the stdlib).
        return (self._parties, self._action, self._timeout, self._cond)

    # BarrierCycle (parties, n_waiting, broken, reset...) reads and writes these two.
    @property
    def _state(self) -> int:
        return int(self._array[0])

    @_state.setter
    def _state(self, value: int) -> None:
        self._array[0] = value

    @property
    def _count(self) -> int:
        return self._inside.total() + int(self._array[1])

    def _arrive(self, delta: int) -> None:
        if not self._inside.add(os.getpid(), delta):
            self._array[1] += delta

    def wait(self, timeout: float | None = None) -> int:
        """Wait until ``parties`` calls have reached the barrier; return this call's index.

        Args:
            timeout: seconds to wait at most (default: the barrier's ``timeout``); expiry
                breaks the barrier.

        Returns:
            An index from 0 to ``parties - 1``, different for each party of a pass.

        Raises:
            threading.BrokenBarrierError: the barrier is or becomes broken (abort, reset,
                timeout, a failing action, a party's process dying inside ``wait``).
            Cancelled: the calling thread's cancel scope was cancelled while waiting.
        """
        if timeout is None:
            timeout = self._timeout
        deadline = Deadline(timeout)
        with self._cond:
            self._enter()
            return self._take_part(deadline)

    def _enter(self) -> None:
        # Block while the previous pass drains or a reset completes (no timeout, as
        # threading's); a dead party of that pass is counted out meanwhile.
        while self._state in (DRAINING, RESETTING):
            if not self._cond.wait(DEAD_HOLDER_CHECK):
                self._retire_dead()
        if self._state < 0:
            raise threading.BrokenBarrierError

    def _wait(self, deadline: Deadline) -> None:
        while self._state == FILLING:
            step = check_slice(deadline)
            if step <= 0:
                self._break()
                raise threading.BrokenBarrierError
            if not self._cond.wait(step):
                self._retire_dead()
        if self._state < 0:
            raise threading.BrokenBarrierError

    def _retire_dead(self) -> None:
        if not self._inside.retire_dead(os.getpid()):
            return
        if self._state == FILLING:
            self._break()  # the pass a dead party belonged to can never fill
        else:
            self._exit()  # it will never leave the pass being drained or reset

    def _owner_died(self) -> None:
        # Called holding the lock its dead owner left: the state may be half-updated.
        self._inside.retire_dead(os.getpid())
        self._break()

    def _repr_name(self) -> str:
        return "workhorse.processes.Barrier"
