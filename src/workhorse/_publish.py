"""Applies the table of :mod:`workhorse._names`: binds each flavour's names into its public
module and its context class, and gives public classes their public ``__module__``.

Apart from ``_names`` (which ``import workhorse`` imports, and so keeps small), because
only the public modules need this, once they are imported.

Example::

    __all__ = fill(globals(), "threads")     # in workhorse/threads.py
    publish()
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any, Final

from ._names import HERE, PROCESSES, TABLE, THREADS, Entry, context_names, public


def _value(source: str, name: str) -> object:
    return getattr(importlib.import_module(source, "workhorse"), name)


def fill(namespace: MutableMapping[str, Any], flavour: str) -> list[str]:
    """Bind the names of ``flavour`` into its public module's ``namespace`` (globals),
    except those the module defines itself; return its ``__all__``.

    Example::

        __all__ = fill(globals(), "processes")
    """
    names = public(flavour)
    aliases = []
    for name in names:
        source = TABLE[name].source(flavour)
        assert source is not None
        if source.startswith(":"):
            aliases.append((name, source[1:]))
        elif source != HERE:
            namespace[name] = _value(source, name)
    for name, other in aliases:
        namespace[name] = namespace[other]
    return names


def bind(cls: type, flavour: str) -> None:
    """Give the context class ``cls`` the names of ``flavour``'s context: the flavour's
    object, unless ``cls`` defines (or annotates) the name itself.

    Functions become static methods, so ``ctx.Pipe()`` calls ``Pipe()``; an alias
    (``:Other``) is ``cls``'s own ``Other``: a method stays a method.

    Example::

        bind(ThreadContext, "threads")   # ThreadContext.Lock is threads.Lock ...
    """
    own = vars(cls)  # a live view: the aliases below see the names bound before them
    annotated = cls.__annotations__
    aliases = []
    for name in context_names(flavour):
        source = TABLE[name].source(flavour)
        assert source is not None
        if name in own or name in annotated:
            continue
        if source == HERE:
            raise TypeError(f"{cls.__qualname__} must define {name} (see workhorse._names)")
        if source.startswith(":"):
            aliases.append((name, source[1:]))
            continue
        value = _value(source, name)
        if not isinstance(value, type) and callable(value):
            value = staticmethod(value)
        setattr(cls, name, value)
    for name, other in aliases:
        setattr(cls, name, own[other])


#: The namespaces, in the order they claim a class as theirs, and their public module.
_OWNERS: Final = {
    "workhorse": "workhorse",
    "processes": "workhorse.processes",
    "threads": "workhorse.threads",
}


def _defined_in(entry: Entry, namespace: str) -> str | None:
    """The private module ``workhorse._x`` whose attribute ``entry.name`` the namespace
    offers (``None``: a stdlib object, or one the public module defines itself)."""
    source = entry.source(namespace)
    if namespace == "workhorse" and source in (PROCESSES, THREADS):
        source = entry.source(source[1:])
    if source is None or not source.startswith("._"):
        return None
    return f"workhorse{source}"


def _claims() -> Iterator[tuple[Any, str, str]]:
    """(object, public module, public name) of each public class or function whose private
    module is imported, each object once: the first namespace to offer it claims it."""
    seen: set[int] = set()
    for namespace, owner in _OWNERS.items():
        for entry in TABLE.values():
            private = _defined_in(entry, namespace)
            obj = getattr(sys.modules.get(private or ""), entry.name, None)
            if id(obj) in seen or not (isinstance(obj, type) or callable(obj)):
                continue
            seen.add(id(obj))
            if str(getattr(obj, "__module__", "")).startswith("workhorse."):
                yield obj, owner, entry.name


def publish() -> None:
    """Give each public class (and function) that is imported its public ``__module__`` and
    ``__qualname__``: ``workhorse.Lock`` is ``workhorse.Lock`` in a pickle, a repr and a
    traceback, not ``workhorse._sync.Lock``.

    Called when a public module is imported and when the top level resolves a name; cheap
    and idempotent. A class the top level offers is ``workhorse``'s; the thread flavour's
    own ones are ``workhorse.threads``'s, which is then imported, so that pickle (and
    cloudpickle, which wants the module loaded) finds them there.

    Example::

        publish()
        assert workhorse.Lock.__module__ == "workhorse"
    """
    claims = list(_claims())
    for _, module, _ in claims:
        if module not in sys.modules:
            importlib.import_module(module)  # its own publish() does the rest
            return
    for obj, module, name in claims:
        if obj.__module__ != module:
            obj.__module__ = module
        if getattr(obj, "__qualname__", name) != name:
            obj.__qualname__ = name
