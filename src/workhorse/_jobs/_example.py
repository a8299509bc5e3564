"""The bundled job of ``workhorse example`` (the README's first command): the Collatz
stopping time of each number in ``numbers.jsonl``, a few milliseconds of pure Python each.

Example::

    $ workhorse map workhorse._jobs._example:collatz_steps numbers.jsonl -o steps.jsonl
"""

from __future__ import annotations

from typing import Any

__all__ = ["collatz_steps"]


def collatz_steps(record: dict[str, Any]) -> dict[str, int]:
    """How many Collatz steps take ``record["n"]`` to 1, and the highest value on the way.

    Example::

        >>> collatz_steps({"n": 27})
        {'n': 27, 'steps': 111, 'peak': 9232}
    """
    n = record["n"]
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, not {n!r}")
    steps, peak, value = 0, n, n
    while value != 1:
        value = value // 2 if value % 2 == 0 else 3 * value + 1
        peak = max(peak, value)
        steps += 1
    return {"n": n, "steps": steps, "peak": peak}
