"""The table of public names (workhorse._names): what each flavour and context offers, the
static blocks type checkers read, public ``__module__``s, pickling by reference, and the
registry of contexts behind ``get_context``."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import multiprocessing
import pickle
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import workhorse
import workhorse._context
import workhorse.processes
import workhorse.threads
from workhorse import _names

MODULES = {"workhorse": workhorse, "processes": workhorse.processes, "threads": workhorse.threads}
PUBLIC_MODULES = {"workhorse", "workhorse.processes", "workhorse.threads"}


def _offered(namespace: str) -> set[str]:
    """Every name the namespace offers on some Python (the version flags ignored)."""
    return {e.name for e in _names.TABLE.values() if getattr(e, namespace) is not None}


# -- every name resolves, under a public module --------------------------------------------


@pytest.mark.parametrize("namespace", MODULES)
def test_all_is_the_table(namespace: str) -> None:
    module = MODULES[namespace]
    assert list(module.__all__) == _names.public(namespace)
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize("namespace", MODULES)
def test_every_public_object_names_a_public_module(namespace: str) -> None:
    """A class (or function) of workhorse's names a public module, and is found there under
    its ``__qualname__``: what pickle does to find it again."""
    for name in MODULES[namespace].__all__:
        obj = getattr(MODULES[namespace], name)
        module = getattr(obj, "__module__", None)
        if inspect.ismodule(obj) or not str(module).startswith("workhorse"):
            continue  # a submodule, a constant, or the stdlib's own object
        assert module in PUBLIC_MODULES, f"{namespace}.{name} is {module}.{obj.__qualname__}"
        found = getattr(importlib.import_module(module), obj.__qualname__)
        assert found is obj, f"{namespace}.{name}"


def test_the_expected_owners() -> None:
    assert workhorse.Lock.__module__ == "workhorse"
    assert workhorse.Lock.__qualname__ == "Lock"
    assert workhorse.threads.Lock.__module__ == "workhorse.threads"
    # in both workhorse and workhorse.threads: the top level's
    assert workhorse.threads.ThreadPool.__module__ == "workhorse"
    assert workhorse.threads.Pool is workhorse.ThreadPool
    assert workhorse.TaskTimeout.__module__ == "workhorse"
    assert workhorse.ThreadContext.__module__ == "workhorse"
    assert repr(workhorse.Lock) == "<class 'workhorse.Lock'>"
    assert repr(workhorse.threads.Event()).startswith("<workhorse.threads.Event at 0x")


def test_tracebacks_name_the_public_class() -> None:
    import traceback

    text = "".join(traceback.format_exception_only(workhorse.TaskTimeout("late")))
    assert text == "workhorse.TaskTimeout: late\n"


# -- pickling by reference -----------------------------------------------------------------

FRESH = """
import pickle, sys
import workhorse
assert "workhorse.processes" not in sys.modules  # still lazy
error = pickle.loads(pickle.dumps(workhorse.TaskTimeout("x")))
assert type(error) is workhorse.TaskTimeout and error.args == ("x",), error
assert b"workhorse._" not in pickle.dumps(workhorse.TaskTimeout("x"))
ctx = workhorse.get_context("threads")  # the thread classes, before workhorse.threads
data = pickle.dumps(ctx.Lock)
assert b"workhorse.threads" in data and pickle.loads(data) is ctx.Lock, data
for cls in (workhorse.Lock, workhorse.Queue, workhorse.ThreadPool, workhorse.Thread):
    data = pickle.dumps(cls)
    assert b"workhorse._" not in data and pickle.loads(data) is cls, data
"""


def test_pickling_by_reference_in_a_fresh_interpreter() -> None:
    subprocess.run([sys.executable, "-c", FRESH], check=True, timeout=60)


def _pickled_classes() -> list[Any]:
    return [
        workhorse.Lock,
        workhorse.ThreadPool,
        workhorse.ProcessPoolExecutor,
        workhorse.threads.Lock,
        workhorse.threads.Queue,
        workhorse.ProcessContext,
        workhorse.TaskTimeout("late"),
    ]


def _round_trip(data: bytes, results: Any) -> None:
    objects = pickle.loads(data)  # in the child: `import workhorse`, then __getattr__
    results.put(pickle.dumps(objects))


def test_pickling_by_reference_under_spawn() -> None:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.SimpleQueue()
    sent = _pickled_classes()
    child = ctx.Process(target=_round_trip, args=(pickle.dumps(sent), results))
    child.start()
    back = pickle.loads(results.get())
    child.join(30)
    assert child.exitcode == 0
    assert back[:-1] == sent[:-1]
    assert all(a is b for a, b in zip(back[:-1], sent[:-1], strict=True))
    assert type(back[-1]) is workhorse.TaskTimeout


# -- the static blocks type checkers read agree with the table ----------------------------


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _static_block(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of the ``if TYPE_CHECKING:`` block in ``body`` that lists the names,
    flattened (a nested ``if sys.version_info ...`` included)."""
    blocks = [s for s in body if isinstance(s, ast.If) and _is_type_checking(s.test)]
    found = max(blocks, key=lambda s: len(s.body))
    flat: list[ast.stmt] = []
    pending = list(found.body)
    while pending:
        stmt = pending.pop(0)
        if isinstance(stmt, ast.If):
            pending[:0] = stmt.body
        else:
            flat.append(stmt)
    return flat


def _source_of_import(node: ast.ImportFrom, namespace: str) -> str:
    module = "." * node.level + (node.module or "")
    if namespace == "workhorse" and module == ".":
        return _names.SUBMODULE
    return module


def _tree(module: types.ModuleType) -> ast.Module:
    assert module.__file__ is not None
    return ast.parse(Path(module.__file__).read_text())


@pytest.mark.parametrize("namespace", MODULES)
def test_type_checking_block_matches_the_table(namespace: str) -> None:
    tree = _tree(MODULES[namespace])
    declared: dict[str, str] = {}
    static_all: list[str] = []
    for stmt in _static_block(tree.body):
        if isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                name = alias.asname or alias.name
                if not name.startswith("_"):
                    declared[name] = _source_of_import(stmt, namespace)
        elif isinstance(stmt, ast.Assign | ast.AugAssign):
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
            assert isinstance(target, ast.Name)
            if target.id == "__all__":
                assert isinstance(stmt.value, ast.List | ast.Tuple)
                static_all += [ast.literal_eval(e) for e in stmt.value.elts]
            else:
                assert isinstance(stmt.value, ast.Name)
                declared[target.id] = f":{stmt.value.id}"
    defined = {s.name for s in tree.body if isinstance(s, ast.FunctionDef)}
    expected = {name: getattr(_names.TABLE[name], namespace) for name in _offered(namespace)}
    for name, source in expected.items():
        if source == _names.HERE:
            assert name in defined or name in declared, f"{namespace} must define {name}"
            continue
        assert declared.get(name) == source, f"{namespace}.{name}: static {declared.get(name)}"
    extra = set(declared) - set(expected)
    assert not extra, f"the static block of {namespace} declares {extra}, not in the table"
    assert sorted(static_all) == sorted(expected), f"the static __all__ of {namespace}"


CONTEXTS = {
    "processes": ("workhorse._context", "ProcessContext"),
    "threads": ("workhorse._context", "ThreadContext"),
    "dask": ("workhorse._dask._context", "DaskContext"),
}


@pytest.mark.parametrize("flavour", CONTEXTS)
def test_context_names_match_the_table(flavour: str) -> None:
    """Each context has the table's names, with the flavour's objects, and its static block
    (for type checkers) declares the same ones."""
    module = importlib.import_module(CONTEXTS[flavour][0])
    cls = getattr(module, CONTEXTS[flavour][1])
    tree = _tree(module)
    (node,) = (s for s in tree.body if isinstance(s, ast.ClassDef) and s.name == cls.__name__)
    defined = {s.name for s in node.body if isinstance(s, ast.FunctionDef)}
    defined |= {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}  # type: ignore[union-attr]
    declared: dict[str, str] = {}
    for stmt in node.body:
        if isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            for assign in stmt.body:
                assert isinstance(assign, ast.Assign)
                target = assign.targets[0]
                assert isinstance(target, ast.Name)
                value = assign.value
                if isinstance(value, ast.Call):  # staticmethod(...)
                    value = value.args[0]
                if isinstance(value, ast.Name):
                    declared[target.id] = f":{value.id}"
                else:
                    assert isinstance(value, ast.Attribute)
                    assert isinstance(value.value, ast.Name)
                    private = getattr(module, value.value.id).__name__
                    declared[target.id] = "." + private.removeprefix("workhorse.")
    names = set(_names.context_names(flavour))
    for name in names:
        source = _names.TABLE[name].source(flavour)
        assert source is not None
        if name in defined:  # a method, or an instance attribute (ProcessContext.Process)
            continue
        assert source != _names.HERE, f"{cls.__name__} must define {name}"
        assert declared.get(name) == source, f"{cls.__name__}.{name}: static {declared.get(name)}"
        if not source.startswith(":"):
            flavour_obj = getattr(MODULES[flavour], name)
            assert getattr(cls, name) is flavour_obj, f"{cls.__name__}.{name}"
    assert set(declared) <= names, f"{cls.__name__} declares {set(declared) - names}"


def test_the_aliases_of_a_context_are_its_methods() -> None:
    ctx = workhorse.processes.get_context("spawn")
    assert ctx.Executor.__func__ is workhorse.ProcessContext.ProcessPoolExecutor  # type: ignore[attr-defined]
    assert workhorse.ThreadContext.Pool is workhorse.ThreadPool
    assert workhorse.ThreadContext().Pipe is workhorse.Pipe


# -- the registry of contexts --------------------------------------------------------------


def _registered() -> list[str]:
    return sorted(workhorse._context._registry)


def test_the_registry_knows_every_backend() -> None:
    assert set(_registered()) == {"processes", "threads", "dask"} | set(
        multiprocessing.get_all_start_methods()
    )


@pytest.mark.parametrize("name", [n for n in _registered() if n != "dask"])
def test_get_context_for_each_registered_name(name: str) -> None:
    ctx = workhorse.get_context(name)
    assert isinstance(ctx, workhorse.Context)
    for shared in _names.context_names("threads" if name == "threads" else "processes"):
        assert callable(getattr(ctx, shared)), shared
    if name not in ("processes", "threads"):
        assert isinstance(ctx, workhorse.ProcessContext)
        assert ctx.get_start_method() == name


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="needs Dask")
@pytest.mark.timeout(120)
def test_get_context_dask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    ctx: Any = workhorse.get_context("dask")
    try:
        assert type(ctx).__name__ == "DaskContext"
        assert ctx.cluster is not None  # embedded: nothing else to connect to
        for name in _names.context_names("dask"):
            assert callable(getattr(ctx, name)), name
        assert ctx.Lock().acquire(timeout=10)
    finally:
        ctx.close()


def test_get_context_dask_without_dask_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None\n"  # as if not installed
        "sys.modules['dask'] = None\n"
        "import workhorse\n"
        "try:\n"
        "    workhorse.get_context('dask')\n"
        "except ImportError as exc:\n"
        "    assert 'pip install \"workhorse[dask]\"' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_unknown_context_lists_the_known_ones() -> None:
    with pytest.raises(LookupError, match="unknown context 'gpu'") as info:
        workhorse.get_context("gpu")
    for name in _registered():
        assert repr(name) in str(info.value)


def test_register_context() -> None:
    made = workhorse.ThreadContext()
    workhorse._context.register_context("test-backend", lambda: made)
    try:
        assert workhorse.get_context("test-backend") is made
        with pytest.raises(ValueError, match="registered already"):
            workhorse._context.register_context("test-backend", lambda: made)
    finally:
        del workhorse._context._registry["test-backend"]


# -- importing stays cheap -----------------------------------------------------------------


def test_import_workhorse_imports_only_the_table() -> None:
    code = (
        "import sys, workhorse\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'workhorse'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert out.strip() == "['workhorse', 'workhorse._names']"
