"""What pools do when the interpreter exits: the stdlib's executors' behaviour.

A script that submits work and ends without ``shutdown()`` still gets its work done: when
the main thread finishes, every live pool (process or thread) first submits the rest of the
maps still open on it, then shuts down waiting for everything it accepted, as
``concurrent.futures`` does from its own exit hook. From then on nothing new is accepted:
``submit`` raises ``RuntimeError("cannot schedule new futures after interpreter
shutdown")``, the stdlib's words (an ``atexit`` function that submits sees it).

The hook is registered with ``threading._register_atexit``, which runs before ``atexit``
functions and before non-daemon threads are joined -- where the stdlib's executors hook in.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Protocol

__all__ = ["check_accepting", "cut_feeds", "drain_feeds", "register"]


class _Feed(Protocol):
    def drain(self) -> None: ...

    def cut(self) -> None: ...


class _Engine(Protocol):
    feeds: weakref.WeakSet[Any]  # the lazy maps open on it (``_executor._Feed``)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


_engines: weakref.WeakSet[Any] = weakref.WeakSet()
_exiting = False


def register(engine: _Engine) -> None:
    """Have ``engine`` finish its work when the interpreter exits."""
    _engines.add(engine)


def check_accepting() -> None:
    """Raise the stdlib's error once the interpreter is exiting."""
    if _exiting:
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")


def drain_feeds(engine: _Engine) -> None:
    """Submit the rest of every lazy map open on ``engine`` that must run it all (see
    ``_executor._Feed.drain``): the pool is about to stop accepting tasks."""
    feeds: list[_Feed] = list(engine.feeds)
    for feed in feeds:
        feed.drain()


def cut_feeds(engine: _Engine) -> None:
    """Stop every lazy map open on ``engine`` (terminate, ``cancel_futures``)."""
    feeds: list[_Feed] = list(engine.feeds)
    for feed in feeds:
        feed.cut()


def _at_exit() -> None:
    global _exiting
    engines = list(_engines)
    for engine in engines:  # what a map was given runs, as with the stdlib's eager maps
        drain_feeds(engine)
    _exiting = True
    for engine in engines:
        engine.shutdown(wait=True)


def _forget_in_child() -> None:
    # A forked child inherits the parent's pools, maybe with a lock copied while held: its
    # exit must not shut them down.
    _engines.clear()


os.register_at_fork(after_in_child=_forget_in_child)
threading._register_atexit(_at_exit)  # type: ignore[attr-defined]
