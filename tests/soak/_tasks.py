"""Pool tasks of the soak, and what each must return (a module of its own, importable by
spawn and forkserver workers, which get the functions by reference).

Item ``x`` decides what the task does, so the checker knows the one right outcome:

* ``x % 11 == 3``: raises ``ValueError("bad item <x>")`` (``work`` only);
* ``x % 53 == 7``: returns a NumPy array of 1-4 MiB filled with ``x`` (the zero-copy
  shared-memory path: a kill may land while the worker writes it);
* ``x % 7 == 0``: sleeps 0-2 ms first (kills land mid-task, not only between items);
* otherwise returns ``(x, x * x)`` at once (fast items travel in large batches: kills land
  mid-batch).

Results carry ``x``, so a result delivered for the wrong item, or twice, is seen.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

BIG = 1 << 18  # float32 elements per MiB


def is_raising(x: int) -> bool:
    return x % 11 == 3


def _value(x: int) -> tuple[int, Any]:
    if x % 53 == 7:
        return x, np.full((1 + x % 4) * BIG, x, dtype=np.float32)
    if x % 7 == 0:
        time.sleep((x % 5) * 0.0005)
    return x, x * x


def work(x: int) -> tuple[int, Any]:
    """The mixed task (see the module docstring)."""
    if is_raising(x):
        raise ValueError(f"bad item {x}")
    return _value(x)


def quiet(x: int) -> tuple[int, Any]:
    """``work`` without the raising items (for maps, which stop at the first error)."""
    return _value(x)


def echo_half(x: int, array: np.ndarray[Any, Any]) -> tuple[int, Any]:
    """Return the first half of a large argument: the reply refers back to the argument's
    segment instead of copying it (``_zerocopy``'s ``reply_to``)."""
    return x, array[: len(array) // 2]


def echo_argument(x: int) -> np.ndarray[Any, Any]:
    return np.full(BIG + x, x, dtype=np.int32)


def sleeper(x: int) -> tuple[int, Any]:
    """Longer than any pool timeout of the soak: must end with ``TaskTimeout``."""
    time.sleep(30)
    return x, None


def right(x: int, value: Any, echoed: bool = False) -> bool:
    """Whether ``value`` is what item ``x`` returns."""
    if not isinstance(value, tuple) or len(value) != 2 or value[0] != x:
        return False
    got = value[1]
    if echoed:
        size = (BIG + x) // 2
        return isinstance(got, np.ndarray) and got.shape == (size,) and bool((got == x).all())
    if x % 53 == 7:
        shape = ((1 + x % 4) * BIG,)
        return (
            isinstance(got, np.ndarray)
            and got.dtype == np.float32
            and got.shape == shape
            and bool((got == x).all())
        )
    return bool(got == x * x)
