"""Per-task options and the validation of every pool argument, done once, with errors that
name the argument.

``TaskOptions`` is what the stdlib's pools lack (a timeout, retries); every task carries the
options of the pool or ``with_options`` view it was submitted through. The ``check_*``
helpers validate the constructor arguments of the four pool faces, with the stdlib's
exception types and, where the stdlib has one, its message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import IO, Any

__all__ = [
    "Progress",
    "TaskOptions",
    "check_chunksize",
    "check_initializer",
    "check_max_tasks",
    "check_progress",
    "check_seconds",
    "check_workers",
]

#: What ``progress=`` accepts: off, on when stderr is a terminal, always, or a stream.
Progress = bool | str | IO[str] | None


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Options that apply to each task of a pool (or of one ``with_options`` view).

    Args:
        timeout: seconds a task may run before it is stopped (its worker process is killed
            and replaced) and its future raises :class:`~workhorse.TaskTimeout`. ``None``
            (or ``math.inf``): no limit.
        retries: how many times a failed task is run again before its error is reported.
        retry_on: the exception type, or types, that are retried (default: every
            ``Exception``, including :class:`~workhorse.WorkerCrashed` and
            :class:`~workhorse.TaskTimeout`).
        cancel_running: ``future.cancel()`` (and a ``map`` past its ``timeout``) also stops
            a task that is running -- its worker process is killed and replaced, or its
            thread is abandoned -- instead of returning False as the stdlib does.

    Example::

        TaskOptions(timeout=5, retries=2, retry_on=(ConnectionError,))
    """

    timeout: float | None = None
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = field(default=(Exception,))
    cancel_running: bool = False

    def __post_init__(self) -> None:
        timeout = self.timeout
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(f"timeout must be a number or None, not {timeout!r}")
            if math.isnan(timeout) or timeout <= 0:
                raise ValueError(f"timeout must be a positive number or None, not {timeout!r}")
            object.__setattr__(self, "timeout", None if math.isinf(timeout) else float(timeout))
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise TypeError(f"retries must be an int, not {self.retries!r}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, not {self.retries}")
        object.__setattr__(self, "retry_on", _exception_types(self.retry_on))
        if not isinstance(self.cancel_running, bool):
            raise TypeError(f"cancel_running must be True or False, not {self.cancel_running!r}")

    def updated(self, **changes: Any) -> TaskOptions:
        """A copy with ``changes`` applied (and validated)."""
        return replace(self, **changes)

    def should_retry(self, attempt: int, error: BaseException) -> bool:
        """Whether a task that failed with ``error`` on ``attempt`` (0-based) runs again."""
        return attempt < self.retries and isinstance(error, self.retry_on)


def _exception_types(value: Any) -> tuple[type[BaseException], ...]:
    """``retry_on`` as a tuple: one exception type, or an iterable of them (not a string)."""
    items = (value,) if isinstance(value, type) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(f"retry_on must be an exception type or a tuple of them, not {value!r}")
    types = tuple(items)
    if not all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
        raise TypeError(f"retry_on must be an exception type or a tuple of them, not {value!r}")
    return types


def check_workers(value: Any, default: int, *, name: str = "max_workers") -> int:
    """A worker count: ``None`` means ``default``; 0 or less is a ``ValueError``."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {value!r}")
    if value <= 0:
        if name == "processes":
            raise ValueError("Number of processes must be at least 1")  # the stdlib's words
        raise ValueError(f"{name} must be greater than 0")
    return value


def check_chunksize(value: Any, *, allow_auto: bool = True, name: str = "chunksize") -> int | None:
    """A batch size: a positive int, or ``None``/``"auto"`` (adaptive) where allowed."""
    if value is None or (allow_auto and value == "auto"):
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int or 'auto', not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, not {value!r}")
    return value


def check_max_tasks(value: Any, name: str) -> int | None:
    """A per-worker task limit: a positive int or ``None``; anything else is a ``ValueError``
    (the stdlib's ``Pool`` rule, which also rejects ``0.5`` and ``"12"``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int or None, not {value!r}")
    return value


def check_seconds(value: Any, name: str) -> float | None:
    """A duration: a positive number of seconds, or ``None`` (or ``math.inf``) for none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {value!r}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, not {value!r}")
    return None if math.isinf(value) else float(value)


def check_initializer(initializer: Any, initargs: Any) -> tuple[Any, ...]:
    """Raise the stdlib's ``TypeError`` for a non-callable initializer; ``initargs`` as a tuple."""
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")
    if isinstance(initargs, (str, bytes)) or not isinstance(initargs, Iterable):
        raise TypeError(f"initargs must be a tuple, not {type(initargs).__name__}")
    return tuple(initargs)


def check_progress(value: Any) -> Progress:
    """``progress=``: ``None``/``False`` (off), ``True`` (on when stderr is a terminal),
    ``"always"`` (on, to stderr), or a text stream with ``write`` (on, to that stream)."""
    if value is None or isinstance(value, bool) or value == "always":
        return value  # type: ignore[no-any-return]
    if isinstance(value, str) or not callable(getattr(value, "write", None)):
        raise TypeError(
            f"progress must be True, False, None, 'always' or a text stream, not {value!r}"
        )
    return value  # type: ignore[no-any-return]
