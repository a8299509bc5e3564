"""What every backend does with the outcomes of a run of items: one retry path for all.

A backend runs items ``start, start + 1, ...`` of a job and gets back their values and the
items that raised. :func:`deliver` hands the runs of successes to the job's sink a run at a
time and sends each failure through :func:`fail_or_retry`, which asks the job's options
whether it runs again (``retries``/``retry_on``; a cancelled job never does) and otherwise
fails it for good. The process, thread, serial and Dask backends all retry through here, so
a retry means the same thing everywhere: the item alone, its attempt count one higher, at
the front of the queue; an INFO record says so (:mod:`._events`). An error that ends an
item after earlier tries carries one note per earlier try (``try 1 of 3 failed: ...``),
so no try's error is lost.

Example::

    deliver(job, 0, [1, None, 3], {1: ValueError("x")}, 0, queue_again, events)
    # sink.ok(0, [1]); item 1 retried or failed; sink.ok(2, [3])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._errors import TaskTimeout
from ._events import PoolEvents
from ._job import Job

__all__ = ["Requeue", "deliver", "fail_or_retry", "timeout_error"]

#: ``requeue(index, attempt)``: queue item ``index`` of the job alone, as try ``attempt``
Requeue = Callable[[int, int], None]


def fail_or_retry(
    job: Job, index: int, attempt: int, error: BaseException, requeue: Requeue,
    events: PoolEvents,
) -> None:  # fmt: skip
    """Item ``index`` failed with ``error`` on try ``attempt`` (0-based): run it again if the
    job's options allow, else fail it on the sink."""
    tries = job.options.retries + 1
    if job.options.should_retry(attempt, error) and not job.sink.cancelled:
        events.retrying(job.describe(index), attempt + 1, tries, error)
        job.earlier_errors(index).append(
            f"try {attempt + 1} of {tries} failed: {type(error).__name__}: {error}"
        )
        requeue(index, attempt + 1)
        return
    for note in job.forget_errors(index):
        error.add_note(note)
    job.sink.fail(index, error)


def deliver(
    job: Job, start: int, values: list[Any], failures: Mapping[int, BaseException],
    attempt: int, requeue: Requeue, events: PoolEvents,
) -> None:  # fmt: skip
    """The outcomes of items ``start:start + len(values)``: ``failures`` maps an item's index
    (in the job) to its error; the other items returned their entry of ``values``."""
    sink = job.sink
    if not failures:
        if values:
            sink.ok(start, values)
        return
    run_start = start  # a run of successes goes to the sink at once
    for index in sorted(failures):
        if run_start < index:
            sink.ok(run_start, values[run_start - start : index - start])
        run_start = index + 1
        fail_or_retry(job, index, attempt, failures[index], requeue, events)
    stop = start + len(values)
    if run_start < stop:
        sink.ok(run_start, values[run_start - start :])


def timeout_error(job: Job, index: int, how: str) -> TaskTimeout:
    """The error of item ``index`` past its timeout; ``how`` says how it was stopped."""
    return TaskTimeout(
        f"{job.describe(index)} ran longer than its timeout of {job.options.timeout} s; {how}"
    )
