"""``workhorse.as_completed``: :func:`concurrent.futures.as_completed`, with a progress bar.

Without ``progress`` it *is* the stdlib's (the same generator, the same errors); with it, a
bar (see :mod:`._progress_bar`) counts the futures as they are yielded, for the
``submit`` + ``as_completed`` loop that has no ``map`` to carry a bar.

Example::

    futures = [pool.submit(work, item) for item in items]
    for future in workhorse.as_completed(futures, progress=True):
        handle(future.result())
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from ._options import Progress, check_progress
from ._progress_bar import make_bar

__all__ = ["as_completed"]

T = TypeVar("T")


def as_completed(
    fs: Iterable[Future[T]], timeout: float | None = None, *, progress: Progress = False
) -> Iterator[Future[T]]:
    """The futures of ``fs`` as they complete, as :func:`concurrent.futures.as_completed`
    yields them; ``progress`` (as the pools' ``progress=``) shows a bar of how many are done.

    Example::

        for future in workhorse.as_completed(futures, timeout=60, progress=True):
            print(future.result())
    """
    check_progress(progress)
    if not progress:
        return concurrent.futures.as_completed(fs, timeout)
    return _with_bar(fs, timeout, progress)


def _with_bar(fs: Iterable[Future[T]], timeout: float | None, progress: Any) -> Iterator[Future[T]]:
    futures = set(fs)
    bar = make_bar(progress, len(futures), "as_completed")
    try:
        for future in concurrent.futures.as_completed(futures, timeout):
            if bar is not None:
                bar.update()
            yield future
    finally:
        if bar is not None:
            bar.close()
