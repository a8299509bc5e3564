"""Keep asynchronous signals off workhorse's background threads.

Python runs signal handlers in the main thread, but the kernel hands a process-directed
signal (Ctrl-C's ``SIGINT``) to any thread that does not block it. When it lands on a
background thread, a main thread blocked in a lock acquire -- ``AsyncResult.get()`` or
``Event.wait()`` without a timeout -- is not woken, and Ctrl-C does nothing until something
else wakes it (seen: 1 run in about 200 of the Ctrl-C test, on Python 3.12). So workhorse's own
background threads block those signals, and the main thread always gets them.

A process inherits the signal mask of the thread that starts it (through ``fork`` and
``exec`` alike), so a masked thread unblocks them around starting one (:func:`unblocked`);
threads that run user code (the thread pool's workers) are not masked at all: a task may
start a subprocess, which must see Ctrl-C and ``SIGTERM``.

Example::

    thread = threading.Thread(target=work, daemon=True)
    start_quietly(thread)
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["ASYNC_SIGNALS", "start_quietly", "unblocked"]

# The signals a program may handle (or that end it through Python's handler); never the
# synchronous ones (SIGSEGV, SIGFPE...), which must stay with the thread that faults.
ASYNC_SIGNALS = frozenset(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")
    if hasattr(signal, name)
)


def start_quietly(thread: threading.Thread) -> None:
    """Start ``thread`` with :data:`ASYNC_SIGNALS` blocked in it.

    A new thread inherits its creator's signal mask, so the creator blocks them just around
    ``start()``; a signal arriving meanwhile stays pending and is delivered right after.
    """
    with _masked(getattr(signal, "SIG_BLOCK", None)):
        thread.start()


def unblocked() -> contextlib.AbstractContextManager[None]:
    """Run the body with :data:`ASYNC_SIGNALS` unblocked in this thread, so that a process it
    starts does not inherit a mask that would make it deaf to Ctrl-C and ``SIGTERM``.

    Example::

        with unblocked():
            process.start()
    """
    return _masked(getattr(signal, "SIG_UNBLOCK", None))


@contextlib.contextmanager
def _masked(how: int | None) -> Iterator[None]:
    """Apply ``how`` (block or unblock) to :data:`ASYNC_SIGNALS` in this thread for the body,
    then restore the mask; a no-op where threads have no signal masks (``how`` is None)."""
    if how is None or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(how, ASYNC_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
