"""A table of (pid, count) pairs in shared memory: who is inside a primitive, to find the dead.

``Condition`` counts its sleepers per process and ``Barrier`` its parties, so that a waiter
that finds no progress can tell whether the process it waits for has died (a killed
process runs no ``finally``). Read and written under the primitive's own lock only.
"""

from __future__ import annotations

from ._sharing import pid_alive

__all__ = ["PidTable"]


class PidTable:
    """Up to ``capacity`` (pid, count) pairs in ``array[at + 1:]``; ``array[at]`` marks the end.

    The end is one past the last pair ever used, so the usual scan (one or a few processes)
    stops after a pair or two. A pair whose count is 0 is free.

    Example::

        table = PidTable(segment.buf.cast("q"), 0, capacity=8)
        table.add(os.getpid(), 1)
        ...
        table.add(os.getpid(), -1)
    """

    __slots__ = ("_a", "_at", "_first", "_stop")

    def __init__(self, array: memoryview, at: int, capacity: int) -> None:
        self._a, self._at, self._first = array, at, at + 1
        self._stop = at + 1 + 2 * capacity

    @staticmethod
    def words(capacity: int) -> int:
        """How many 8-byte words a table of ``capacity`` pairs takes."""
        return 1 + 2 * capacity

    def add(self, pid: int, delta: int) -> bool:
        """Add ``delta`` to ``pid``'s count; False if that pid has no pair and none is free."""
        a = self._a
        end = int(a[self._at]) or self._first
        free = 0
        for i in range(self._first, end, 2):
            if a[i] == pid and a[i + 1] > 0:
                a[i + 1] += delta
                return True
            if not free and a[i + 1] <= 0:
                free = i
        if delta <= 0:
            return False
        if not free and end < self._stop:
            free, a[self._at] = end, end + 2
        if not free:
            return False
        # pid first: a process killed between the two writes leaves a free pair, not a stale one
        a[free] = pid
        a[free + 1] = delta
        return True

    def total(self) -> int:
        """The sum of the counts."""
        a = self._a
        end = int(a[self._at]) or self._first
        return sum(max(0, int(a[i + 1])) for i in range(self._first, end, 2))

    def retire_dead(self, me: int) -> int:
        """Free the pairs of dead processes (never ``me``'s); return the sum of their counts."""
        a = self._a
        dead = 0
        for i in range(self._first, int(a[self._at]) or self._first, 2):
            if a[i + 1] > 0 and a[i] != me and not pid_alive(int(a[i])):
                dead += int(a[i + 1])
                a[i + 1] = 0
        return dead
