"""Stand-ins for stdlib modules: workhorse's object for every name it has, the stdlib's else.

The CPython suites are run the way a user would run their own code after the drop-in
replacement: ``import multiprocessing as mp`` became ``import workhorse.processes as mp``,
``concurrent.futures``' executors became workhorse's, ``threading``'s primitives became
``workhorse.threads``'. A name the stdlib module exports (its ``__all__``) is taken from
workhorse when workhorse exports it too (its ``__all__``), and from the stdlib otherwise, so
the harness runs today and picks up every name workhorse adds, with no change here.

Everything that is not a public name of the stdlib module -- ``multiprocessing.process``,
``.util``, ``.connection``, ``.managers``, private helpers -- falls through to the real
module: the tests use those for their own bookkeeping, and a user's code that imports
``multiprocessing.connection`` keeps getting the stdlib's.

Which stdlib names were used for lack of a workhorse one is recorded in :data:`FALLBACKS`
(in this process: children are not counted) and printed at the end of the session.

``WORKHORSE_CPYTHON_STDLIB_NAMES=a,b`` takes those names from the stdlib although workhorse
has them: a diagnosis aid, to see what fails behind a failure that stops a whole module.

``WORKHORSE_CPYTHON_BASELINE=stdlib`` switches the substitution off: the same harness then
runs the suites against the stdlib, which is how tests that fail on this machine whatever
the implementation are found (``exclusions.toml``, category ``stdlib-fails``).
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Callable
from typing import Any

BASELINE = os.environ.get("WORKHORSE_CPYTHON_BASELINE", "") == "stdlib"
# Diagnosis only: names taken from the stdlib even though workhorse has them, to see what
# fails behind a failure that stops a whole module (e.g. "get_start_method").
FORCED = {n for n in os.environ.get("WORKHORSE_CPYTHON_STDLIB_NAMES", "").split(",") if n}

# stdlib module name -> its public names the tests used because workhorse lacks them
FALLBACKS: dict[str, set[str]] = {}


def _record(module: str, name: str) -> None:
    FALLBACKS.setdefault(module, set()).add(name)


def provided(stdlib: types.ModuleType, workhorse: types.ModuleType) -> dict[str, Any]:
    """The public names of ``stdlib`` that ``workhorse`` exports, with workhorse's objects."""
    if BASELINE:
        return {}
    ours = set(getattr(workhorse, "__all__", ())) - FORCED
    return {name: getattr(workhorse, name) for name in stdlib.__all__ if name in ours}


class Standin(types.ModuleType):
    """``stdlib`` with workhorse's objects for the public names workhorse exports.

    Attribute lookups of names workhorse does not provide fall through to ``stdlib`` (the
    public ones are recorded as fallbacks). Idempotent: a stand-in of a stand-in is itself.
    """

    def __init__(self, stdlib: types.ModuleType, workhorse: types.ModuleType) -> None:
        super().__init__(stdlib.__name__, stdlib.__doc__)
        self.__dict__["_standin_of"] = stdlib
        self.__dict__.update(provided(stdlib, workhorse))

    def __getattr__(self, name: str) -> Any:
        stdlib: types.ModuleType = self.__dict__["_standin_of"]
        value = getattr(stdlib, name)
        if name in stdlib.__all__:
            _record(stdlib.__name__, name)
        return value

    def __repr__(self) -> str:
        return f"<workhorse stand-in for module {self.__name__!r}>"


def standin(stdlib: types.ModuleType, workhorse: types.ModuleType) -> types.ModuleType:
    """The stand-in for ``stdlib`` (``stdlib`` itself in the baseline run)."""
    if BASELINE or isinstance(stdlib, Standin):
        return stdlib
    return Standin(stdlib, workhorse)


def pick(stdlib: types.ModuleType, workhorse: types.ModuleType, name: str) -> Any:
    """``name`` from workhorse if it exports it, else the stdlib's (recorded)."""
    ours = provided(stdlib, workhorse)
    if name in ours:
        return ours[name]
    if not BASELINE:
        _record(stdlib.__name__, name)
    return getattr(stdlib, name)


def recording(module: str, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func``, recording ``module.name`` as a fallback each time it is called."""

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        _record(module, name)
        return func(*args, **kwargs)

    return call
