"""Children to kill: started by ``fork`` (fast: most trials) or as a workhorse ``Process``
under spawn or forkserver (a share: primitives and pipe ends then travel pickled), a shared
board of 64-bit words to report through, and a kill at a random instant.

Why a board: a killed child cannot say anything after the fact, so it records its progress
*as it goes* -- one aligned 8-byte store per record, which a SIGKILL cannot tear -- and the
parent reads the board once the child is dead. The board is a workhorse ``Segment`` (a
named mapping), so spawned children attach to it by name and the leak checks see it.

Why ``pidfd``: waiting for a child's exit with a bound, without polling and without a
thread, is ``poll()`` on its pidfd.
"""

from __future__ import annotations

import math
import os
import random
import select
import signal
import time
from collections.abc import Callable
from typing import Any

import workhorse
from workhorse._shm import Segment

#: Longest a child may take to start (a spawned child imports everything again).
START_BOUND = 30.0


class Board:
    """``words`` signed 64-bit integers in shared memory, all zero at first."""

    def __init__(self, segment: Segment) -> None:
        self.segment = segment
        self.words = segment.buf.cast("q")

    @classmethod
    def create(cls, words: int) -> Board:
        return cls(Segment.create(8 * words))

    def __reduce__(self) -> tuple[Any, ...]:  # a spawned child attaches by name
        return (_attach, (self.segment.name,))


def _attach(name: str) -> Board:
    return Board(Segment.attach(name))


def kill_delay(rng: random.Random, longest: float, shortest: float = 2e-6) -> float:
    """A delay from microseconds to ``longest`` seconds, uniform on a log scale (so that
    every order of magnitude -- mid-instruction, mid-call, mid-message -- gets its share),
    and exactly 0 one time in twenty (a kill as the child starts working)."""
    if rng.random() < 0.05:
        return 0.0
    return math.exp(rng.uniform(math.log(shortest), math.log(longest)))


def pause(seconds: float) -> None:
    """Wait ``seconds``: sleep for the bulk, spin for the rest (sleep is too coarse for
    microseconds)."""
    end = time.perf_counter() + seconds
    if seconds > 0.002:
        time.sleep(seconds - 0.001)
    while time.perf_counter() < end:
        pass


class Child:
    """A started child: ``pid``, ``kill()``, ``wait(timeout)`` (reaps it)."""

    def __init__(self, pid: int, process: workhorse.Process | None) -> None:
        self.pid, self.process = pid, process
        self.exitcode: int | None = None
        self._pidfd: int | None = os.pidfd_open(pid) if process is None else None

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) for the child to exit; True once reaped."""
        if self.exitcode is not None:
            return True
        if self.process is not None:
            self.process.join(timeout)
            if self.process.exitcode is None:
                return False
            self.exitcode = self.process.exitcode
            self.process.close()
            return True
        assert self._pidfd is not None
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        if not poller.poll(max(0.0, timeout) * 1000):
            return False
        _, status = os.waitpid(self.pid, 0)
        self.exitcode = os.waitstatus_to_exitcode(status)
        os.close(self._pidfd)
        self._pidfd = None
        return True

    def end(self, timeout: float = 10.0) -> bool:
        """Make sure the child is gone: wait ``timeout``, then kill and reap it.

        Returns True if it had exited by itself within ``timeout``."""
        if self.wait(timeout):
            return True
        self.kill()
        if not self.wait(START_BOUND):
            raise RuntimeError(f"pid {self.pid} survived SIGKILL for {START_BOUND} s")
        return False


def _run_forked(target: Callable[..., object], args: tuple[Any, ...]) -> None:
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        target(*args)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def start(target: Callable[..., object], *args: Any, method: str = "fork") -> Child:
    """Run ``target(*args)`` in a new child process started with ``method``."""
    if method == "fork":
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller
            _run_forked(target, args)
        return Child(pid, None)
    process = workhorse.processes.get_context(method).Process(target=target, args=args, daemon=True)
    process.start()
    assert process.pid is not None
    return Child(process.pid, process)


def wait_word(board: Board, index: int, bound: float = START_BOUND) -> bool:
    """Spin until ``board.words[index]`` is non-zero (a child says it started); False after
    ``bound`` seconds. Spinning, not sleeping: the kill that follows is timed in
    microseconds from that instant."""
    deadline = time.monotonic() + bound
    words = board.words
    while not words[index]:
        if time.monotonic() > deadline:
            return False
        os.sched_yield()
    return True


def kill_after(child: Child, board: Board, delay: float, started: int = 0) -> bool:
    """Once the child flags ``board.words[started]``, wait ``delay`` seconds and SIGKILL it;
    reap it. Returns False if it never started (it is killed all the same)."""
    ok = wait_word(board, started)
    if ok:
        pause(delay)
    child.kill()
    child.end(START_BOUND)
    return ok


def pick_method(rng: random.Random, other: float = 0.1) -> str:
    """``fork`` mostly; ``other`` of the time forkserver or spawn."""
    if rng.random() >= other:
        return "fork"
    return rng.choice(("forkserver", "spawn"))
