"""Turning objects into bytes and back, for every process boundary workhorse crosses.

The rule is the stdlib's first: the C pickler, which pickles functions and classes *by
reference* (module and name). So a function defined in the main script reaches a worker as
``__main__.f`` and runs there with the worker's module globals -- the idiom of an
``initializer`` that sets a global which the tasks then read works as with the stdlib.

Only what the stdlib cannot pickle goes through cloudpickle, which pickles it by value:
lambdas, closures, functions defined inside other functions or in an interactive session.
Even then, a function of the main script that such an object refers to stays a reference.
One more case goes by value: when the receiver cannot import the main script at all
(``main_by_value=True``: a spawn or forkserver child of a script read from stdin, ``-c`` or
an interactive session), where the stdlib would fail.

cloudpickle is used with three differences (:class:`_Fallback`): code objects keep their
file name, so a remote traceback names the real file and line (cloudpickle writes
``<dynamic-code>``); open text files are refused as the stdlib refuses them (cloudpickle
would send a ``StringIO`` copy of their content); and main-script functions stay references.

Errors are raised here, in the caller, naming what could not be pickled and where it sits
(``args[0][3] of type _thread.lock``): the stdlib's queues pickle in a feeder thread and drop
the item with a message on stderr.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
from collections import ChainMap
from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler
from typing import Any, ClassVar

import cloudpickle

from ._errors import SerializationError

__all__ = [
    "PROTOCOL",
    "describe_type",
    "dumps",
    "dumps_out_of_band",
    "fallback_dumps",
    "loads",
    "locate_unpicklable",
    "unpicklable",
    "unpicklable_result",
]

PROTOCOL = 5


def dumps(obj: object, *, what: str = "object", main_by_value: bool = False) -> bytes:
    """Pickle ``obj`` (C pickler, else cloudpickle); raise :class:`SerializationError` naming
    ``what``, the culprit's type and where it sits.

    ``main_by_value``: the receiver cannot import the main script, so main-script functions
    and classes must travel by value.
    """
    if not main_by_value or not _mentions_main(obj):
        try:
            return pickle.dumps(obj, PROTOCOL)
        except Exception:  # the C pickler refused; cloudpickle may not
            pass
    try:
        return fallback_dumps(obj, main_by_value=main_by_value)
    except Exception as exc:
        raise unpicklable(obj, what, exc) from exc  # the cause is set either way


def unpicklable_result(fn: Any, value: object, exc: BaseException) -> BaseException:
    """What the task's future gets: the error pickling raised, as the stdlib delivers it
    (a ``SystemExit`` itself; otherwise a ``SerializationError`` of that type too)."""
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    reason = str(exc) if isinstance(exc, SerializationError) else f"{type(exc).__name__}: {exc}"
    original = exc.__cause__ if isinstance(exc, SerializationError) and exc.__cause__ else exc
    message = f"the result of task {name} (of type {kind}) could not be pickled in the worker: "
    return SerializationError.wrapping(original, message + reason)


def dumps_out_of_band(
    obj: object, threshold: int, *, what: str = "object", main_by_value: bool = False
) -> tuple[bytes, list[memoryview]]:
    """Pickle ``obj`` as :func:`dumps` does, but with every contiguous buffer of at least
    ``threshold`` bytes (a NumPy array's data, a ``PickleBuffer``) left out of the stream:
    returns the stream and those buffers, in the order ``pickle.loads(stream, buffers=...)``
    wants them back. Nothing is copied for them here."""
    raws: list[memoryview] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        try:
            raw = buffer.raw()
        except BufferError:  # not contiguous: pickled in-band
            return True
        if raw.nbytes < max(threshold, 1):
            return True
        raws.append(raw)
        return False

    if not main_by_value:
        try:
            return pickle.dumps(obj, PROTOCOL, buffer_callback=out_of_band), raws
        except Exception:  # the C pickler refused; cloudpickle may not
            raws.clear()
    try:
        stream = fallback_dumps(obj, main_by_value=main_by_value, buffer_callback=out_of_band)
    except Exception as exc:
        raise unpicklable(obj, what, exc) from exc
    return stream, raws


def loads(data: bytes | bytearray | memoryview) -> Any:
    """Unpickle bytes made by :func:`dumps` (cloudpickle output is plain pickle data)."""
    return pickle.loads(data)


def fallback_dumps(
    obj: object,
    *,
    main_by_value: bool = False,
    buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None,
) -> bytes:
    """Pickle ``obj`` with cloudpickle, with workhorse's three differences (module docstring)."""
    out = io.BytesIO()
    _Fallback(out, main_by_value, buffer_callback).dump(obj)
    return out.getvalue()


def unpicklable(obj: object, what: str, exc: BaseException) -> BaseException:
    """The error for ``obj`` (named ``what``) that failed to pickle with ``exc``: a
    :class:`SerializationError` that is also of ``exc``'s type (see its docstring)."""
    where, culprit = locate_unpicklable(obj, what)
    reason = f"{type(exc).__name__}: {exc}"
    if culprit is obj:
        message = f"cannot pickle {what} of type {describe_type(obj)}: {reason}"
    else:
        message = (
            f"cannot pickle {what}: {where} of type {describe_type(culprit)} cannot be "
            f"pickled ({reason})"
        )
    return SerializationError.wrapping(exc, message)


def describe_type(obj: object) -> str:
    """``module.Qualname`` of ``obj``'s type (``Qualname`` for builtins)."""
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def locate_unpicklable(
    obj: object, name: str, picklable: Callable[[object], bool] | None = None
) -> tuple[str, object]:
    """The innermost part of ``obj`` that cannot be pickled (``picklable`` says; default:
    what :func:`dumps` accepts), and its path from ``name`` (``args[0][3]``,
    ``kwargs['data'].lock`` ...). Only called on the error path."""
    check = _picklable if picklable is None else picklable
    path, current = name, obj
    for _ in range(32):  # deep enough for real data, bounded for pathological graphs
        for label, part in _parts(current):
            if not check(part):
                path, current = path + label, part
                break
        else:
            return path, current
    return path, current


def _parts(obj: object) -> list[tuple[str, object]]:
    """The directly contained objects of ``obj`` a pickler would visit, with their labels."""
    if isinstance(obj, (str, bytes, bytearray, int, float, complex, bool, type(None))):
        return []
    if isinstance(obj, dict):
        return [(f"[{k!r}]", v) for k, v in obj.items()] + [(" (a key)", k) for k in obj]
    if isinstance(obj, (list, tuple)):
        return [(f"[{i}]", v) for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return [(" (an element)", v) for v in obj]
    if isinstance(obj, types.FunctionType):
        cells = [c.cell_contents for c in obj.__closure__ or () if _filled(c)]
        return [(" (a closure variable)", v) for v in cells]
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        return [(f".{k}", v) for k, v in state.items()]
    return []


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def _picklable(obj: object) -> bool:
    try:
        pickle.dumps(obj, PROTOCOL)
        return True
    except Exception:
        pass
    try:
        fallback_dumps(obj)
        return True
    except Exception:
        return False


def _mentions_main(obj: object) -> bool:
    """Whether pickling ``obj`` would refer to the main script (checked with a pickler that
    stops at the first such reference)."""
    try:
        _MainSpy(io.BytesIO(), PROTOCOL).dump(obj)
    except _MainFound:
        return True
    except Exception:
        return False  # unpicklable anyway: the fallback decides
    return False


class _MainFound(Exception):
    pass


class _MainSpy(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if getattr(obj, "__module__", None) in ("__main__", "__mp_main__") and isinstance(
            obj, (type, types.FunctionType)
        ):
            raise _MainFound
        if getattr(type(obj), "__module__", None) in ("__main__", "__mp_main__"):
            raise _MainFound
        return NotImplemented


def _refuse_file(obj: object) -> Any:
    # The stdlib's error, word for word: a file handle is not data (cloudpickle would read
    # the file and send a StringIO copy of it, silently).
    raise TypeError(f"cannot pickle '{type(obj).__module__}.{type(obj).__qualname__}' object")


def _code_reduce(code: types.CodeType) -> Any:
    # cloudpickle's reducer, with the real file name put back in place of "<dynamic-code>".
    rebuild, args = cloudpickle.cloudpickle._code_reduce(code)
    args = tuple(code.co_filename if arg == "<dynamic-code>" else arg for arg in args)
    return rebuild, args


def _main_global(obj: object) -> bool:
    """``obj`` is a function or class of the main script, reachable there by its name."""
    if not isinstance(obj, (type, types.FunctionType)):
        return False
    if getattr(obj, "__module__", None) not in ("__main__", "__mp_main__"):
        return False
    qualname = getattr(obj, "__qualname__", "")
    if "<" in qualname:  # <locals>, <lambda>
        return False
    found: Any = sys.modules.get(obj.__module__)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is obj


class _Fallback(cloudpickle.Pickler):  # type: ignore[misc]
    # multiprocessing's reducers too (connections, sockets, shared ctypes' arenas...): what
    # the stdlib's ForkingPickler can pickle, this can.
    dispatch_table: ClassVar[ChainMap[type, Any]] = ChainMap(
        {types.CodeType: _code_reduce, io.TextIOWrapper: _refuse_file},
        ForkingPickler._extra_reducers,  # type: ignore[attr-defined]
        cloudpickle.Pickler.dispatch_table,
    )

    def __init__(
        self,
        file: io.BytesIO,
        main_by_value: bool,
        buffer_callback: Callable[[pickle.PickleBuffer], Any] | None,
    ) -> None:
        super().__init__(file, PROTOCOL, buffer_callback=buffer_callback)
        self._main_by_value = main_by_value

    def reducer_override(self, obj: Any) -> Any:
        if not self._main_by_value and _main_global(obj):
            return NotImplemented  # by reference, as the C pickler does
        return super().reducer_override(obj)
