"""Launching a child: the call it runs, pickled late, and the checks before any launch.

Under spawn and forkserver ``(target, args, kwargs)`` travel as one blob (:class:`_Call`),
made while the child is being launched so that pipes, sockets and stdlib multiprocessing
objects among the arguments still go through multiprocessing's own reducers; what the stdlib
cannot pickle (lambdas, closures) falls back on workhorse's pickler. See :mod:`._process`.
"""

from __future__ import annotations

import io
import os
import sys
from multiprocessing import current_process
from multiprocessing.context import get_spawning_popen
from multiprocessing.reduction import ForkingPickler
from typing import Any, cast

from ._errors import SerializationError
from ._serialize import PROTOCOL, _Fallback, describe_type, loads, locate_unpicklable

__all__ = ["FRESH_METHODS", "check_not_bootstrapping", "main_importable"]

FRESH_METHODS = ("spawn", "forkserver")  # children that import the main script again


class _Call:
    """``(target, args, kwargs)``, pickled only while the child is being launched (so that
    pipes and sockets among the arguments travel with the launch, as with the stdlib)."""

    __slots__ = ("blob", "call", "main_by_value", "owner")

    def __init__(
        self, call: tuple[Any, tuple[Any, ...], dict[str, Any]], owner: str, main_by_value: bool
    ) -> None:
        self.call: tuple[Any, tuple[Any, ...], dict[str, Any]] | None = call
        self.blob: bytes | None = None
        self.owner, self.main_by_value = owner, main_by_value

    def __reduce__(self) -> tuple[Any, ...]:
        assert self.call is not None
        return (_Call._from_blob, (_dumps_call(self.call, self.owner, self.main_by_value),))

    @staticmethod
    def _from_blob(blob: bytes) -> _Call:
        self = _Call.__new__(_Call)
        self.call, self.blob, self.owner, self.main_by_value = None, blob, "", False
        return self

    def load(self) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        # Unpickled inside the child's run(), so an import error becomes the result.
        if self.call is None:
            assert self.blob is not None
            self.call = loads(self.blob)
        return self.call


def _pickle(obj: object, main_by_value: bool = False) -> bytes:
    """The stdlib's pickler (by reference) first, workhorse's fallback for the rest."""
    buf = io.BytesIO()
    if not main_by_value:
        # A failed attempt may already have handed descriptors (pipe ends, sockets, shared
        # ctypes' arenas) to the launching child; the second would hand them again, and a
        # descriptor passed twice fails the launch ("bad value(s) in fds_to_keep").
        passed = getattr(get_spawning_popen(), "_fds", None)
        before = None if passed is None else len(passed)
        try:
            ForkingPickler(buf, PROTOCOL).dump(obj)
            return buf.getvalue()
        except Exception:
            buf = io.BytesIO()
            if passed is not None:
                del passed[before:]
    _Fallback(buf, main_by_value, None).dump(obj)
    return buf.getvalue()


def _picklable(obj: object) -> bool:
    try:
        _pickle(obj)
    except Exception:
        return False
    return True


def _dumps_call(
    call: tuple[Any, tuple[Any, ...], dict[str, Any]], owner: str, main_by_value: bool
) -> bytes:
    try:
        return _pickle(call, main_by_value)
    except Exception as exc:
        target, args, kwargs = call
        parts = [("target", target)] + [(f"args[{i}]", a) for i, a in enumerate(args)]
        parts += [(f"kwargs[{k!r}]", v) for k, v in kwargs.items()]
        where, culprit = "the arguments", cast(object, call)
        for name, part in parts:
            if not _picklable(part):
                where, culprit = locate_unpicklable(part, name, _picklable)
                break
        message = (
            f"cannot pickle {where} of type {describe_type(culprit)} for {owner}: "
            f"{type(exc).__name__}: {exc}"
        )
        raise SerializationError.wrapping(exc, message) from exc


def main_importable() -> bool:
    """Whether a spawn or forkserver child can import the main script again (it cannot when
    the script came from stdin, ``-c`` or an interactive session): if not, main-script
    functions must travel by value."""
    main = sys.modules.get("__main__")
    if main is None:
        return False
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None):
        return True
    path = getattr(main, "__file__", None)
    return isinstance(path, str) and os.path.isfile(path)


def check_not_bootstrapping(method: str, what: str) -> None:
    """Refuse to start ``what`` under spawn or forkserver where its child could not start:
    while this process, such a child itself, is still importing the main script (the
    stdlib raises a 20-line message), or when the main script was read from stdin (the
    stdlib's child fails with ``FileNotFoundError: '<stdin>'``)."""
    if method not in FRESH_METHODS:
        return
    if getattr(current_process(), "_inheriting", False):
        raise RuntimeError(
            f"cannot start {what} while the main module is being imported by a {method} "
            f"child: put the code that starts processes under `if __name__ == '__main__':`"
        )
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if isinstance(path, str) and path.startswith("<") and not main_importable():
        raise RuntimeError(
            f"cannot start {what} with the {method!r} start method: its child imports the "
            f"main script again, and this one ({path}) has no file; use the 'fork' start "
            f"method or run the script from a file"
        )
