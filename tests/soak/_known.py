"""Problems the soak finds that are known bugs of ``src/workhorse`` (reported, not fixed).

Each entry: an id, the substrings a problem's text must all contain, and what is wrong. The
command line prints the id next to each matching problem and still fails; the CI test
(``tests/faults/test_soak_unified.py``) turns a run whose problems are *all* known into an
``xfail`` naming them -- any other problem fails it -- unless ``WORKHORSE_SOAK_STRICT=1``.
Delete an entry once its bug is fixed: the soak then fails if it comes back.
"""

from __future__ import annotations

# Empty: the four bugs the soak found first (a pipe recv timeout mid-message, Event's
# internal lock, Condition's exit on a dead holder's lock, Barrier's dead parties) are fixed.
KNOWN: dict[str, tuple[tuple[str, ...], str]] = {}


def known(problem: str) -> str | None:
    """The id of the known bug a problem's text matches, or None."""
    for name, (needles, _) in KNOWN.items():
        if all(needle in problem for needle in needles):
            return name
    return None
