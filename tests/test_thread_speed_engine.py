"""Tests of the thread engine's fast paths: multi-item slices and single-call submits."""

from __future__ import annotations

import pytest

import workhorse


def _stop_on_odd(x: int) -> int:
    if x % 2:
        raise StopIteration(x)  # the iterator protocol's exception: still only this item's error
    return x


def test_thread_map_batch_failures_keep_their_items() -> None:
    with workhorse.ThreadPool(2) as pool:
        pool.map(abs, range(1000))  # fast items measured: the next slices hold many items
        with pytest.raises(StopIteration) as caught:
            pool.map(_stop_on_odd, range(2000))
        assert caught.value.args == (1,)  # the first failure in input order
        outcomes = []
        for x in pool.imap(abs, range(-1000, 0)):
            outcomes.append(x)
        assert outcomes == list(range(1000, 0, -1))


def test_thread_submit_with_and_without_keywords() -> None:
    with workhorse.ThreadPoolExecutor(2) as executor:
        assert executor.submit(pow, 2, 10).result(10) == 1024
        assert executor.submit(int, "ff", base=16).result(10) == 255
        with pytest.raises(StopIteration):
            executor.submit(_stop_on_odd, 3).result(10)
