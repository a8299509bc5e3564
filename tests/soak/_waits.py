"""Processes killed inside ``Condition``, ``Event`` and ``Barrier`` calls.

What must hold (``workhorse/_condition.py``, README "Guarantees"):

* **Condition** -- a waiter killed while it waits (the lock released) does not stop the
  others being notified: ``notify_all`` retires the dead sleeper after
  ``DEAD_HOLDER_CHECK`` and every live waiter wakes. A waiter killed while it holds the
  lock (entering or leaving ``wait``, or notifying) leaves a lock with a dead holder: the
  others' ``wait(timeout)`` end, when they take the lock back, with ``BrokenResourceError``
  naming it (the ``Lock`` contract); in the lock's undetectable window (see ``_locks.py``)
  they cannot -- counted, as there.
* **Event** -- ``wait(timeout)`` returns a bool within its timeout, whatever died where;
  ``set`` then wakes every live waiter.
* **Barrier** -- when a party dies, the others' ``wait(timeout)`` raise
  ``BrokenBarrierError`` (after the timeout, plus ``DEAD_HOLDER_CHECK`` for the dead
  sleeper), as ``threading`` does.

Live parties are children too: when a call does hang, the child is killed after its bound
and the call is reported, and the soak goes on.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import workhorse
from workhorse._errors import NotHeldError
from workhorse._robust_lock import RobustLock
from workhorse._sync import DEAD_HOLDER_CHECK

from ._children import Board, Child, kill_after, kill_delay, pause, pick_method, start, wait_word
from ._ledger import SLACK, Ledger, timed

KIND = "sync"
MAX_DELAY = 0.02
WAIT = 1.0  # seconds: the live parties' timeouts (long enough not to expire under load)
# outcome codes written by the live parties
WOKEN, TIMED_OUT, BROKEN_RESOURCE, BROKEN_BARRIER, NOT_HELD, OTHER = 1, 2, 3, 4, 5, 6
NAMES = {
    NOT_HELD: "NotHeldError",
    WOKEN: "woken",
    TIMED_OUT: "timed out",
    BROKEN_RESOURCE: "BrokenResourceError",
    BROKEN_BARRIER: "BrokenBarrierError",
    OTHER: "another exception",
}
# board words: 0 victim started, 1 GO flag, 2 the parent's notify/kill time (ns); then per
# live party: started, outcome code, end time (ns), late calls
PARTY, PARTY_WORDS = 3, 4


def _code(exc: BaseException) -> int:
    if isinstance(exc, workhorse.BrokenResourceError):
        return BROKEN_RESOURCE
    if isinstance(exc, threading.BrokenBarrierError):
        return BROKEN_BARRIER
    if isinstance(exc, NotHeldError):
        return NOT_HELD
    return OTHER


def _finish(board: Board, slot: int, code: int) -> None:
    words, base = board.words, PARTY + PARTY_WORDS * slot
    words[base + 2] = time.monotonic_ns()
    words[base + 1] = code


def _parties(board: Board, count: int) -> list[tuple[int, int, int]]:
    words = board.words
    return [
        (int(words[b + 1]), int(words[b + 2]), int(words[b + 3]))
        for b in (PARTY + PARTY_WORDS * i for i in range(count))
    ]


def _end_all(ledger: Ledger, parties: list[Child], bound: float, what: Callable[[], str]) -> bool:
    """Wait for the live parties (``bound`` seconds in all); kill and report laggards
    (``what()`` says what hung: it is called once they are dead, to describe the state)."""
    deadline = time.monotonic() + bound
    ok = True
    for child in parties:
        if not child.end(max(0.0, deadline - time.monotonic())):
            ok = False
    if not ok:
        ledger.problem("hung", KIND, what())
    return ok


# -- Condition ----------------------------------------------------------------------------


def _cond_victim(cond: workhorse.Condition, board: Board, seed: int) -> None:
    rng = random.Random(seed)
    board.words[0] = 1
    while True:
        with cond:
            r = rng.random()
            if r < 0.6:
                cond.wait(timeout=rng.uniform(0, 0.002))
            elif r < 0.8:
                cond.notify()
            else:
                cond.notify_all()


def _cond_waiter(cond: workhorse.Condition, board: Board, slot: int) -> None:
    words = board.words
    try:
        with cond:
            words[PARTY + PARTY_WORDS * slot] = 1
            woken = cond.wait_for(lambda: words[1] != 0, timeout=WAIT)
        _finish(board, slot, WOKEN if woken else TIMED_OUT)
    except Exception as exc:
        _finish(board, slot, _code(exc))


def condition_trial(ledger: Ledger, rng: random.Random) -> None:
    """Kill a process looping in ``Condition`` calls while two others wait on it."""
    lock = rng.choice((workhorse.Lock, workhorse.RLock))()
    cond = workhorse.Condition(lock)
    board = Board.create(PARTY + 2 * PARTY_WORDS)
    victim = start(_cond_victim, cond, board, rng.randrange(1 << 30), method=pick_method(rng))
    waiters = [start(_cond_waiter, cond, board, i) for i in range(2)]
    if not all(wait_word(board, PARTY + PARTY_WORDS * i) for i in range(2)):
        ledger.problem("hung", KIND, "Condition waiters could not take the lock to start")
    kill_after(victim, board, kill_delay(rng, MAX_DELAY))
    ledger.kind(KIND).kills += 1
    free = timed(
        ledger, KIND, "Condition.acquire(timeout=0.2)", 0.2, lambda: cond.acquire(timeout=0.2)
    )
    if free:
        board.words[1] = 1
        board.words[2] = time.monotonic_ns()
        timed(
            ledger,
            KIND,
            "Condition.notify_all() with a dead sleeper",
            DEAD_HOLDER_CHECK,
            cond.notify_all,
        )
        cond.release()
    state = "free" if free else _lock_state(lock, victim.pid)
    bound = WAIT + 2 * DEAD_HOLDER_CHECK + 2 * SLACK
    if state == "window":  # the waiters cannot take the lock back: documented
        for child in waiters:
            child.end(0.0)
        ledger.note(KIND, "Condition: lock killed in the undetectable window (documented)")
        return
    if not _end_all(
        ledger, waiters, bound, lambda: f"Condition waiters ({state} lock) never returned"
    ):
        return
    ledger.kind(KIND).items += 3
    ledger.note(KIND, f"Condition: {state} lock after the kill")
    notified = board.words[2]
    for code, end, _ in _parties(board, 2):
        if state == "free" and code == WOKEN:
            if (end - notified) / 1e9 > DEAD_HOLDER_CHECK + SLACK:
                ledger.problem(
                    "hung",
                    KIND,
                    f"a Condition waiter woke {(end - notified) / 1e9:.1f} s after notify_all()",
                )
        elif state == "free" and code == TIMED_OUT and end < notified:
            ledger.note(KIND, "Condition: waiter timed out before the notify (load)")
        elif state == "dead holder" and code == BROKEN_RESOURCE:
            pass
        else:
            ledger.problem(
                "wrong", KIND, f"Condition waiter {NAMES.get(code, code)} with a {state} lock"
            )


def _lock_state(lock: workhorse.Lock | workhorse.RLock | RobustLock, victim: int) -> str:
    """Who holds ``lock`` now: nobody, the dead victim, or nobody known (the window: a
    semaphore-based lock taken, its holder not yet written; a robust lock has none)."""
    if isinstance(lock, RobustLock):
        holder = int(lock._holder[0])
        return "free" if holder == 0 else "dead holder" if holder == victim else f"pid {holder}"
    if lock._sem.value():
        return "free"
    holder = int(lock._holder[0])
    return "dead holder" if holder == victim else "window" if holder == 0 else f"pid {holder}"


def _barrier_state(barrier: workhorse.Barrier, victim: int) -> str:
    phase = {0: "filling", 1: "draining", -1: "resetting", -2: "broken"}
    state = phase.get(barrier._state, barrier._state)
    lock = _lock_state(barrier._cond._lock, victim)
    return f"barrier {state}, {barrier._count} inside; internal lock {lock}"


# -- Event --------------------------------------------------------------------------------


def _event_victim(event: workhorse.Event, board: Board, seed: int) -> None:
    rng = random.Random(seed)
    board.words[0] = 1
    while True:
        r = rng.random()
        if r < 0.3:
            event.set()
        elif r < 0.6:
            event.clear()
        elif r < 0.9:
            event.wait(timeout=rng.uniform(0, 0.001))
        else:
            event.is_set()


def _event_waiter(event: workhorse.Event, board: Board, slot: int, seed: int) -> None:
    """Timed waits until the GO word; count the late ones; stop at the first exception."""
    rng, words, base = random.Random(seed), board.words, PARTY + PARTY_WORDS * slot
    words[base] = 1
    while not words[1]:
        t = rng.uniform(0.001, 0.02)
        started = time.monotonic()
        try:
            event.wait(timeout=t)
        except Exception as exc:
            _finish(board, slot, _code(exc))
            return
        finally:
            if time.monotonic() - started > t + SLACK:
                words[base + 3] += 1
    _finish(board, slot, WOKEN)


def event_trial(ledger: Ledger, rng: random.Random) -> None:
    """Kill a process looping in ``Event`` calls while another waits with timeouts."""
    event = workhorse.Event()
    board = Board.create(PARTY + PARTY_WORDS)
    victim = start(_event_victim, event, board, rng.randrange(1 << 30), method=pick_method(rng))
    waiter = start(_event_waiter, event, board, 0, rng.randrange(1 << 30))
    wait_word(board, PARTY)
    kill_after(victim, board, kill_delay(rng, MAX_DELAY))
    ledger.kind(KIND).kills += 1
    pause(rng.uniform(0.0, 0.05))  # slack: timed waits against whatever the victim left
    board.words[1] = 1
    internal = event._cond._lock
    free = internal.acquire(timeout=0.1)
    state = "free" if free else _lock_state(internal, victim.pid)
    if free:
        internal.release()
    ledger.note(KIND, f"Event: internal lock {state} after the kill")
    if not _end_all(
        ledger,
        [waiter],
        0.02 + 2 * SLACK,
        lambda: f"Event.wait(timeout<=0.02) never returned (internal lock: {state})",
    ):
        return
    code, _, late = _parties(board, 1)[0]
    ledger.kind(KIND).items += 1
    if late:
        ledger.problem(
            "hung",
            KIND,
            f"Event.wait(timeout<=0.02) returned late {late} times (internal lock: {state})",
        )
    if code != WOKEN:
        ledger.problem(
            "wrong",
            KIND,
            f"Event.wait(timeout<=0.02) raised {NAMES[code]} (internal lock: {state})",
        )
    if free:
        _check_event_works(ledger, event, board)


def _check_event_works(ledger: Ledger, event: workhorse.Event, board: Board) -> None:
    """With its lock free, the event still works: timed wait, then set wakes a waiter."""
    event.clear()
    if timed(ledger, KIND, "Event.wait(0.05)", 0.05, lambda: event.wait(0.05)):
        ledger.problem("wrong", KIND, "Event.wait(0.05) returned True on a cleared event")
    board.words[1] = 0
    board.words[PARTY] = 0
    waiter = start(_event_waiter, event, board, 0, 1)
    wait_word(board, PARTY)
    event.set()
    board.words[1] = 1
    if not _end_all(ledger, [waiter], WAIT + SLACK, lambda: "Event waiter after set()"):
        return
    if not event.wait(0):
        ledger.problem("wrong", KIND, "Event.wait(0) returned False after set()")


# -- Barrier ------------------------------------------------------------------------------


def _party(barrier: workhorse.Barrier, board: Board, slot: int, victim: bool) -> None:
    if victim:
        board.words[0] = 1
    else:
        board.words[PARTY + PARTY_WORDS * slot] = 1
    while True:
        try:
            barrier.wait(timeout=WAIT)
        except Exception as exc:
            if not victim:
                _finish(board, slot, _code(exc))
            return


def barrier_trial(ledger: Ledger, rng: random.Random) -> None:
    """Kill one of three parties looping on ``Barrier.wait(timeout)``."""
    barrier = workhorse.Barrier(3)
    board = Board.create(PARTY + 2 * PARTY_WORDS)
    parties = [start(_party, barrier, board, i, False) for i in range(2)]
    victim = start(_party, barrier, board, 2, True, method=pick_method(rng))
    kill_after(victim, board, kill_delay(rng, MAX_DELAY))
    killed = time.monotonic_ns()
    ledger.kind(KIND).kills += 1
    bound = WAIT + DEAD_HOLDER_CHECK + SLACK
    if not _end_all(
        ledger,
        parties,
        bound + SLACK,
        lambda: f"Barrier.wait(timeout=1) never returned ({_barrier_state(barrier, victim.pid)})",
    ):
        return
    ledger.kind(KIND).items += 2
    for code, end, _ in _parties(board, 2):
        if code != BROKEN_BARRIER:
            ledger.problem(
                "wrong",
                KIND,
                f"Barrier.wait(timeout=1) raised {NAMES[code]}, not "
                f"BrokenBarrierError, once a party died ({_barrier_state(barrier, victim.pid)})",
            )
        elif (end - killed) / 1e9 > bound:
            ledger.problem(
                "hung",
                KIND,
                f"Barrier.wait(timeout=1) broke {(end - killed) / 1e9:.1f} s after a party died",
            )
    ledger.note(KIND, "Barrier broken by a dead party")
