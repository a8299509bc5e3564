"""Problems the soak finds that are known bugs of ``src/workhorse`` (reported, not fixed).

Each entry: an id, the substrings a problem's text must all contain, and what is wrong. The
command line prints the id next to each matching problem and still fails; the CI test
(``tests/faults/test_soak_unified.py``) turns a run whose problems are *all* known into an
``xfail`` naming them -- any other problem fails it -- unless ``WORKHORSE_SOAK_STRICT=1``.
Delete an entry once its bug is fixed: the soak then fails if it comes back.
"""

from __future__ import annotations

KNOWN: dict[str, tuple[tuple[str, ...], str]] = {
    "pipe-recv-timeout-mid-message": (
        ("blocked past its timeout", "middle of a message"),
        "Connection.recv(timeout=...)/recv_bytes(timeout=...) wait without a timeout once a "
        "message has started (_pipe.Connection._read_exact): a sender killed mid-message "
        "while another copy of the write end is open hangs the receiver forever",
    ),
    "event-internal-lock": (
        ("Event.wait(timeout<=0.02)", "internal lock: "),
        "Event.wait(timeout) takes the event's internal lock without a timeout: if a "
        "process died inside set()/clear()/wait() holding it, wait(0.01) raises "
        "BrokenResourceError after DEAD_HOLDER_CHECK (1 s) instead of returning on time, "
        "or blocks forever if it died in the lock's undetectable window",
    ),
    "condition-exit-releases-dead-lock": (
        ("Condition waiter", "dead holder lock"),
        "when Condition.wait's re-acquire raises BrokenResourceError, the caller's "
        "`with cond:` exit releases the lock it does not hold: a Lock is silently handed to "
        "the next process (the dead holder's half-updated state with it), an RLock raises "
        "NotHeldError in place of the BrokenResourceError",
    ),
    "barrier-dead-party": (
        ("Barrier.wait(timeout=1)",),
        "a party killed while the barrier drains (released, not yet out of wait()) blocks "
        "every later wait(timeout) forever (threading.Barrier._enter waits on the condition "
        "without a timeout); a party killed holding the barrier's internal lock makes the "
        "others raise BrokenResourceError (or NotHeldError, as above), not "
        "BrokenBarrierError",
    ),
}


def known(problem: str) -> str | None:
    """The id of the known bug a problem's text matches, or None."""
    for name, (needles, _) in KNOWN.items():
        if all(needle in problem for needle in needles):
            return name
    return None
