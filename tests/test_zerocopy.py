"""Zero-copy transfer of large buffers through shared memory (the process backend's _zerocopy)."""

from __future__ import annotations

import mmap
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workhorse._backends.process import _zerocopy as zc
from workhorse._errors import SerializationError

pytestmark = pytest.mark.timeout(60)

MB = 1 << 20


@pytest.fixture
def prefix() -> Iterator[str]:
    name = zc.make_prefix("test", os.urandom(3).hex())
    yield name
    zc.sweep(name)


def shm_names(prefix: str) -> list[str]:
    return sorted(e for e in os.listdir("/dev/shm") if e.startswith(prefix))


def mapping_of(arr: Any) -> mmap.mmap | None:
    """The mmap at the end of an array's ``base`` chain, if any."""
    base = arr
    while base is not None:
        if isinstance(base, memoryview):
            obj = base.obj
            return obj if isinstance(obj, mmap.mmap) else None
        base = getattr(base, "base", None)
    return None


def roundtrip(obj: object, prefix: str, **kwargs: Any) -> tuple[Any, list[str]]:
    data, names = zc.pack(obj, prefix=prefix, **kwargs)
    assert sorted(n.lstrip("/") for n in names) == shm_names(prefix)
    result = zc.unpack(data)
    assert shm_names(prefix) == []  # unpack unlinks at once
    return result, names


@pytest.mark.parametrize("order", ["C", "F"])
def test_contiguous_arrays_arrive_as_writable_views_on_shared_memory(
    prefix: str, order: str
) -> None:
    np = pytest.importorskip("numpy")
    arr = np.asarray(np.arange(3 * MB, dtype=np.float64).reshape(1024, -1), order=order)
    got, names = roundtrip(arr, prefix)
    assert len(names) == 1
    assert names[0].startswith(f"/{prefix}")
    np.testing.assert_array_equal(got, arr)
    assert got.flags.writeable
    assert got.flags.f_contiguous if order == "F" else got.flags.c_contiguous
    assert mapping_of(got) is not None
    got[0, 0] = -1.0  # a view on the mapping, not a copy
    assert np.frombuffer(mapping_of(got), dtype=np.float64).min() == -1.0


def test_readonly_stays_readonly(prefix: str) -> None:
    np = pytest.importorskip("numpy")
    arr = np.ones(MB)
    arr.flags.writeable = False
    got, names = roundtrip(arr, prefix)
    assert len(names) == 1
    assert not got.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        got[0] = 2.0


@pytest.mark.parametrize(
    "make",
    [
        lambda np: np.ones((2048, 2048))[:, ::2],  # not contiguous
        lambda np: np.empty((0, 10)),
        lambda np: np.array([object()] * MB, dtype=object),
    ],
    ids=["non-contiguous", "empty", "object-dtype"],
)
def test_what_cannot_go_out_of_band_goes_in_band(prefix: str, make: Any) -> None:
    np = pytest.importorskip("numpy")
    arr = make(np)
    got, names = roundtrip(arr, prefix, threshold=0)
    assert names == []
    assert got.shape == arr.shape
    assert got.dtype == arr.dtype
    if arr.dtype != object:
        np.testing.assert_array_equal(got, arr)


@pytest.mark.parametrize("threshold", [0, 1 << 20])
def test_zero_dimensional(prefix: str, threshold: int) -> None:
    np = pytest.importorskip("numpy")
    got, names = roundtrip(np.array(3.5), prefix, threshold=threshold)
    assert len(names) == (threshold == 0)
    assert got.shape == ()
    assert got == 3.5


def test_nested_structure_with_several_arrays(prefix: str) -> None:
    np = pytest.importorskip("numpy")
    big = [np.full(MB // 4 + i, i, dtype=np.int32) for i in range(3)]
    obj = {"a": big[0], "rest": (big[1], [big[2], "text"]), "small": np.arange(10)}
    got, names = roundtrip(obj, prefix)
    assert len(names) == 3
    np.testing.assert_array_equal(got["a"], big[0])
    np.testing.assert_array_equal(got["rest"][0], big[1])
    np.testing.assert_array_equal(got["rest"][1][0], big[2])
    assert got["rest"][1][1] == "text"
    assert mapping_of(got["small"]) is None


def test_bytes_stay_in_band_and_picklebuffers_go_out_of_band(prefix: str) -> None:
    payload = os.urandom(2 * MB)
    got, names = roundtrip({"b": payload, "ba": bytearray(payload)}, prefix)
    assert names == []
    assert got == {"b": payload, "ba": bytearray(payload)}
    view, names = roundtrip(pickle.PickleBuffer(bytearray(payload)), prefix)
    assert len(names) == 1
    assert bytes(view) == payload
    assert isinstance(view.obj, mmap.mmap)


def test_no_segments_means_a_plain_pickle(prefix: str) -> None:
    data, names = zc.pack({"x": [1, 2, 3]}, prefix=prefix)
    assert names == []
    assert pickle.loads(data) == {"x": [1, 2, 3]}
    assert zc.unpack(pickle.dumps("plain", 5)) == "plain"


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from(["u1", "i2", "f4", "f8", "c16"]),
    shape=st.lists(st.integers(1, 40), min_size=1, max_size=3),
    delta=st.integers(-1, 1),
)
def test_threshold_boundary(dtype: str, shape: list[int], delta: int) -> None:
    np = pytest.importorskip("numpy")
    prefix = zc.make_prefix("hyp", os.urandom(3).hex())
    arr = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    threshold = arr.nbytes + delta
    try:
        data, names = zc.pack([arr, arr.copy()], prefix=prefix, threshold=threshold)
        assert len(names) == (2 if arr.nbytes >= threshold else 0)
        got = zc.unpack(data)
    finally:
        zc.sweep(prefix)
    assert shm_names(prefix) == []
    for item in got:
        np.testing.assert_array_equal(item, arr)
        assert item.dtype == arr.dtype
        assert (mapping_of(item) is not None) == bool(names)


def test_cloudpickle_fallback_and_errors(prefix: str) -> None:
    np = pytest.importorskip("numpy")
    offset = 5
    data, names = zc.pack((lambda x: x + offset, np.zeros(MB)), prefix=prefix)
    fn, arr = zc.unpack(data)
    assert len(names) == 1
    assert fn(1) == 6
    assert mapping_of(arr) is not None
    with pytest.raises(SerializationError, match=r"the argument\[0\] of type _thread\.lock"):
        zc.pack((threading.Lock(), np.zeros(MB)), prefix=prefix, what="the argument")
    assert shm_names(prefix) == []  # nothing is written before pickling succeeds


def test_reply_goes_back_by_reference(prefix: str) -> None:
    np = pytest.importorskip("numpy")
    arr = np.arange(MB, dtype=np.float64)
    data, names = zc.pack(arr, prefix=prefix, hold=True)
    received = zc.unpack(data)  # as the worker would
    reply, created = zc.pack(
        (received, received[100:200_000]), prefix=prefix, reply_to=data, threshold=1024
    )
    assert created == []  # no second copy
    whole, part = zc.unpack(reply)
    np.testing.assert_array_equal(whole, arr)
    np.testing.assert_array_equal(part, arr[100:200_000])
    whole[0] = 42.0  # all three share the segment
    assert received[0] == 42.0
    # A buffer outside reply_to's segments, or reply_to without hold, is copied.
    other, created = zc.pack(received.copy(), prefix=prefix, reply_to=data)
    assert len(created) == 1
    zc.unpack(other)
    zc.discard(names)
    with pytest.raises(RuntimeError, match="already discarded"):
        zc.unpack(reply)


def test_unheld_reply_is_copied(prefix: str) -> None:
    np = pytest.importorskip("numpy")
    data, _ = zc.pack(np.ones(MB), prefix=prefix)
    received = zc.unpack(data)
    reply, created = zc.pack(received, prefix=prefix, reply_to=data)
    assert len(created) == 1
    np.testing.assert_array_equal(zc.unpack(reply), received)


def test_discard_and_sweep_are_idempotent(prefix: str) -> None:
    np = pytest.importorskip("numpy")
    data, names = zc.pack([np.ones(MB), np.ones(MB)], prefix=prefix, hold=True)
    assert len(shm_names(prefix)) == 2
    zc.discard(names)
    zc.discard(names)
    assert shm_names(prefix) == []
    with pytest.raises(FileNotFoundError):
        zc.unpack(data)
    zc.pack([np.ones(MB) for _ in range(3)], prefix=prefix)
    assert zc.sweep(prefix) == 3
    assert zc.sweep(prefix) == 0
    with pytest.raises(ValueError, match="wh-"):
        zc.sweep("")  # an empty prefix would sweep everybody's segments


def test_failed_unpack_still_unlinks_every_segment(prefix: str) -> None:
    np = pytest.importorskip("numpy")
    data, names = zc.pack([np.ones(MB), np.ones(MB)], prefix=prefix)
    zc.discard(names[:1])
    with pytest.raises(FileNotFoundError):
        zc.unpack(data)
    assert shm_names(prefix) == []


def _pack_then_hang(conn: Connection, prefix: str) -> None:
    import numpy as np

    _, names = zc.pack([np.ones(MB), np.ones(2 * MB)], prefix=prefix)
    conn.send(names)
    threading.Event().wait()


def test_killed_child_leaves_nothing_after_sweep(prefix: str) -> None:
    pytest.importorskip("numpy")
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_pack_then_hang, args=(child, prefix))
    process.start()
    try:
        assert parent.poll(30)
        names = parent.recv()
        assert len(names) == 2
        assert len(shm_names(prefix)) == 2
    finally:
        os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
        process.join(30)
    assert zc.sweep(prefix) == 2
    assert shm_names(prefix) == []


def _report_held(conn: Connection) -> None:
    conn.send(len(zc._held))


def test_fork_child_does_not_pin_held_segments(prefix: str) -> None:
    np = pytest.importorskip("numpy")
    _, names = zc.pack(np.ones(MB), prefix=prefix, hold=True)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_report_held, args=(child,))
    process.start()
    assert parent.poll(30)
    assert parent.recv() == 0
    process.join(30)
    zc.discard(names)


def test_prefix_must_be_a_workhorse_name() -> None:
    with pytest.raises(ValueError, match="wh-"):
        zc.pack(b"x", prefix="other-")
    assert zc.make_prefix(1, 2).startswith(f"wh-{os.getpid()}-")
    assert zc.make_prefix(1, 2).endswith("-z-1-2-")
