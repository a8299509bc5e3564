"""Per-task options: what the stdlib's pools lack, validated once, carried by every task."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["TaskOptions"]


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Options that apply to each task of a pool (or of one ``with_options`` view).

    Args:
        timeout: seconds a task may run before it is stopped (its worker process is killed
            and replaced) and its future raises :class:`~workhorse.TaskTimeout`. ``None``:
            no limit.
        retries: how many times a failed task is run again before its error is reported.
        retry_on: the exception types that are retried (default: every ``Exception``,
            including :class:`~workhorse.WorkerCrashed` and :class:`~workhorse.TaskTimeout`).

    Example::

        TaskOptions(timeout=5, retries=2, retry_on=(ConnectionError,))
    """

    timeout: float | None = None
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = field(default=(Exception,))

    def __post_init__(self) -> None:
        if self.timeout is not None:
            if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)):
                raise TypeError(f"timeout must be a number or None, not {self.timeout!r}")
            if math.isnan(self.timeout) or self.timeout <= 0:
                raise ValueError(f"timeout must be a positive number, not {self.timeout!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise TypeError(f"retries must be an int, not {self.retries!r}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, not {self.retries}")
        retry_on = self.retry_on
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
            object.__setattr__(self, "retry_on", retry_on)
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in retry_on):
            raise TypeError(f"retry_on must be exception types, not {self.retry_on!r}")

    def updated(self, **changes: Any) -> TaskOptions:
        """A copy with ``changes`` applied (and validated)."""
        return replace(self, **changes)

    def should_retry(self, attempt: int, error: BaseException) -> bool:
        """Whether a task that failed with ``error`` on ``attempt`` (0-based) runs again."""
        return attempt < self.retries and isinstance(error, self.retry_on)
