"""The public surface: exports, the two contexts' names, stdlib-compatible signatures."""

from __future__ import annotations

import inspect
import multiprocessing
import multiprocessing.synchronize
import queue
import subprocess
import sys
import threading
from typing import Any

import pytest

import workhorse
from workhorse import processes, threads

SHARED_NAMES = (
    "Queue",
    "SimpleQueue",
    "JoinableQueue",
    "Pipe",
    "Lock",
    "RLock",
    "Semaphore",
    "BoundedSemaphore",
    "Condition",
    "Event",
    "Barrier",
    "group",
)


def test_all_is_exact() -> None:
    public = {name for name in dir(workhorse) if not name.startswith("_")}
    exported = set(workhorse.__all__)
    assert exported <= public
    modules = {"processes", "threads"}
    assert public - exported - modules == set()


@pytest.mark.parametrize("module", [processes, threads], ids=["processes", "threads"])
def test_contexts_expose_the_same_names(module: Any) -> None:
    for name in SHARED_NAMES:
        assert callable(getattr(module, name)), name
    for name in module.__all__:
        assert hasattr(module, name), name


@pytest.mark.parametrize("name", ["processes", "threads", "fork", "spawn", "forkserver"])
def test_get_context(name: str) -> None:
    ctx = workhorse.get_context(name)
    for shared in SHARED_NAMES:
        assert callable(getattr(ctx, shared))


def test_unknown_context_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="unknown context 'gpu'"):
        workhorse.get_context("gpu")
    with pytest.raises(ValueError, match="start_method"):
        workhorse.with_start_method("teleport")


def test_top_level_is_the_process_flavour() -> None:
    assert workhorse.Queue is processes.Queue
    assert workhorse.Lock is processes.Lock
    assert workhorse.Thread is threads.Thread


def _parameters(obj: Any) -> list[str]:
    return [
        p.name
        for p in inspect.signature(obj).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
    ]


STDLIB_TWINS: list[tuple[Any, Any]] = [
    (workhorse.Process, multiprocessing.Process),
    (workhorse.Thread, threading.Thread),
    (processes.Queue, multiprocessing.get_context().Queue),
    (threads.Queue, queue.Queue),
    (processes.Queue.put, multiprocessing.queues.Queue.put),
    (processes.Queue.get, multiprocessing.queues.Queue.get),
    (threads.Queue.put, queue.Queue.put),
    (threads.Queue.get, queue.Queue.get),
    (processes.Lock.acquire, threading.Lock().acquire),
    (threads.Lock.acquire, threading.Lock().acquire),
    (processes.Semaphore.acquire, threading.Semaphore.acquire),
    (threads.Semaphore.release, threading.Semaphore.release),
    (processes.Semaphore.release, threading.Semaphore.release),
    (processes.Condition.wait, threading.Condition.wait),
    (processes.Condition.wait_for, threading.Condition.wait_for),
    (processes.Event.wait, threading.Event.wait),
    (processes.Barrier, threading.Barrier),
    (threads.Barrier, threading.Barrier),
    (workhorse.Pipe, multiprocessing.Pipe),
]


@pytest.mark.parametrize(
    ("ours", "theirs"), STDLIB_TWINS, ids=lambda x: getattr(x, "__qualname__", str(x))
)
def test_signatures_accept_every_stdlib_parameter(ours: Any, theirs: Any) -> None:
    try:
        expected = _parameters(theirs)
    except ValueError:  # C functions without a signature: nothing to compare
        pytest.skip("no signature")
    assert _parameters(ours)[: len(expected)] == expected


def test_every_public_name_has_a_docstring() -> None:
    for module in (workhorse, processes, threads):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"


def test_every_subpackage_is_packaged() -> None:
    """A subpackage missing from pyproject's explicit list installs fine in editable mode
    and breaks every regular install; catch it here."""
    import pathlib
    import tomllib

    root = pathlib.Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    src = root / "src"
    found = {".".join(init.parent.relative_to(src).parts) for init in src.rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_every_exported_name_resolves_lazily() -> None:
    """The top level imports on first use (PEP 562): each name of ``__all__`` has a source in
    ``_EXPORTS`` (or is defined there), and resolves in a fresh interpreter."""
    assert set(workhorse._EXPORTS) | {"dask"} == set(workhorse.__all__)
    code = "import workhorse\nfor name in workhorse.__all__:\n    getattr(workhorse, name)\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
