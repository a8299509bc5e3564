"""Turning objects into bytes and back, for every process boundary workhorse crosses.

The fast path is the C pickler. Objects it refuses -- lambdas, closures, functions defined
in ``__main__`` of an interactive session or inside another function -- go through
cloudpickle, which pickles them by value. Callables meant to run in another process use
``by_value=True`` so that a function defined in ``__main__`` works under spawn and forkserver
even when the child cannot import the parent's main module.

Errors are raised here, in the caller, naming what could not be pickled: the stdlib's queues
pickle in a feeder thread and drop the item with a message on stderr.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

from ._errors import SerializationError

__all__ = ["dumps", "loads"]

PROTOCOL = 5


def dumps(obj: object, *, what: str = "object", by_value: bool = False) -> bytes:
    """Pickle ``obj``; raise :class:`SerializationError` naming ``what`` and its type."""
    if not by_value:
        try:
            return pickle.dumps(obj, PROTOCOL)
        except Exception:  # the C pickler refused; cloudpickle may not
            pass
    try:
        data: bytes = cloudpickle.dumps(obj, PROTOCOL)
    except Exception as exc:
        raise SerializationError(
            f"cannot pickle {what} of type {_type_name(obj)}: {type(exc).__name__}: {exc}"
        ) from exc
    return data


def loads(data: bytes | bytearray | memoryview) -> Any:
    """Unpickle bytes made by :func:`dumps` (cloudpickle output is plain pickle data)."""
    return pickle.loads(data)


def _type_name(obj: object) -> str:
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
