"""The table of public names: every name of each flavour, and where it comes from.

One row per public name (see :data:`_TABLE`); each column says where a namespace gets it:

* ``workhorse``: the top-level package (imported lazily, on first use of the name);
* ``processes`` and ``threads``: the modules :mod:`workhorse.processes` and
  :mod:`workhorse.threads`, and, for rows flagged ``ctx``, the class attributes of
  :class:`~workhorse.ProcessContext` and :class:`~workhorse.ThreadContext`;
* ``dask``: the Dask context (:func:`workhorse.dask`).

A column holds a *source*:

* ``-``: the namespace does not offer the name;
* a module, absolute (``threading``; ``mp``, ``th`` and ``cf`` are short for
  ``multiprocessing``, ``threading`` and ``concurrent.futures``) or relative to
  ``workhorse`` (``._sync``): its attribute of the same name;
* ``HERE``: the namespace defines the name itself (a function of the public module, a
  method of the context class);
* ``:Other``: the namespace's own ``Other``, under a second name (``Executor``);
* ``submodule``: the submodule ``workhorse.<name>``.

The last column holds flags: ``ctx`` (a context's name too), ``3.12`` (the first Python
that has it). The public modules, the contexts and ``__all__`` are all generated from the
table (by :mod:`workhorse._publish`), so a new primitive is one row (and one line in each
``if TYPE_CHECKING:`` block, which type checkers read instead; ``tests/test_names.py``
checks that they agree). Public classes also get their public ``__module__`` and
``__qualname__`` from it, so that pickles and reprs never name a private module.

``import workhorse`` imports this module, and a worker process pays for that at start: so it
imports nothing (not even :mod:`typing`), and the table is text, next to free to compile
when there is no bytecode cache.

Example::

    >>> from workhorse import _names
    >>> _names.TABLE["Lock"].threads
    '._thread_sync'
"""

from __future__ import annotations

import sys

# Type checkers take this name as true wherever it is bound (typing.TYPE_CHECKING would cost
# `import workhorse` the import of typing).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

HERE: Final = ""
SUBMODULE: Final = "submodule"
#: The top level's re-exports of a public module: ``workhorse.Lock is processes.Lock``.
PROCESSES: Final = ".processes"
THREADS: Final = ".threads"
#: The namespaces (see workhorse._publish for the order in which they claim a class).
NAMESPACES: Final = ("workhorse", "processes", "threads", "dask")

# fmt: off
_TABLE = """
# name                 workhorse   processes     threads         dask     flags
# -- the primitives, in every flavour and context
Queue                  .processes  ._queue       ._thread_queue  HERE     ctx
SimpleQueue            .processes  ._queue       ._thread_queue  :Queue   ctx
JoinableQueue          .processes  ._queue       ._thread_queue  HERE     ctx
Lock                   .processes  ._sync        ._thread_sync   HERE     ctx
RLock                  .processes  ._sync        ._thread_sync   HERE     ctx
Semaphore              .processes  ._sync        ._thread_sync   HERE     ctx
BoundedSemaphore       .processes  ._sync        ._thread_sync   HERE     ctx
Condition              .processes  ._condition   ._thread_sync   HERE     ctx
Event                  .processes  ._condition   ._thread_sync   HERE     ctx
Barrier                .processes  ._barrier     ._thread_sync   HERE     ctx
Pipe                   .processes  ._pipe        ._pipe          -        ctx
Connection             .processes  ._pipe        ._pipe          -
# -- workers, pools, groups
Process                .processes  ._process     -               -        ctx
Thread                 .threads    -             ._thread        -        ctx
Pool                   .processes  ._pool        :ThreadPool     HERE     ctx
ThreadPool             .processes  ._pool        ._pool          -        ctx
ProcessPoolExecutor    .processes  ._executor    -               HERE     ctx
ThreadPoolExecutor     .processes  ._executor    ._executor      -        ctx
Executor  cf  :ProcessPoolExecutor  :ThreadPoolExecutor  :ProcessPoolExecutor  ctx
TaskGroup              .processes  ._taskgroup   ._taskgroup     -
PoolStats              ._stats     -             -               -
process                ._decorators  -           -               -
worker                 ._worker_info  -          -               -
WorkerInfo             ._worker_info  -          -               -
thread                 ._decorators  -           -               -
WorkerStats            ._stats     -             -               -
group                  .processes  HERE          HERE            HERE     ctx
# -- contexts
Context                ._context   -             -               -
ProcessContext         ._context   ._context     -               -
ThreadContext          ._context   -             ._context       -
get_context            ._context   HERE          -               -
with_start_method      .processes  HERE          -               -
dask                   HERE        -             -               -
processes              submodule   -             -               -
threads                submodule   -             -               -
# -- workhorse's errors
WorkhorseError         ._errors    -             -               -
BrokenResourceError    ._errors    -             -               -
Cancelled              ._errors    -             -               -
DeserializationError   ._errors    -             -               -
PoolBroken             ._errors    -             -               -
QueueShutDown          ._errors    -             -               -
RemoteError            ._errors    -             -               -
RemoteTraceback        ._errors    -             -               -
SerializationError     ._errors    -             -               -
TaskTimeout            ._errors    -             -               -
WorkerCrashed          ._errors    -             -               -
# -- concurrent.futures
ALL_COMPLETED          cf          -             -               -
FIRST_COMPLETED        cf          -             -               -
FIRST_EXCEPTION        cf          -             -               -
BrokenExecutor         cf          -             -               -
CancelledError         cf          -             -               -
Future                 cf          -             -               -
InvalidStateError      cf          -             -               -
TimeoutError           cf          mp            -               -
as_completed           ._completion  -           -               -
wait                   cf          -             -               -
# -- multiprocessing (reducer: its pickling machinery; workhorse's own is in _serialize)
Value                  -           HERE          -               -
Array                  -           HERE          -               -
Manager                -           HERE          -               -
RawValue               -           mp            -               -
RawArray               -           mp            -               -
AuthenticationError    -           mp            -               -
BufferTooShort         -           mp            -               -
ProcessError           -           mp            -               -
active_children        .processes  mp            -               -
allow_connection_pickling  -       mp            -               -
cpu_count              .processes  mp            -               -
current_process        .processes  mp            -               -
freeze_support         -           mp            -               -
get_all_start_methods  -           mp            -               -
get_logger             -           mp            -               -
get_start_method       .processes  mp            -               -
log_to_stderr          -           mp            -               -
parent_process         -           mp            -               -
reducer                -           mp            -               -
set_executable         -           mp            -               -
set_forkserver_preload -           mp            -               -
set_start_method       -           mp            -               -
# -- threading (excepthook: forwarded to threading's, see threads._ThreadsModule)
TIMEOUT_MAX            ._timeouts  -             th              -
BrokenBarrierError     -           -             th              -
ExceptHookArgs         -           -             th              -
ThreadError            -           -             th              -
Timer                  -           -             th              -
active_count           -           -             th              -
current_thread         -           -             th              -
enumerate              -           -             th              -
excepthook             -           -             HERE            -
get_ident              -           -             th              -
get_native_id          -           -             th              -
getprofile             -           -             th              -
gettrace               -           -             th              -
local                  -           -             th              -
main_thread            -           -             th              -
setprofile             -           -             th              -
settrace               -           -             th              -
stack_size             -           -             th              -
setprofile_all_threads -           -             th              -        3.12
settrace_all_threads   -           -             th              -        3.12
"""
# fmt: on

_MODULES: Final = {"mp": "multiprocessing", "th": "threading", "cf": "concurrent.futures"}


class Entry:
    """One row of the table: a public name and its source in each namespace.

    Example::

        entry = TABLE["Lock"]
        assert entry.source("threads") == "._thread_sync"
    """

    __slots__ = ("context", "dask", "name", "processes", "since", "threads", "workhorse")

    def __init__(self, name: str, *columns: str) -> None:
        sources = [
            None if c == "-" else HERE if c == "HERE" else _MODULES.get(c, c) for c in columns
        ]
        self.name = name
        self.workhorse, self.processes, self.threads, self.dask = sources[:4]
        flags = columns[4:]
        #: Also a name of ProcessContext / ThreadContext (where that flavour has it).
        self.context = "ctx" in flags
        #: The first Python version that has it (the stdlib's newer names).
        self.since = next((_version(f) for f in flags if f[:1].isdigit()), None)

    def source(self, namespace: str) -> str | None:
        """Where ``namespace`` gets this name (``None``: it does not offer it)."""
        if self.since is not None and sys.version_info < self.since:
            return None
        found: str | None = getattr(self, namespace)
        return found

    def __repr__(self) -> str:
        return f"<Entry {self.name}: {[self.source(n) for n in NAMESPACES]}>"


def _version(flag: str) -> tuple[int, int]:
    major, minor = flag.split(".")
    return int(major), int(minor)


#: Every public name: its row of the table.
TABLE: Final = {
    row[0]: Entry(*row)
    for row in map(str.split, _TABLE.splitlines())
    if row and not row[0].startswith("#")
}


def _sort_key(name: str) -> tuple[int, str]:
    # isort's order (ruff's RUF022): CONSTANTS, then Classes, then functions
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def public(namespace: str) -> list[str]:
    """The names ``namespace`` offers: its ``__all__`` (or a context's names).

    Example::

        __all__ = public("threads")
    """
    names = (e.name for e in TABLE.values() if e.source(namespace) is not None)
    return sorted(names, key=_sort_key)


def context_names(namespace: str) -> list[str]:
    """The names the context of ``namespace`` offers (``"processes"``, ``"threads"`` or
    ``"dask"``), as :func:`workhorse._publish.bind` gives them.

    Example::

        assert "Lock" in context_names("dask")
    """
    if namespace == "dask":
        return public("dask")
    return [n for n in public(namespace) if TABLE[n].context]


def exports() -> dict[str, str | None]:
    """The top level's lazy imports: name -> module (``None``: the submodule itself).

    Example::

        assert exports()["Lock"] == ".processes"
    """
    table: dict[str, str | None] = {}
    for entry in TABLE.values():
        source = entry.source("workhorse")
        if source is not None and source != HERE:
            table[entry.name] = None if source == SUBMODULE else source
    return table
