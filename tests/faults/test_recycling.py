"""Worker recycling on memory growth (fault matrix E4) and garbage hygiene in workers."""

from __future__ import annotations

import logging
import os

import pytest

import workhorse
from workhorse._engine import _worker
from workhorse._engine._worker import MEMORY_GROWTH_ENV, memory_growth_limit

from ._helpers import BOUND, FORK

_HOARD: list[bytearray] = []


def _leak(megabytes: int) -> int:
    """Keep ``megabytes`` of touched memory for good (a leak); return the worker's pid."""
    _HOARD.append(bytearray(b"\x01") * (megabytes * 2**20))
    return os.getpid()


def test_a_worker_growing_past_the_limit_is_replaced_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(MEMORY_GROWTH_ENV, str(20 * 2**20))
    monkeypatch.setattr(_worker, "MEMORY_CHECK_EVERY", 0.0)  # fork: the workers see it too
    caplog.set_level(logging.WARNING, logger="workhorse")
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK, chunksize=1) as pool:
        pids = [pool.submit(_leak, 8).result(BOUND) for _ in range(12)]
    assert len(set(pids)) >= 3, "the leaking worker was replaced more than once"
    assert max(pids.count(pid) for pid in set(pids)) <= 3, "no worker grew past 20 MB + 8 MB"
    warnings = [r for r in caplog.records if "memory leak" in r.getMessage()]
    assert len(warnings) == 1, "one warning per pool, not one per replacement"


def test_a_worker_within_the_limit_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_worker, "MEMORY_CHECK_EVERY", 0.0)
    with workhorse.ProcessPoolExecutor(1, mp_context=FORK, chunksize=1) as pool:
        pids = {pool.submit(_leak, 1).result(BOUND) for _ in range(10)}
    assert len(pids) == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", 300 * 2**20), ("0", None), ("-5", None), ("1e6", 1_000_000), ("junk", 300 * 2**20)],
)
def test_the_memory_growth_limit_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: int | None
) -> None:
    monkeypatch.setenv(MEMORY_GROWTH_ENV, raw)
    assert memory_growth_limit() == expected


def test_disabled_memory_limit_never_recycles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_GROWTH_ENV, "0")
    monkeypatch.setattr(_worker, "MEMORY_CHECK_EVERY", 0.0)
    with workhorse.with_start_method("fork").ProcessPoolExecutor(1, chunksize=1) as pool:
        pids = {pool.submit(_leak, 4).result(BOUND) for _ in range(8)}
    assert len(pids) == 1
