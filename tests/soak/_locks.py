"""Lock and semaphore holders SIGKILLed at a random instant.

The contract (``workhorse/_sync.py``): a lock held by a process that dies stays held, as
with the stdlib; ``acquire(timeout=t)`` returns False within ``t``; an *untimed*
``acquire()`` finds the dead holder after ``DEAD_HOLDER_CHECK`` seconds and raises
``BrokenResourceError`` naming its pid. Its stated limit: a holder killed between taking
the kernel semaphore and writing its pid (or between clearing its pid and posting the
semaphore on release) is not detected -- an untimed ``acquire()`` then waits forever, so
the soak does not call one in that case; it counts it (``window``) and checks the timed
calls only. A semaphore slot held by a dead process is gone for good; timed acquires of
the others return False on time.

One trial: a *victim* loops acquire / write the protected state / release (timed or
untimed acquires; ``Lock`` or ``RLock``, nested), a *contender* loops
``acquire(timeout=...)`` measuring how late each call returns; the victim is killed; the
contender goes on for a moment against the dead holder; then the parent classifies the
lock (free, held by the dead victim, or the window) and, for a dead holder, a *prober*
child makes an untimed ``acquire()``, which must raise ``BrokenResourceError`` naming the
victim in time. A prober is a process, not a thread, so that a call that never returns can
be ended.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import workhorse
from workhorse._sync import DEAD_HOLDER_CHECK

from ._children import (
    Board,
    Child,
    kill_after,
    kill_delay,
    pause,
    pick_method,
    start,
    wait_word,
)
from ._ledger import SLACK, Ledger, timed

KIND = "sync"
MAX_DELAY = 0.02
# board words
STARTED, CYCLES, STATE_A, STATE_B = 0, 1, 2, 3
C_STARTED, C_CALLS, C_LATE, C_WORST, STOP = 4, 5, 6, 7, 8
P_CODE, P_MICROS = 9, 10
WORDS = 11
# prober outcomes
NAMED, UNNAMED, ACQUIRED, OTHER = 1, 2, 3, 4


def _hold(lock: workhorse.Lock | workhorse.RLock, board: Board, seed: int) -> None:
    """Victim: acquire, update the protected state in two steps, release; forever."""
    rng, words = random.Random(seed), board.words
    nested = isinstance(lock, workhorse.RLock)
    words[STARTED] = 1
    while True:
        got = lock.acquire(timeout=0.5) if rng.random() < 0.5 else lock.acquire()
        if not got:
            continue
        if nested and rng.random() < 0.3:
            lock.acquire()
            lock.release()
        words[STATE_A] += 1
        pause(rng.choice((0.0, 0.00005, 0.0003, 0.002)))
        words[STATE_B] += 1
        lock.release()
        words[CYCLES] += 1


def _contend(lock: workhorse.Lock | workhorse.RLock, board: Board, seed: int) -> None:
    """Contender: timed acquires until told to stop, recording how late each returned."""
    _timed_loop(lambda t: lock.acquire(timeout=t), lock.release, board, seed)


def _timed_loop(
    acquire: Callable[[float], bool], release: Callable[[], object], board: Board, seed: int
) -> None:
    rng, words = random.Random(seed), board.words
    words[C_STARTED] = 1
    while not words[STOP]:
        t = rng.uniform(0.001, 0.05)
        started = time.monotonic()
        got = acquire(t)
        late = time.monotonic() - started - t
        words[C_CALLS] += 1
        if late > SLACK:
            words[C_LATE] += 1
            words[C_WORST] = max(words[C_WORST], int(late * 1e6))
        if got:
            release()


def _probe(lock: workhorse.Lock | workhorse.RLock, board: Board, dead: int) -> None:
    """Prober: an untimed acquire on a lock whose holder is dead."""
    started = time.monotonic()
    try:
        lock.acquire()
        board.words[P_CODE] = ACQUIRED
    except workhorse.BrokenResourceError as exc:
        board.words[P_CODE] = NAMED if f"pid {dead}" in str(exc) else UNNAMED
    except Exception:
        board.words[P_CODE] = OTHER
    board.words[P_MICROS] = int((time.monotonic() - started) * 1e6)


def lock_trial(ledger: Ledger, rng: random.Random) -> None:
    """Kill a lock holder at a random instant (see the module docstring)."""
    lock = workhorse.RLock() if rng.random() < 0.3 else workhorse.Lock()
    board = Board.create(WORDS)
    name = type(lock).__name__
    victim = start(_hold, lock, board, rng.randrange(1 << 30), method=pick_method(rng))
    contender = start(_contend, lock, board, rng.randrange(1 << 30))
    _kill_and_stop(ledger, rng, board, victim, contender, name)
    free = timed(
        ledger,
        KIND,
        f"{name}.acquire(timeout=0.1) after the kill",
        0.1,
        lambda: lock.acquire(timeout=0.1),
    )
    stats = ledger.kind(KIND)
    stats.items += int(board.words[C_CALLS]) + 1
    if free:
        lock.release()
        ledger.note(KIND, f"{name}: free after the kill")
        return
    holder = int(lock._holder[0])
    if holder == 0:
        ledger.note(KIND, f"{name}: killed in the undetectable window (documented)")
        return
    if holder != victim.pid:
        ledger.problem("wrong", KIND, f"{name} held by pid {holder}, not the dead {victim.pid}")
        return
    ledger.note(KIND, f"{name}: dead holder")
    prober = start(_probe, lock, board, victim.pid)
    if not prober.end(DEAD_HOLDER_CHECK + 2 * SLACK):
        ledger.problem("hung", KIND, f"untimed {name}.acquire() with a dead holder never returned")
        return
    code, took = int(board.words[P_CODE]), board.words[P_MICROS] / 1e6
    if code != NAMED:
        what = {UNNAMED: "BrokenResourceError not naming the pid", ACQUIRED: "acquired it"}
        ledger.problem(
            "wrong",
            KIND,
            f"untimed {name}.acquire() with a dead holder: {what.get(code, 'another exception')}",
        )
    elif took > DEAD_HOLDER_CHECK + SLACK:
        ledger.problem(
            "hung", KIND, f"untimed {name}.acquire() found the dead holder after {took:.1f} s"
        )


def _kill_and_stop(
    ledger: Ledger, rng: random.Random, board: Board, victim: Child, contender: Child, what: str
) -> None:
    """Kill the victim at a random instant; let the contender go on against the dead
    holder for a moment, stop it, and check its timed calls were on time."""
    words = board.words
    started = wait_word(board, C_STARTED)
    kill_after(victim, board, kill_delay(rng, MAX_DELAY))
    ledger.kind(KIND).kills += 1
    pause(rng.uniform(0.0, 0.05))  # slack: contended calls against the dead holder
    words[STOP] = 1
    if not started or not contender.end(0.05 + 2 * SLACK):
        ledger.problem("hung", KIND, f"{what}: the contender's timed acquire never returned")
    elif words[C_LATE]:
        ledger.problem(
            "hung",
            KIND,
            f"{what}: {words[C_LATE]} timed acquires returned late "
            f"(worst by {words[C_WORST] / 1e6:.2f} s)",
        )


# -- semaphores ---------------------------------------------------------------------------

HELD = CYCLES  # the victim's record of the slots it holds


def _sem_hold(sem: workhorse.Semaphore, board: Board, seed: int, most: int) -> None:
    """Victim: take one or ``most`` slots, hold them a moment, give them back; forever.
    ``words[HELD]`` is raised after each acquire returns and lowered before each release,
    so the slots it held at death are ``words[HELD]`` or one more."""
    rng, words = random.Random(seed), board.words
    words[STARTED] = 1
    while True:
        taken = 0
        for _ in range(rng.randint(1, most)):
            if sem.acquire(timeout=0.2):
                taken += 1
                words[HELD] += 1
        pause(rng.choice((0.0, 0.0001, 0.001)))
        for _ in range(taken):
            words[HELD] -= 1
            sem.release()


def _sem_contend(sem: workhorse.Semaphore, board: Board, seed: int) -> None:
    _timed_loop(lambda t: sem.acquire(timeout=t), sem.release, board, seed)


def semaphore_trial(ledger: Ledger, rng: random.Random) -> None:
    """Kill a process holding semaphore slots; the others' timed acquires stay on time and
    exactly the slots it held are gone."""
    slots = rng.randint(1, 3)
    bounded = rng.random() < 0.3
    sem = workhorse.BoundedSemaphore(slots) if bounded else workhorse.Semaphore(slots)
    name = f"{type(sem).__name__}({slots})"
    board = Board.create(WORDS)
    most = min(2, slots)
    victim = start(_sem_hold, sem, board, rng.randrange(1 << 30), most, method=pick_method(rng))
    contender = start(_sem_contend, sem, board, rng.randrange(1 << 30))
    _kill_and_stop(ledger, rng, board, victim, contender, name)
    got = 0
    while got <= slots:
        if not timed(
            ledger, KIND, f"{name}.acquire(timeout=0.05)", 0.05, lambda: sem.acquire(timeout=0.05)
        ):
            break
        got += 1
    ledger.kind(KIND).items += int(board.words[C_CALLS]) + got + 1
    held, lost = int(board.words[HELD]), slots - got
    if sem.get_value() != 0:
        ledger.problem("wrong", KIND, f"{name}: value {sem.get_value()} after taking all")
    if not held <= lost <= held + 1 or lost > most:
        ledger.problem("wrong", KIND, f"{name}: {lost} slots gone, the dead held {held}")
    ledger.note(KIND, "semaphore slots lost with their holder", lost)
    for _ in range(got):
        sem.release()
