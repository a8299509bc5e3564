"""The whole exception tree of workhorse, re-exported at the top level.

::

    WorkhorseError(Exception)            base of the errors workhorse raises on its own account
    ├── QueueShutDown(WorkhorseError, queue.ShutDown on 3.13+)
    │       put() on a shut-down queue; get() once a shut-down queue is drained
    ├── RemoteError(WorkhorseError)      a child's exception that could not be re-created here
    ├── WorkerCrashed(WorkhorseError, concurrent.futures.process.BrokenProcessPool)
    │       a process died (signal, os._exit, OOM kill) before delivering its result
    ├── TaskTimeout(WorkhorseError, TimeoutError)
    │       a pool task ran past its timeout and was stopped
    ├── PoolBroken(WorkhorseError, concurrent.futures.BrokenExecutor)
    │       a pool cannot go on (its initializer failed, workers die at start-up)
    ├── SerializationError(WorkhorseError, pickle.PicklingError)
    │       an object could not be pickled; raised by put()/send()/start() in the caller,
    │       and also an instance of the error pickling raised (TypeError, say)
    ├── DeserializationError(WorkhorseError, pickle.UnpicklingError, BrokenProcessPool)
    │       a task's arguments (in its worker) or its result (here) could not be unpickled
    └── BrokenResourceError(WorkhorseError, RuntimeError)
            a shared resource can no longer be used (its internal lock is held by a dead process)
    NotHeldError(RuntimeError, ValueError, AssertionError)
                                         a process lock released (or a condition used) unheld
    Cancelled(BaseException)             raised inside a cancelled task-group member
    RemoteTraceback(Exception)           attached as ``__cause__`` of a child's exception

Each error also subclasses the stdlib exception it refines, so ``except queue.ShutDown``
(3.13+), ``except pickle.PicklingError`` and ``except RuntimeError`` keep working.
``Cancelled`` is a ``BaseException`` on purpose: a member's ``except Exception:`` must not
swallow the request to stop.
"""

from __future__ import annotations

import pickle
import queue
import signal
from concurrent.futures import BrokenExecutor
from concurrent.futures.process import BrokenProcessPool

__all__ = [
    "BrokenResourceError",
    "Cancelled",
    "DeserializationError",
    "NotHeldError",
    "PoolBroken",
    "QueueShutDown",
    "RemoteError",
    "RemoteTraceback",
    "SerializationError",
    "TaskTimeout",
    "WorkerCrashed",
    "WorkhorseError",
]

# queue.ShutDown exists from 3.13 on; subclassing it there keeps `except queue.ShutDown` working.
_QueueShutDownBase: type[Exception] = getattr(queue, "ShutDown", Exception)


class WorkhorseError(Exception):
    """Base class of every error workhorse raises on its own account.

    Example::

        try:
            q.put(item)
        except workhorse.WorkhorseError as exc:
            log.warning("workhorse refused: %s", exc)
    """


class QueueShutDown(WorkhorseError, _QueueShutDownBase):  # type: ignore[misc,valid-type]
    """Raised by ``put`` on a shut-down queue, and by ``get`` once it is drained.

    On Python 3.13 and later it also subclasses :class:`queue.ShutDown`.

    Example::

        q.shutdown()
        try:
            q.put(1)
        except workhorse.QueueShutDown:
            pass
    """


class RemoteError(WorkhorseError):
    """A child's exception that could not be re-created in this process.

    ``str()`` holds the original type and message; the child's traceback is attached as
    ``__cause__`` (a :class:`RemoteTraceback`). ``type_name`` names the original type.

    Example::

        try:
            proc.result()
        except workhorse.RemoteError as exc:
            print(exc.type_name, exc)
    """

    def __init__(self, message: str, type_name: str = "") -> None:
        super().__init__(message, type_name)
        self.type_name = type_name

    def __str__(self) -> str:
        return str(self.args[0])


class WorkerCrashed(WorkhorseError, BrokenProcessPool):
    """A process died -- killed by a signal, ``os._exit``, the OOM killer -- before it
    delivered its result.

    ``pid``, ``exitcode`` (negative for a signal, as ``Process.exitcode``) and
    ``signal_name`` (e.g. ``"SIGKILL"``, or ``None``) say how; ``what`` names the process or
    task. Subclasses :class:`concurrent.futures.process.BrokenProcessPool` so stdlib-style
    handlers keep catching it.

    Example::

        try:
            proc.result()
        except workhorse.WorkerCrashed as exc:
            print(exc.signal_name or exc.exitcode)
    """

    def __init__(
        self, what: str, pid: int | None, exitcode: int | None, reason: str | None = None
    ) -> None:
        self.what, self.pid, self.exitcode, self.reason = what, pid, exitcode, reason
        self.signal_name = _signal_name(exitcode)
        if self.signal_name is not None:
            how = f"was killed by {self.signal_name}"
            if reason is None and self.signal_name == "SIGKILL":
                reason = "(for instance by the OOM killer, a memory limit or a timeout)"
            elif reason is None and self.signal_name in ("SIGSEGV", "SIGBUS", "SIGABRT"):
                reason = "(a crash in native code)"
        elif exitcode is None:  # a Dask worker whose nanny did not report how it ended
            how = "died (its exit status is not known to the client)"
            if reason is None:
                reason = "(os._exit, a signal or a crash in native code)"
        else:
            how = f"exited with code {exitcode}"
            if reason is None:
                reason = "(os._exit, or a crash in native code)"
        how = f"{how} {reason}"
        where = "" if pid is None else f" (pid {pid})"
        super().__init__(f"{what}{where} {how} before delivering its result")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.what, self.pid, self.exitcode, self.reason))


class TaskTimeout(WorkhorseError, TimeoutError):
    """A pool task ran longer than its ``timeout`` and was stopped.

    In a process pool the worker running it is killed and replaced, so the task really stops.
    A thread cannot be killed: a thread pool fails the future on time and leaves the thread
    to finish on its own (its result is discarded). Subclasses :class:`TimeoutError`.

    Example::

        pool = workhorse.ProcessPoolExecutor(timeout=1.0)
        try:
            pool.submit(time.sleep, 10).result()
        except workhorse.TaskTimeout:
            pass
    """


class PoolBroken(WorkhorseError, BrokenExecutor):
    """A pool cannot run tasks any more: its initializer failed, or workers keep dying at
    start-up. Pending tasks fail with it and ``submit`` raises it.

    Subclasses :class:`concurrent.futures.BrokenExecutor`; ``__cause__`` holds the reason.

    Example::

        try:
            future.result()
        except workhorse.PoolBroken as exc:
            print("pool broken:", exc.__cause__)
    """


def _signal_name(exitcode: int | None) -> str | None:
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


class SerializationError(WorkhorseError, pickle.PicklingError):
    """An object could not be pickled (with pickle or cloudpickle).

    Raised in the caller by ``put``, ``send`` or ``Process.start``, naming the object's type
    and where it sits, instead of being dropped in a background thread as the stdlib does.
    When pickling failed with an error of another type -- ``TypeError: cannot pickle
    '_thread.lock' object``, say -- the error raised is an instance of that type too, as
    the stdlib would have raised it (``except TypeError`` keeps working); the original is
    its ``__cause__``.

    Example::

        try:
            q.put(threading.Lock())
        except workhorse.SerializationError as exc:
            print(exc)  # cannot pickle queue item of type _thread.lock ...
    """

    @classmethod
    def wrapping(cls, original: BaseException, message: str) -> BaseException:
        """``message`` as a :class:`SerializationError` that is also of ``original``'s
        type. An ``original`` that is not an ``Exception`` (``SystemExit`` from a
        ``__reduce__``) is what the stdlib delivers: it is returned, ``message`` noted."""
        if not isinstance(original, Exception):
            original.add_note(message)
            return original
        error = _family(cls, type(original))(message)
        error.__cause__ = original
        return error

    def __reduce__(self) -> tuple[object, ...]:
        extra = getattr(type(self), "_wh_extra", None)
        return (_rebuild_family, (SerializationError, extra, self.args), self.__dict__ or None)


class DeserializationError(WorkhorseError, pickle.UnpicklingError, BrokenProcessPool):
    """A task's arguments could not be unpickled in its worker, or its result (or the
    exception it raised) could not be unpickled here.

    Subclasses :class:`concurrent.futures.process.BrokenProcessPool`, what the stdlib raises
    then (it breaks the whole pool; workhorse fails only that task), and
    :class:`pickle.UnpicklingError`. ``__cause__`` holds the error unpickling raised.

    Example::

        try:
            future.result()
        except workhorse.DeserializationError as exc:
            print("could not be unpickled:", exc.__cause__)
    """


_families: dict[tuple[type[BaseException], type[BaseException]], type[BaseException]] = {}


def _family(cls: type[SerializationError], extra: type[BaseException]) -> type[BaseException]:
    """``cls`` made a subclass of ``extra`` too (cached), or ``cls`` where that cannot be."""
    if issubclass(cls, extra):
        return cls
    kind = _families.get((cls, extra))
    if kind is None:
        try:
            kind = type(cls.__name__, (cls, extra), {"_wh_extra": extra})
            kind.__module__, kind.__qualname__ = cls.__module__, cls.__qualname__
            kind("probe")  # some exception types want more constructor arguments
        except TypeError:
            kind = cls
        _families[(cls, extra)] = kind
    return kind


def _rebuild_family(
    cls: type[SerializationError], extra: type[BaseException] | None, args: tuple[object, ...]
) -> BaseException:
    kind = cls if extra is None else _family(cls, extra)
    return kind(*args)


class BrokenResourceError(WorkhorseError, RuntimeError):
    """A shared resource can no longer be used safely.

    Raised, for example, when a queue's internal lock is held by a process that has died:
    the queue's state may be half-updated, so every later call fails instead of hanging.

    Example::

        try:
            q.get(timeout=5)
        except workhorse.BrokenResourceError:
            q = workhorse.Queue()  # start over
    """


class NotHeldError(RuntimeError, ValueError, AssertionError):
    """A lock released, or a condition waited on or notified, by a thread that does not hold
    it. :mod:`threading` raises ``RuntimeError`` there, :mod:`multiprocessing` ``ValueError``
    (``Lock``) or ``AssertionError`` (``RLock``, ``Condition``): the process primitives raise
    this, which is each of them, so either library's ``except`` clause catches it.

    Example::

        try:
            lock.release()
        except RuntimeError:
            pass  # it was not locked
    """


class Cancelled(BaseException):
    """Raised inside a task-group member thread that the group cancelled.

    A thread blocked in a workhorse call (``Queue.get``, ``Event.wait``, ``Lock.acquire`` ...)
    wakes with it. It derives from ``BaseException`` so that ``except Exception:`` in user
    code does not swallow it; the task group treats it as a clean stop, not a failure.

    Example::

        with workhorse.threads.group() as g:
            g.start(consumer, q)  # if a sibling fails, consumer's q.get() raises Cancelled
    """


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in another process.

    Attached as ``__cause__`` of the re-raised exception, so the child's frames print below
    the parent's, the way :mod:`concurrent.futures` does it.

    Example::

        try:
            proc.result()
        except ValueError as exc:
            print(exc.__cause__)  # the child's traceback
    """

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb
