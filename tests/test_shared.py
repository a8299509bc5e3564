"""``shared=``: read-only data delivered to each worker once, on every local backend and start
method (Dask's is in tests/dask): copy-on-write under fork, one read-only shared-memory
mapping for large buffers under spawn and forkserver, the object itself for threads."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

import workhorse
from conftest import START_METHODS

BOUND = 30
_loads_here = 0  # how many times this process unpickled a Counted (per worker process)


class Counted:
    """Counts how often it is unpickled in each process: shared data must be once per worker."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload

    def __setstate__(self, state: dict[str, Any]) -> None:
        global _loads_here
        _loads_here += 1
        self.__dict__.update(state)


class NeverPickled:
    """Fine under fork (nothing is pickled); refused under spawn with a clear error."""

    def __reduce__(self) -> Any:
        raise TypeError("this object stays in its process")


class BreaksOnLoad:
    def __reduce__(self) -> Any:
        return (_explode, ())


def _explode() -> None:
    raise ValueError("cannot rebuild the shared data here")


def payload_and_loads(_: object = None) -> tuple[Any, int, int]:
    info = workhorse.worker()
    assert info is not None
    return info.shared.payload, _loads_here, os.getpid()


def array_facts(_: object = None) -> tuple[float, bool, str]:
    info = workhorse.worker()
    assert info is not None
    array = info.shared["array"]
    root = array.base
    while isinstance(root, np.ndarray):
        root = root.base
    return (
        float(array.sum()),
        bool(array.flags.writeable),
        type(getattr(root, "obj", root)).__name__,
    )


def shared_of_worker(_: object = None) -> Any:
    info = workhorse.worker()
    assert info is not None
    return info.shared


def die_once(flag: str) -> Any:
    if not os.path.exists(flag):
        open(flag, "w").close()
        os._exit(3)
    return shared_of_worker()


def init_reads_shared() -> None:
    info = workhorse.worker()
    assert info is not None
    info.state["seen"] = info.shared


def state_seen(_: object = None) -> Any:
    info = workhorse.worker()
    assert info is not None
    return info.state["seen"]


@pytest.mark.parametrize("start_method", START_METHODS)
def test_each_worker_gets_the_data_once_not_per_task(start_method: str) -> None:
    data = Counted(list(range(1000)))
    context = workhorse.get_context(start_method)
    with workhorse.Pool(2, context=context, shared=data) as pool:
        results = pool.map(payload_and_loads, range(200), chunksize=1)
    assert all(payload == list(range(1000)) for payload, _, _ in results)
    loads = {pid: count for _, count, pid in results}
    # fork: never unpickled (inherited); spawn/forkserver: once per worker process
    assert set(loads.values()) == ({0} if start_method == "fork" else {1})


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_large_arrays_are_one_read_only_mapping(start_method: str) -> None:
    array = np.arange(1 << 20, dtype=np.float64)  # 8 MiB
    context = workhorse.get_context(start_method)
    with workhorse.ProcessPoolExecutor(2, mp_context=context, shared={"array": array}) as ex:
        facts = list(ex.map(array_facts, range(4)))
    for total, writeable, base in facts:
        assert total == float(array.sum())
        assert not writeable  # a view on the read-only mapping, not a private copy
        assert base == "mmap"


def test_under_fork_the_object_is_never_pickled() -> None:
    context = workhorse.get_context("fork")
    with workhorse.Pool(2, context=context, shared=NeverPickled(), maxtasksperchild=1) as pool:
        # replacements (forked from the template) inherit it too
        kinds = pool.map(lambda _: type(shared_of_worker()).__name__, range(6), chunksize=1)
    assert kinds == ["NeverPickled"] * 6


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_data_that_cannot_be_pickled_is_refused_at_once(start_method: str) -> None:
    context = workhorse.get_context(start_method)
    with pytest.raises(workhorse.SerializationError, match=r"cannot pickle shared.*NeverPickled"):
        workhorse.Pool(2, context=context, shared=NeverPickled())


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_data_a_worker_cannot_rebuild_breaks_the_pool_clearly(start_method: str) -> None:
    context = workhorse.get_context(start_method)
    with workhorse.ProcessPoolExecutor(1, mp_context=context, shared=BreaksOnLoad()) as ex:
        future = ex.submit(abs, -1)
        with pytest.raises(workhorse.PoolBroken, match="could not load the pool's shared= data"):
            future.result(timeout=BOUND)


@pytest.mark.parametrize("start_method", START_METHODS)
def test_a_replaced_worker_gets_it_again(start_method: str, tmp_path: Any) -> None:
    context = workhorse.get_context(start_method)
    flag = str(tmp_path / "died")
    with workhorse.ProcessPoolExecutor(1, mp_context=context, shared=("x", 1)) as ex:
        crashed = ex.submit(die_once, flag)
        with pytest.raises(workhorse.WorkerCrashed):
            crashed.result(timeout=BOUND)
        assert ex.submit(die_once, flag).result(timeout=BOUND) == ("x", 1)


@pytest.mark.parametrize("backend", ["processes", "threads", "serial"])
def test_the_initializer_sees_it(backend: str) -> None:
    with workhorse.Pool(2, backend=backend, initializer=init_reads_shared, shared=[7]) as pool:
        assert pool.map(state_seen, range(4)) == [[7]] * 4


@pytest.mark.parametrize("backend", ["threads", "serial"])
def test_in_threads_it_is_the_object_itself(backend: str) -> None:
    data = {"big": object()}
    with workhorse.ThreadPoolExecutor(2, backend=backend, shared=data) as ex:
        seen = list(ex.map(shared_of_worker, range(8)))
    assert all(item is data for item in seen)


def test_without_it_tasks_see_none() -> None:
    with workhorse.Pool(1) as pool:
        assert pool.apply(shared_of_worker) is None


def test_every_face_takes_it() -> None:
    for face in (
        workhorse.Pool, workhorse.ThreadPool, workhorse.ProcessPoolExecutor,
        workhorse.ThreadPoolExecutor,
    ):  # fmt: skip
        with face(1, shared=5) as pool:
            run = getattr(pool, "apply", None) or (lambda f: pool.submit(f).result(BOUND))
            assert run(shared_of_worker) == 5


def test_the_worker_info_repr_does_not_dump_the_data() -> None:
    with workhorse.Pool(1, backend="threads", shared="x" * 10_000) as pool:
        text = pool.apply(lambda: repr(workhorse.worker()))
    assert len(text) < 200
