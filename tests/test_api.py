"""The public surface: exports, the two contexts' names, stdlib-compatible signatures."""

from __future__ import annotations

import concurrent.futures
import inspect
import multiprocessing
import multiprocessing.pool
import multiprocessing.queues
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
            if not str(getattr(obj, "__module__", "")).startswith("workhorse"):
                continue  # the stdlib's own object, re-exported
            assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"


# Each stdlib module and the workhorse module that must have every name of its __all__.
MODULE_TWINS = [
    (multiprocessing, processes),
    (threading, threads),
    (concurrent.futures, workhorse),
]
# Where the stdlib module's name is a factory, the class whose methods ours must match.
STDLIB_CLASSES: dict[tuple[str, str], Any] = {
    ("multiprocessing", "Queue"): multiprocessing.queues.Queue,
    ("multiprocessing", "SimpleQueue"): multiprocessing.queues.SimpleQueue,
    ("multiprocessing", "JoinableQueue"): multiprocessing.queues.JoinableQueue,
    ("multiprocessing", "Lock"): multiprocessing.synchronize.Lock,
    ("multiprocessing", "RLock"): multiprocessing.synchronize.RLock,
    ("multiprocessing", "Semaphore"): multiprocessing.synchronize.Semaphore,
    ("multiprocessing", "BoundedSemaphore"): multiprocessing.synchronize.BoundedSemaphore,
    ("multiprocessing", "Condition"): multiprocessing.synchronize.Condition,
    ("multiprocessing", "Event"): multiprocessing.synchronize.Event,
    ("multiprocessing", "Barrier"): multiprocessing.synchronize.Barrier,
    ("multiprocessing", "Pool"): multiprocessing.pool.Pool,
}
_EMPTY: tuple[object, ...] = (None, (), {}, [])
# Public-looking names that are the stdlib's internals, each with why it is not offered.
NOT_OFFERED = {
    "multiprocessing.Pool.Process": "the hook multiprocessing.Pool makes its workers with; "
    "workhorse's engine starts its own",
}


def _pairs() -> list[tuple[str, Any, Any]]:
    pairs = []
    for stdlib, ours in MODULE_TWINS:
        for name in stdlib.__all__:
            theirs = getattr(stdlib, name)
            mine = getattr(ours, name, None)
            label = f"{stdlib.__name__}.{name}"
            pairs.append((label, mine, theirs))
            cls = STDLIB_CLASSES.get((stdlib.__name__, name), theirs)
            if inspect.isclass(cls) and inspect.isclass(mine) and mine is not cls:
                for attr, member in vars(cls).items():
                    if attr.startswith("_") or not callable(member):
                        continue
                    pairs.append((f"{label}.{attr}", getattr(mine, attr, None), member))
    return pairs


@pytest.mark.parametrize(("stdlib", "ours"), MODULE_TWINS, ids=lambda m: m.__name__)
def test_every_stdlib_name_is_exported(stdlib: Any, ours: Any) -> None:
    """Every name of the stdlib module's ``__all__`` is in ours, and in its ``__all__``: a
    future Python's additions show up here."""
    missing = sorted(set(stdlib.__all__) - set(ours.__all__))
    assert not missing, f"{ours.__name__} lacks {missing}"


def _compatible(mine: inspect.Signature, theirs: inspect.Signature) -> str | None:
    """Why ``mine`` does not accept every call ``theirs`` accepts (None: it does)."""
    params = [p for p in theirs.parameters.values() if p.name != "self"]
    own = [p for p in mine.parameters.values() if p.name != "self"]
    kinds = {p.kind for p in own}
    if all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None  # a factory passing everything on: nothing to compare
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    own_positional = [p for p in own if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for index, param in enumerate(positional):
        if index >= len(own_positional):
            if inspect.Parameter.VAR_POSITIONAL in kinds:
                continue
            return f"no positional parameter {param.name!r}"
        match = own_positional[index]
        if param.kind == param.POSITIONAL_OR_KEYWORD and match.name != param.name:
            return f"parameter {index} is {match.name!r}, not {param.name!r}"
        empty_as_none = match.default is None and param.default in _EMPTY
        same = param.default is match.default or param.default == match.default
        if not same and not empty_as_none:
            return f"{param.name}={match.default!r}, not {param.default!r}"
    named = {p.name: p for p in own}
    for param in params:
        if param.kind == param.KEYWORD_ONLY:
            found = named.get(param.name)
            if found is None or found.kind not in (found.KEYWORD_ONLY, found.POSITIONAL_OR_KEYWORD):
                if inspect.Parameter.VAR_KEYWORD not in kinds:
                    return f"no keyword parameter {param.name!r}"
            elif found.default != param.default:
                return f"{param.name}={found.default!r}, not {param.default!r}"
        elif param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) and param.kind not in kinds:
            return f"no {param}"
    for param in own[len(positional) :]:
        extra = param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
        if not extra and param.default is param.empty and param.name not in theirs.parameters:
            return f"extra parameter {param.name!r} without a default"
    return None


@pytest.mark.parametrize(
    ("label", "mine", "theirs"), _pairs(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_stdlib_signature_is_accepted(label: str, mine: Any, theirs: Any) -> None:
    """Each name (and each public method of each class) accepts every call the stdlib's
    does: same positional names and order, same defaults, extras keyword-only."""
    if label in NOT_OFFERED:
        pytest.skip(NOT_OFFERED[label])
    assert mine is not None, f"{label} is missing"
    if mine is theirs or not callable(theirs):
        return
    try:
        expected = inspect.signature(theirs)
    except (ValueError, TypeError):  # a C function without a signature
        return
    problem = _compatible(inspect.signature(mine), expected)
    assert problem is None, f"{label}: {problem}"


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
