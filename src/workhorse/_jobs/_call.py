"""What a ``workhorse map`` worker runs for one record: the user's function, timed, with its
outcome made into JSON there (so that an odd result type fails its own item, in the worker,
with a clear message, and the runner never unpickles user objects).

Example::

    ok, text, worker, seconds = Call(len)([1, 2, 3])    # (True, '3', 'pid 12', 1e-06)
"""

from __future__ import annotations

import json
import time
import traceback
from typing import Any

from .._worker_info import worker

__all__ = ["Call", "Outcome", "error_fields"]


#: One try of one record: ``(ok, text, worker, seconds)``, ``text`` the result as JSON or
#: the error's JSON object (a plain tuple: the cheapest thing to pickle back, per record).
Outcome = tuple[bool, str, str, float]


def error_fields(error: BaseException, text: str | None = None) -> str:
    """An error as the output's ``error`` object: its type, message and traceback."""
    trace = text if text is not None else "".join(traceback.format_exception(error))
    fields = {"type": type(error).__name__, "message": str(error), "traceback": trace}
    return json.dumps(fields)


class Call:
    """Calls ``fn`` with one record's value (see the module docstring)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        # Messages about a task (WorkerCrashed, TaskTimeout) name the user's function.
        self.__qualname__ = getattr(fn, "__qualname__", repr(fn))

    def __call__(self, value: Any) -> Outcome:
        info = worker()
        where = info.name if info is not None else "caller"
        began = time.perf_counter()
        try:
            result = self.fn(value)
        except Exception as error:  # the item's outcome (a BaseException ends the worker)
            return (False, error_fields(error), where, time.perf_counter() - began)
        seconds = time.perf_counter() - began
        try:
            return (True, json.dumps(result), where, seconds)
        except (TypeError, ValueError) as error:
            problem = TypeError(
                f"the result of {getattr(self.fn, '__qualname__', self.fn)} is not JSON: {error}"
            )
            return (False, error_fields(problem), where, seconds)
