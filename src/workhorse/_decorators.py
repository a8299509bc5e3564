"""``@workhorse.process`` and ``@workhorse.thread``: a function whose calls run on a pool and
return futures (pebble's habit), with the pools' options.

Example::

    @workhorse.process(timeout=5)
    def render(page):
        ...

    future = render(3)              # a concurrent.futures.Future, at once
    image = future.result()         # TaskTimeout if it ran past 5 s: its worker was killed

Every decorated function of a kind (and worker count, and start method) shares one pool,
created on the first call and shut down at exit, so decorating many functions starts no more
workers than one pool would; each function's own options (``timeout``, ``retries``,
``retry_on``, ``cancel_running``) are a ``with_options`` view of it. Unlike pebble's, a call does
not start a process of its own: workers are reused, and a worker that crashes, times out or is
cancelled is replaced. ``cancel_running`` defaults to True here (``future.cancel()`` stops a
running call), as pebble's futures do.

A decorated function stays importable by its name: its calls are sent to the workers as a
reference to the decorated object (whose ``__wrapped__`` they call), so the worker does not
submit the call again, and lambdas and closures are sent by value as any task is.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import MethodType
from typing import Any, Generic, ParamSpec, TypeVar, overload

from ._config import RetryOn
from ._executor import ProcessPoolExecutor, ThreadPoolExecutor

__all__ = ["Decorated", "process", "shutdown_pools", "thread"]

P = ParamSpec("P")
R = TypeVar("R")

_pools: dict[tuple[str, int | None, Any], ProcessPoolExecutor | ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _shared_pool(
    kind: str, max_workers: int | None, mp_context: Any
) -> ProcessPoolExecutor | ThreadPoolExecutor:
    """The pool of ``kind`` every decorated function with these settings shares."""
    key = (kind, max_workers, mp_context)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            if kind == "process":
                pool = ProcessPoolExecutor(max_workers, mp_context=mp_context)
            else:
                pool = ThreadPoolExecutor(max_workers, thread_name_prefix="workhorse.thread")
            _pools[key] = pool
        return pool


def shutdown_pools() -> None:
    """Shut the shared pools down (tests; a program leaves them to its exit, as it does a
    pool it never closes). The next decorated call starts a new pool."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True)


class Decorated(Generic[P, R]):
    """A function whose calls run on a shared pool and return futures (see the module
    docstring); ``__wrapped__`` is the function itself, to call it here.

    Example::

        future = render(3)
        image = render.__wrapped__(3)   # in this thread, no pool
    """

    __name__: str
    __qualname__: str
    __wrapped__: Callable[P, R]

    def __init__(
        self, fn: Callable[P, R], kind: str, options: dict[str, Any], max_workers: int | None,
        mp_context: Any,
    ) -> None:  # fmt: skip
        if not callable(fn):
            raise TypeError(f"@workhorse.{kind} needs a callable, not {type(fn).__name__}")
        functools.update_wrapper(self, fn)
        self.__wrapped__ = fn
        self._kind, self._options = kind, options
        self._max_workers, self._mp_context = max_workers, mp_context
        self._view: Any = None
        self._body = _Body(self)  # one object: the workers cache it like any function

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        pool = _shared_pool(self._kind, self._max_workers, self._mp_context)
        view = self._view
        if view is None or view._owner is not pool:
            view = self._view = pool.with_options(**self._options)
        return view.submit(self._body, *args, **kwargs)  # type: ignore[no-any-return]

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        # A decorated method: bind like a function, the instance going as the first argument.
        return self if instance is None else MethodType(self, instance)

    def __repr__(self) -> str:
        return f"<workhorse.{self._kind} {self.__wrapped__!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        module, name = getattr(self, "__module__", None), getattr(self, "__qualname__", "")
        try:
            found = _lookup(module, name) if module else None
        except (ImportError, AttributeError):
            found = None
        if found is self:  # importable by name: the worker imports it too
            return (_lookup, (module, name))
        return (_call_target, (self.__wrapped__,))


def _lookup(module: str, qualname: str) -> Any:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def _call_target(fn: Callable[..., Any]) -> Callable[..., Any]:
    return fn


class _Body:
    """What the workers run for a decorated function: its own body, not another submit
    (named as the function, for the pool's messages)."""

    def __init__(self, target: Decorated[Any, Any] | Callable[..., Any]) -> None:
        self.target = target
        self.__qualname__ = getattr(target, "__qualname__", type(target).__qualname__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.target, "__wrapped__", self.target)
        return fn(*args, **kwargs)


def _decorator(
    kind: str, fn: Callable[P, R] | None, options: dict[str, Any], max_workers: int | None,
    mp_context: Any,
) -> Any:  # fmt: skip
    if max_workers is not None and (
        isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
    ):
        raise ValueError(f"max_workers must be a positive int, not {max_workers!r}")
    # The options are checked now, not at the first call (one throwaway view of no pool).
    from ._options import TaskOptions

    TaskOptions(**options)

    def decorate(function: Callable[P, R]) -> Decorated[P, R]:
        return Decorated(function, kind, options, max_workers, mp_context)

    return decorate if fn is None else decorate(fn)


@overload
def process(
    fn: Callable[P, R], /, *, timeout: float | None = None, retries: int = 0,
    retry_on: RetryOn = (Exception,), cancel_running: bool = True,
    max_workers: int | None = None, mp_context: Any = None,
) -> Decorated[P, R]: ...  # fmt: skip
@overload
def process(
    *, timeout: float | None = None, retries: int = 0, retry_on: RetryOn = (Exception,),
    cancel_running: bool = True, max_workers: int | None = None, mp_context: Any = None,
) -> Callable[[Callable[P, R]], Decorated[P, R]]: ...  # fmt: skip
def process(
    fn: Callable[P, R] | None = None, /, *, timeout: float | None = None, retries: int = 0,
    retry_on: RetryOn = (Exception,), cancel_running: bool = True,
    max_workers: int | None = None, mp_context: Any = None,
) -> Any:  # fmt: skip
    """Decorate a function so that each call runs in a worker process and returns a future.

    ``timeout``, ``retries``, ``retry_on`` and ``cancel_running`` are the pools' options (a
    task past its ``timeout`` has its worker killed and fails with ``TaskTimeout``);
    ``max_workers`` and ``mp_context`` choose the shared :class:`ProcessPoolExecutor` the calls
    run on. Used bare (``@workhorse.process``) or with options.

    Example::

        @workhorse.process(timeout=60, retries=2)
        def fetch(url):
            ...

        pages = [fetch(url) for url in urls]        # futures, running at once
        print([page.result() for page in pages])
    """
    options = {
        "timeout": timeout, "retries": retries, "retry_on": retry_on,
        "cancel_running": cancel_running,
    }  # fmt: skip
    return _decorator("process", fn, options, max_workers, mp_context)


@overload
def thread(
    fn: Callable[P, R], /, *, timeout: float | None = None, retries: int = 0,
    retry_on: RetryOn = (Exception,), cancel_running: bool = True,
    max_workers: int | None = None,
) -> Decorated[P, R]: ...  # fmt: skip
@overload
def thread(
    *, timeout: float | None = None, retries: int = 0, retry_on: RetryOn = (Exception,),
    cancel_running: bool = True, max_workers: int | None = None,
) -> Callable[[Callable[P, R]], Decorated[P, R]]: ...  # fmt: skip
def thread(
    fn: Callable[P, R] | None = None, /, *, timeout: float | None = None, retries: int = 0,
    retry_on: RetryOn = (Exception,), cancel_running: bool = True,
    max_workers: int | None = None,
) -> Any:  # fmt: skip
    """Decorate a function so that each call runs in a worker thread and returns a future.

    The options are :func:`process`'s; a thread cannot be killed, so a call past its
    ``timeout`` (or cancelled while it runs) fails on time and its thread is asked to stop at
    its next workhorse call and replaced.

    Example::

        @workhorse.thread(timeout=10)
        def ping(host):
            ...

        alive = [f.result() for f in [ping(h) for h in hosts]]
    """
    options = {
        "timeout": timeout, "retries": retries, "retry_on": retry_on,
        "cancel_running": cancel_running,
    }  # fmt: skip
    return _decorator("thread", fn, options, max_workers, None)
