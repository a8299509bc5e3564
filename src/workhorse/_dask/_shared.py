"""What every Dask-backed primitive shares: a cluster-wide name and one handle per process.

A primitive is its name on the scheduler. It pickles to its class, name and parameters, so it
can be passed to tasks (or put in a queue) and used from the client and from any task on any
worker; unpickled, it binds to the Dask client of the process (the worker's client in a task,
the client of the latest ``workhorse.dask()`` context elsewhere). Handles are unique per
process (a registry by name), so state kept in the handle -- an ``RLock``'s owner, a Dask
``Semaphore``'s leases -- is the same whichever path the object took to get there.

Example::

    lock = cluster.Lock()
    pool.submit(work, lock)   # the task's `lock` is the same lock on the cluster
"""

from __future__ import annotations

import threading
import uuid
import weakref
from typing import Any, ClassVar

__all__ = ["Shared", "set_default_client"]

_PROBES = frozenset({"_is_coroutine", "_ipython_display_", "_repr_html_", "_fields"})
_default_client: Any = None
_handles: weakref.WeakValueDictionary[str, Shared] = weakref.WeakValueDictionary()
_handles_lock = threading.Lock()


def set_default_client(client: Any) -> Any:
    """The client primitives bind to outside tasks (set by each ``workhorse.dask()``);
    returns the previous one, which the context puts back when it closes."""
    global _default_client
    previous, _default_client = _default_client, client
    return previous


def restore_default_client(closing: Any, previous: Any) -> None:
    """Put ``previous`` back if ``closing`` is still the default (contexts may nest)."""
    global _default_client
    if _default_client is closing:
        _default_client = previous


def client_here() -> Any:
    """The Dask client of this process: the worker's in a task, else the context's."""
    from distributed import get_client

    try:
        return get_client()
    except ValueError:
        if _default_client is None:
            raise RuntimeError(
                "a workhorse Dask primitive was used outside a Dask task and outside a "
                "workhorse.dask() context: there is no cluster to reach"
            ) from None
        return _default_client


class Shared:
    """Base of the Dask primitives: ``name``, the client, pickling by name.

    Subclasses implement ``_attach(params)`` (make the Dask objects, no side effects: it also
    runs when a handle is unpickled) and ``_params()`` (what ``_attach`` needs).
    """

    kind: ClassVar[str] = "primitive"
    name: str
    _client: Any

    def _bind(self, name: str | None, client: Any) -> None:
        self.name = name or f"workhorse-{self.kind}-{uuid.uuid4().hex}"
        self._client = client if client is not None else client_here()
        self._attach(self._params())
        with _handles_lock:
            _handles[self.name] = self

    def _attach(self, params: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def __getattr__(self, attribute: str) -> Any:
        # Only called for attributes not set yet: those _attach makes, on an unpickled handle.
        # Dask probes objects for protocols (``__dask_future__``, ``_is_coroutine``...), maybe
        # on an event loop, where binding would ask for a client synchronously: never for those.
        if attribute.startswith("__") or attribute in _PROBES:
            raise AttributeError(attribute)
        params = self.__dict__.pop("_unbound", None)
        if params is None:
            raise AttributeError(attribute)
        self._client = client_here()
        self._attach(params)
        return getattr(self, attribute)

    def _params(self) -> tuple[Any, ...]:
        return ()

    def __reduce__(self) -> tuple[Any, ...]:
        # An unbound handle pickles from what it was unpickled with: a process with no client
        # -- the Dask scheduler, which unpickles a task's arguments and pickles them again for
        # the worker -- must never bind (on its event loop that would hang it for good).
        params = self.__dict__.get("_unbound")
        return (_rebuild, (type(self), self.name, self._params() if params is None else params))

    def __repr__(self) -> str:
        return f"<workhorse.dask {type(self).__name__} {self.name!r}>"


def _rebuild(cls: type[Shared], name: str, params: tuple[Any, ...]) -> Shared:
    with _handles_lock:
        found = _handles.get(name)
        if found is not None:
            return found
        handle = cls.__new__(cls)
        handle.name = name
        # Dask unpickles task arguments on the worker's event loop, outside any task, where no
        # client can be had yet: bind at first use (see Shared.__getattr__).
        handle.__dict__["_unbound"] = params
        _handles[name] = handle
        return handle
