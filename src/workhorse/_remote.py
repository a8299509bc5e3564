"""Exceptions crossing a process boundary: keep the type, the message and the traceback.

The child pickles the exception together with its traceback (tblib makes traceback objects
picklable), so the parent re-raises the *original type* with the child's frames in its
``__traceback__`` -- ``except ValueError`` keeps working and a debugger can walk the child's
frames -- and, as :mod:`concurrent.futures` does, the formatted traceback as ``__cause__`` (a
:class:`~workhorse.RemoteTraceback`) unless the exception has a cause of its own. A note
names the process it came from. An exception whose state cannot be pickled
but that can be re-created from its type and ``args`` (a frozen dataclass, say) is re-created
so, with the traceback as text in ``__cause__``. Anything else becomes
:class:`~workhorse.RemoteError` carrying the type name, the message and the formatted
traceback as ``__cause__`` (a :class:`~workhorse.RemoteTraceback`).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from tblib import pickling_support

from ._errors import RemoteError, RemoteTraceback
from ._serialize import dumps, loads

__all__ = ["dump_exception", "load_exception"]


def dump_exception(exc: BaseException, origin: str) -> bytes:
    """Pickle ``exc`` with its traceback; never raises (falls back to text)."""
    text = "".join(traceback.format_exception(exc))
    try:
        pickling_support.install(exc)
        blob = dumps(exc)
        loads(blob)  # catch exceptions that pickle but cannot be rebuilt, here and now
        return dumps(("exc", blob, origin, text))
    except BaseException:
        pass
    try:  # e.g. a frozen dataclass exception: its state cannot be set back, its args can
        blob = dumps((type(exc), exc.args))
        cls, args = loads(blob)
        if vars(cls(*args)) == vars(exc):  # nothing would be lost on the way
            return dumps(("args", blob, origin, text))
    except BaseException:
        pass
    summary = f"{type(exc).__qualname__}: {_safe_str(exc)}"
    return dumps(("text", summary, origin, text, _type_name(exc)))


def load_exception(
    data: bytes, traceback_type: Callable[[str], BaseException] = RemoteTraceback
) -> BaseException:
    """Rebuild an exception made by :func:`dump_exception` in another process.

    ``traceback_type`` makes its ``__cause__`` (the child's traceback as text): a pool face
    passes the stdlib's own class (``multiprocessing.pool.RemoteTraceback``,
    ``concurrent.futures.process._RemoteTraceback``), which code checks by type, with the
    stdlib's text layout."""
    if traceback_type is not RemoteTraceback:
        plain = traceback_type
        traceback_type = lambda text: plain(f'\n"""\n{text}"""')  # noqa: E731
    payload = loads(data)
    if payload[0] == "exc":
        _, blob, origin, text = payload
        try:
            exc: BaseException = loads(blob)
            if isinstance(exc, SystemExit) and exc.code is None and exc.args:
                # tblib rebuilds without calling __init__, which is what sets `code`
                exc.code = exc.args[0] if len(exc.args) == 1 else exc.args  # type: ignore[assignment]
            if exc.__cause__ is None:
                # As concurrent.futures does: the child's traceback, as text, is the cause,
                # so it prints even where the frames (kept in __traceback__) are not shown.
                _force(exc, "__cause__", traceback_type(text))
        except Exception as rebuild_error:
            exc = RemoteError(
                f"{text.strip().splitlines()[-1]} (could not be re-created: {rebuild_error})"
            )
            exc.__cause__ = traceback_type(text)
    elif payload[0] == "args":
        _, blob, origin, text = payload
        cls, args = loads(blob)
        exc = cls(*args)
        _force(exc, "__cause__", traceback_type(text))
    else:
        _, summary, origin, text, type_name = payload
        exc = RemoteError(f"{summary} (could not be sent between processes)", type_name)
        exc.__cause__ = traceback_type(text)
    _force(exc, "__notes__", [*getattr(exc, "__notes__", ()), f"[raised in {origin}]"])
    return exc


def _force(exc: BaseException, name: str, value: object) -> None:
    """Set an exception attribute even on a frozen dataclass exception, whose own
    ``__setattr__`` refuses (``BaseException``'s descriptors accept it)."""
    try:
        object.__setattr__(exc, name, value)
    except Exception:
        pass  # best effort: the exception itself matters more than its annotations


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<str() failed>"


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"
