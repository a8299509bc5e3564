"""One pool's configuration, validated once: what every pool face builds before anything runs.

``Pool``, ``ThreadPool``, ``ProcessPoolExecutor``, ``ThreadPoolExecutor`` and the Dask faces
take the stdlib's arguments under the stdlib's names (``processes``/``max_workers``,
``maxtasksperchild``/``max_tasks_per_child``, ``context``/``mp_context``) plus workhorse's
extras. Each face hands them to :meth:`PoolConfig.build` with the name it uses, so every
argument is checked in one place, with one wording that names the argument as the caller
wrote it; the backend (see :mod:`._registry`) is then made from the config alone.

Example::

    config = PoolConfig.build(default_backend="processes", workers=("processes", 4),
                              default_workers=2, timeout=5)
    assert config.workers == 4 and config.options.timeout == 5.0
"""

from __future__ import annotations

import inspect
import multiprocessing
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ForwardRef, TypedDict, TypeVar

from ._options import (
    Progress,
    TaskOptions,
    check_chunksize,
    check_initializer,
    check_max_tasks,
    check_progress,
    check_seconds,
    check_workers,
)
from ._process import check_not_bootstrapping
from ._registry import backend_names
from ._trace import check_trace

__all__ = [
    "BACKEND_ENV",
    "DaskExecutorExtras",
    "DaskPoolExtras",
    "ExecutorViewOptions",
    "Face",
    "PoolConfig",
    "PoolExtras",
    "ProcessPoolExecutorExtras",
    "ThreadPoolExecutorExtras",
    "ThreadPoolExtras",
    "ViewOptions",
    "check_keywords",
    "spelled_out",
    "takes_extras",
]

#: Names a backend for every pool created without ``backend=`` (joblib's habit: switch a
#: whole program to ``serial`` to debug it with pdb, without editing it).
BACKEND_ENV = "WORKHORSE_BACKEND"
RetryOn = type[BaseException] | tuple[type[BaseException], ...]
F = TypeVar("F", bound=Callable[..., Any])


# The keyword arguments the faces take beyond the stdlib's, declared once: each face's
# ``__init__`` takes ``**extras: Unpack[...]`` (type checkers see every name and type),
# :func:`spelled_out` lists them in its signature (help() and IDEs show each one, with the
# default ``PoolConfig.build`` gives it) and :func:`check_keywords` refuses others.
class ViewOptions(TypedDict, total=False):
    """What a pool's ``with_options`` changes."""

    timeout: float | None
    retries: int
    retry_on: RetryOn
    progress: Progress


class ExecutorViewOptions(ViewOptions, total=False):
    """What an executor's ``with_options`` changes."""

    cancel_running: bool


class DaskPoolExtras(ViewOptions, total=False):
    """What every face takes (the Dask ``Pool`` takes only these)."""

    chunksize: int | str
    trace: str | os.PathLike[str] | None
    shared: Any
    insights: bool


class DaskExecutorExtras(DaskPoolExtras, ExecutorViewOptions, total=False):
    """The Dask ``ProcessPoolExecutor``'s."""


class ThreadPoolExtras(DaskPoolExtras, total=False):
    """``ThreadPool``'s: the local faces' common extras."""

    max_tasks_per_worker: int | None
    backend: str | None
    worker_exit: Callable[[], Any] | None


class ThreadPoolExecutorExtras(ThreadPoolExtras, ExecutorViewOptions, total=False):
    """``ThreadPoolExecutor``'s."""


class PoolExtras(ThreadPoolExtras, total=False):
    """``Pool``'s: the process faces' worker start and idle limits."""

    init_timeout: float | None
    idle_timeout: float | None


class ProcessPoolExecutorExtras(PoolExtras, ExecutorViewOptions, total=False):
    """``ProcessPoolExecutor``'s."""


def spelled_out(extras: type[Any], default: Callable[[str], Any]) -> Callable[[F], F]:
    """Decorate a function ending in ``**extras: Unpack[<extras>]`` so that its signature
    lists each of them, keyword-only, with its type and ``default(name)``.

    Example::

        @spelled_out(PoolExtras, build_default)
        def __init__(self, processes=None, **extras: Unpack[PoolExtras]) -> None: ...
    """

    def decorate(fn: F) -> F:
        declared = list(inspect.signature(fn).parameters.values())[:-1]  # not **extras
        for name, hint in extras.__annotations__.items():
            shown = hint.__forward_arg__ if isinstance(hint, ForwardRef) else hint
            kind = inspect.Parameter.KEYWORD_ONLY
            declared.append(inspect.Parameter(name, kind, default=default(name), annotation=shown))
        setattr(fn, "__signature__", inspect.Signature(declared))  # noqa: B010
        return fn

    return decorate


def takes_extras(face: Face) -> Callable[[F], F]:
    """:func:`spelled_out` for a face's constructor: the defaults are ``PoolConfig.build``'s."""
    defaults = inspect.signature(PoolConfig.build).parameters
    return spelled_out(face.extras, lambda name: defaults[name].default)


def check_keywords(extras: type[Any], given: Iterable[str], where: str) -> None:
    """Raise the ``TypeError`` Python raises for a keyword argument ``where`` does not take."""
    for name in given:
        if name not in extras.__annotations__:
            raise TypeError(f"{where}() got an unexpected keyword argument {name!r}")


@dataclass(frozen=True, slots=True)
class Face:
    """How one pool face names the stdlib's arguments, and its defaults.

    Example::

        POOL = Face("Pool", "processes", workers="processes", max_tasks="maxtasksperchild")
    """

    #: the face's name (in thread names and messages)
    label: str
    #: the backend it runs on unless told otherwise
    backend: str
    #: the name of its worker-count argument
    workers: str = "max_workers"
    #: its worker count when none is given: the CPU count plus this many (capped at
    #: ``workers_cap``), as the stdlib's ``ThreadPoolExecutor`` does
    extra_workers: int = 0
    workers_cap: int | None = None
    #: the name of its stdlib per-worker task limit, if it has one
    max_tasks: str | None = None
    #: the name of its context argument, if it has one
    context: str | None = None
    #: the ``__cause__`` type of a task's exception (the stdlib face's own class)
    remote_traceback: type[BaseException] | None = None
    #: a recycling pool (``max_tasks`` given) defaults to spawn (``ProcessPoolExecutor``)
    spawn_when_recycling: bool = False
    #: the keyword arguments it takes beyond the stdlib's (a ``TypedDict`` declared above)
    extras: type[Any] = ThreadPoolExtras

    def default_workers(self) -> int:
        count = (os.cpu_count() or 1) + self.extra_workers
        return count if self.workers_cap is None else min(self.workers_cap, count)


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolConfig:
    """Everything a backend needs to run a pool's tasks, validated.

    ``workers`` is ``None`` only for the Dask backend (then: every worker thread of the
    cluster); ``start_method`` is ``None`` for backends without processes of their own.
    """

    backend: str
    workers: int | None
    options: TaskOptions
    progress: Progress = False
    chunksize: int | None = None
    initializer: Callable[..., Any] | None = None
    initargs: tuple[Any, ...] = ()
    max_tasks_per_worker: int | None = None
    start_method: str | None = None
    init_timeout: float | None = None
    idle_timeout: float | None = None
    name: str = "workhorse"
    remote_traceback: type[BaseException] | None = None
    client: Any = None
    trace: str | None = None
    worker_exit: Callable[[], Any] | None = None
    shared: Any = None
    insights: bool = False

    @classmethod
    def for_face(cls, face: Face, given: dict[str, Any], **fixed: Any) -> PoolConfig:
        """The config of a face's constructor call: ``given`` is its ``locals()`` (its
        arguments by the names it gives them); ``fixed``: what the face decides itself."""
        given = dict(given)
        extras = given.pop("extras", {})
        check_keywords(face.extras, extras, face.label)
        given.update(extras)
        stdlib_limit = given.get(face.max_tasks) if face.max_tasks else None
        prefix = given.get("thread_name_prefix")
        if prefix is not None:  # the stdlib executor's default thread names
            fixed.setdefault("name", prefix or f"{face.label}-{id(given['self']):x}")
        passed = {name: given[name] for name in _PASSED if name in given}
        return cls.build(
            default_backend=face.backend,
            workers=(face.workers, given.get(face.workers)),
            default_workers=face.default_workers(),
            stdlib_max_tasks=(face.max_tasks or "max_tasks_per_child", stdlib_limit),
            context=(face.context or "context", given.get(face.context or "context")),
            default_start_method=(
                "spawn" if face.spawn_when_recycling and stdlib_limit is not None else None
            ),
            remote_traceback=face.remote_traceback,
            **{"name": face.label, **passed, **fixed},
        )

    @classmethod
    def build(
        cls,
        *,
        default_backend: str,
        backend: str | None = None,
        workers: tuple[str, Any] = ("max_workers", None),
        default_workers: int = 1,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        stdlib_max_tasks: tuple[str, Any] = ("max_tasks_per_child", None),
        max_tasks_per_worker: int | None = None,
        context: tuple[str, Any] = ("context", None),
        default_start_method: str | None = None,
        timeout: float | None = None,
        retries: int = 0,
        retry_on: RetryOn = (Exception,),
        cancel_running: bool = False,
        progress: Progress = False,
        chunksize: int | str = "auto",
        init_timeout: float | None = None,
        idle_timeout: float | None = None,
        name: str = "workhorse",
        remote_traceback: type[BaseException] | None = None,
        client: Any = None,
        trace: str | os.PathLike[str] | None = None,
        worker_exit: Callable[[], Any] | None = None,
        shared: Any = None,
        insights: bool = False,
    ) -> PoolConfig:
        """Check every argument of a pool face (named as the face names them) and return
        the config; raises ``TypeError``/``ValueError`` naming the argument."""
        chosen = _backend(backend, default_backend, backend_names())
        workers_name, workers_value = workers
        if chosen == "dask" and workers_value is None:
            count: int | None = None  # the cluster's worker threads, looked up by the engine
        else:
            count = check_workers(workers_value, default_workers, name=workers_name)
        initargs = check_initializer(initializer, initargs)
        stdlib_name, stdlib_value = stdlib_max_tasks
        limit = _max_tasks(stdlib_value, stdlib_name, max_tasks_per_worker)
        context_name, context_value = context
        method = None
        if chosen == "processes":
            method = _start_method(context_value, context_name, default_start_method)
        elif context_value is not None:
            _start_method(context_value, context_name, None, check_bootstrap=False)
        if not isinstance(insights, bool):
            raise TypeError(f"insights must be True or False, not {insights!r}")
        if worker_exit is not None and not callable(worker_exit):
            raise TypeError(f"worker_exit must be callable, not {type(worker_exit).__name__}")
        if chosen == "dask" and (
            initializer is not None or limit is not None or worker_exit is not None
        ):
            given = (
                "initializer" if initializer is not None
                else "worker_exit" if worker_exit is not None
                else "a per-worker task limit"
            )  # fmt: skip
            raise ValueError(
                f"the dask backend does not take {given}: Dask workers are long-lived "
                "services (use a Dask worker plugin to set them up)"
            )
        return cls(
            backend=chosen,
            workers=count,
            options=TaskOptions(timeout, retries, retry_on, cancel_running),  # type: ignore[arg-type]
            progress=check_progress(progress),
            chunksize=check_chunksize(chunksize),
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_worker=limit,
            start_method=method,
            init_timeout=check_seconds(init_timeout, "init_timeout"),
            idle_timeout=check_seconds(idle_timeout, "idle_timeout"),
            name=name,
            remote_traceback=remote_traceback,
            client=client,
            trace=check_trace(trace),
            worker_exit=worker_exit,
            shared=shared,
            insights=insights,
        )


# The arguments a face passes through as they are (the others it names its own way).
_PASSED = (
    "backend", "initializer", "initargs", "max_tasks_per_worker", "timeout", "retries",
    "retry_on", "cancel_running", "progress", "chunksize", "init_timeout", "idle_timeout",
    "client", "trace", "worker_exit", "shared", "insights",
)  # fmt: skip


def _backend(given: Any, default: str, known: list[str]) -> str:
    """``backend=``, else ``$WORKHORSE_BACKEND``, else the face's own backend."""
    where = "backend"
    if given is None:
        given = os.environ.get(BACKEND_ENV) or None
        where = f"${BACKEND_ENV}"
    if given is None:
        return default
    if not isinstance(given, str) or given not in known:
        raise ValueError(f"{where} must be one of {', '.join(map(repr, known))}, not {given!r}")
    return given


def _max_tasks(stdlib_value: Any, stdlib_name: str, ours: Any) -> int | None:
    """The per-worker task limit from the stdlib's argument or ``max_tasks_per_worker``."""
    first = check_max_tasks(stdlib_value, stdlib_name)
    second = check_max_tasks(ours, "max_tasks_per_worker")
    if first is not None and second is not None and first != second:
        raise ValueError(f"give {stdlib_name} or max_tasks_per_worker, not both")
    return first if first is not None else second


def _start_method(
    context: Any, name: str, default: str | None, *, check_bootstrap: bool = True
) -> str:
    """The start method of a ``multiprocessing`` or workhorse context (``None``: ``default``,
    else multiprocessing's default, which this fixes as the stdlib pools do). Refuses to
    start a pool in a spawn child that is still importing the main script."""
    if context is None:
        method = default or multiprocessing.get_start_method()
    else:
        get = getattr(context, "get_start_method", None)
        if get is None:
            raise TypeError(
                f"{name} must be a multiprocessing or workhorse context, not {context!r}"
            )
        method = str(get())
    if check_bootstrap:
        check_not_bootstrapping(method, "a pool")
    return method
