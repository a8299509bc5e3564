"""Lazy maps (``workhorse._lazy_map``): how their input is cut into jobs."""

from __future__ import annotations

from typing import Any

import pytest

import workhorse
from workhorse._lazy_map import Feed


def _noop(x: int) -> int:
    return x


@pytest.mark.parametrize("backend", ["processes", "threads"])
def test_a_fast_input_travels_in_large_chunks_not_one_job_per_item(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first item is pulled alone to sample its size; the chunks after it must grow to an
    # eighth of the window (they once stayed at one item: 100,000 jobs for 100,000 calls).
    sizes: list[int] = []
    submit = Feed._submit

    def counting(self: Feed, chunk: list[Any]) -> None:
        sizes.append(len(chunk))
        submit(self, chunk)

    monkeypatch.setattr(Feed, "_submit", counting)
    with workhorse.Pool(2, backend=backend) as pool:
        assert list(pool.imap(_noop, range(100_000))) == list(range(100_000))
        with workhorse.ThreadPoolExecutor(2, backend=backend) as executor:
            assert sum(executor.map(_noop, range(50_000))) == sum(range(50_000))
    assert sizes[0] == 1
    assert sum(sizes) == 150_000
    assert len(sizes) < 200, f"{len(sizes)} jobs; sizes start {sizes[:10]}"


@pytest.mark.parametrize("backend", ["processes", "threads"])
def test_a_calls_own_chunksize_fixes_its_batches(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batches are taken in this process (the process backend's manager thread, or the
    # pool's threads), so the queue itself can report their sizes.
    from workhorse._scheduler._units import Pending

    sizes: list[int] = []
    take_batch, take = Pending.take_batch, Pending.take

    def record_batch(self: Pending, size: int) -> Any:
        parts = take_batch(self, size)
        sizes.append(sum(map(len, parts)))
        return parts

    def record_slice(self: Pending, size: int) -> Any:
        unit = take(self, size)
        if backend == "threads":
            sizes.append(len(unit))
        return unit

    monkeypatch.setattr(Pending, "take_batch", record_batch)
    monkeypatch.setattr(Pending, "take", record_slice)
    with workhorse.Pool(2, backend=backend) as pool:
        assert pool.map(_noop, range(100), chunksize=10) == list(range(100))
        assert set(sizes) == {10}
        sizes.clear()
        assert list(pool.imap(_noop, range(100), chunksize=7)) == list(range(100))
        assert max(sizes) == 7
        assert sum(sizes) == 100
