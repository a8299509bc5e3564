"""The process pools under test behind one small interface, plus the tasks they run.

Each adapter opens its library's pool with ``workers`` workers, at the library's defaults
unless ``chunksize`` is given (the hand-tuned setting), and offers the calls the workloads
need: the four mapping APIs, one task (``call``) and shutdown. Libraries that fix the batch
size at construction (workhorse) get it there; the others get it per call.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from ..harness import LIMIT, PEER, STDLIB, WORKHORSE, Contender, note

MAP, IMAP, IMAP_UNORDERED, EXECUTOR_MAP = "map", "imap", "imap_unordered", "Executor.map"

PROCESS_POOLS = (
    Contender("workhorse.Pool", WORKHORSE, ("workhorse",)),
    Contender("workhorse.ProcessPoolExecutor", WORKHORSE, ("workhorse",)),
    Contender("multiprocessing.Pool", STDLIB),
    Contender("concurrent.futures.ProcessPoolExecutor", STDLIB),
    Contender("loky", PEER, ("loky",)),
    Contender("mpire", PEER, ("mpire",)),
    Contender("joblib", PEER, ("joblib",)),
    Contender("pebble", PEER, ("pebble",)),
)
SERIAL = Contender("serial loop", LIMIT)

#: The mapping APIs each pool offers (joblib: ``Parallel`` with ``return_as`` list,
#: generator, generator_unordered).
APIS: dict[str, tuple[str, ...]] = {
    "workhorse.Pool": (MAP, IMAP, IMAP_UNORDERED),
    "workhorse.ProcessPoolExecutor": (EXECUTOR_MAP,),
    "multiprocessing.Pool": (MAP, IMAP, IMAP_UNORDERED),
    "concurrent.futures.ProcessPoolExecutor": (EXECUTOR_MAP,),
    "loky": (EXECUTOR_MAP,),
    "mpire": (MAP, IMAP, IMAP_UNORDERED),
    "joblib": (MAP, IMAP, IMAP_UNORDERED),
    "pebble": (EXECUTOR_MAP,),
}

DEFAULT_START_METHODS = {
    "workhorse.Pool": "forkserver",
    "workhorse.ProcessPoolExecutor": "forkserver",
    "multiprocessing.Pool": multiprocessing.get_start_method(allow_none=False),
    "concurrent.futures.ProcessPoolExecutor": multiprocessing.get_start_method(),
    "loky": "loky (spawn-like)",
    "mpire": "fork",
    "joblib": "loky (spawn-like)",
    "pebble": multiprocessing.get_start_method(),
}


# --- tasks (module-level so that every start method can import them) ----------------------


def noop(x: Any) -> Any:
    return x


def spin(iterations: int) -> int:
    """Pure-Python busy work: about ``iterations`` loop turns."""
    total = 0
    for i in range(iterations):
        total += i & 7
    return total


def calibrate_spin(seconds: float) -> int:
    """Iterations of :func:`spin` taking about ``seconds`` on this machine (best of 5)."""
    probe = 200_000
    best = min(_time(lambda: spin(probe)) for _ in range(5))
    return max(1, int(probe * seconds / best))


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def die_once(item: tuple[int, bool, str]) -> int:
    """Return ``item[0]``; if ``item[1]``, SIGKILL this worker the first time (marker file)."""
    value, kill, marker = item
    if kill:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return value
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def _results(value: Any) -> Iterable[Any]:
    """A library's untyped map result, typed."""
    return cast("Iterable[Any]", value)


# --- adapters -----------------------------------------------------------------------------


class Adapter:
    """One open pool; subclasses implement what their library offers."""

    def __init__(self, workers: int, chunksize: int | None, start_method: str | None) -> None:
        self.workers, self.chunksize, self.start_method = workers, chunksize, start_method

    def run(self, api: str, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """All results of ``fn`` over ``items`` through ``api`` (consumed to the end)."""
        method = {
            MAP: self.map,
            IMAP: self.imap,
            IMAP_UNORDERED: self.imap_unordered,
            EXECUTOR_MAP: self.executor_map,
        }[api]
        return list(method(fn, items))

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        raise NotImplementedError

    def imap(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        raise NotImplementedError

    def imap_unordered(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        raise NotImplementedError

    def executor_map(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        raise NotImplementedError

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """One task, waited for."""
        raise NotImplementedError

    def close(self) -> None:
        """Graceful shutdown, waiting for the workers."""
        raise NotImplementedError

    def terminate(self) -> None:
        """Stop now (where the library offers it; else the harness's kill cleans up)."""

    def close_within(self, seconds: float = 10.0) -> None:
        """:meth:`close`, but a shutdown that hangs is noted and the pool terminated, so
        that the figures measured before it still count."""
        closer = threading.Thread(target=self.close, daemon=True)
        closer.start()
        closer.join(seconds)
        if closer.is_alive():
            note(f"{type(self).__name__}: close() did not return within {seconds:g} s; terminated")
            self.terminate()


class _MpPoolLike(Adapter):
    """``multiprocessing.Pool`` and ``workhorse.Pool`` share an API."""

    pool: Any

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        return _results(self.pool.map(fn, items, self.chunksize))

    def imap(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        return _results(self.pool.imap(fn, items, self.chunksize or 1))

    def imap_unordered(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        return _results(self.pool.imap_unordered(fn, items, self.chunksize or 1))

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool.apply(fn, args)

    def close(self) -> None:
        self.pool.close()
        self.pool.join()

    def terminate(self) -> None:
        self.pool.terminate()


class WorkhorsePool(_MpPoolLike):
    def __init__(self, workers: int, chunksize: int | None, start_method: str | None) -> None:
        super().__init__(workers, chunksize, start_method)
        import workhorse

        context = workhorse.with_start_method(start_method) if start_method else None
        self.pool = workhorse.Pool(workers, context=context, chunksize=chunksize or "auto")


class MultiprocessingPool(_MpPoolLike):
    def __init__(self, workers: int, chunksize: int | None, start_method: str | None) -> None:
        super().__init__(workers, chunksize, start_method)
        self.pool = multiprocessing.get_context(start_method).Pool(workers)


class _ExecutorLike(Adapter):
    executor: Any

    def executor_map(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        return _results(self.executor.map(fn, items, chunksize=self.chunksize or 1))

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.executor.submit(fn, *args).result()

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class WorkhorseExecutor(_ExecutorLike):
    def __init__(self, workers: int, chunksize: int | None, start_method: str | None) -> None:
        super().__init__(workers, chunksize, start_method)
        import workhorse

        context = workhorse.with_start_method(start_method) if start_method else None
        self.executor = workhorse.ProcessPoolExecutor(
            workers, mp_context=context, chunksize=chunksize or "auto"
        )

    def terminate(self) -> None:
        self.executor.terminate()


class StdlibExecutor(_ExecutorLike):
    def __init__(self, workers: int, chunksize: int | None, start_method: str | None) -> None:
        super().__init__(workers, chunksize, start_method)
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context(start_method)
        self.executor = ProcessPoolExecutor(workers, mp_context=context)


class LokyExecutor(_ExecutorLike):
    def __init__(self, workers: int, chunksize: int | None, start_method: str | None) -> None:
        super().__init__(workers, chunksize, start_method)
        import loky

        self.executor = loky.get_reusable_executor(max_workers=workers)


class PebblePool(Adapter):
    def __init__(self, workers: int, chunksize: int | None, start_method: str | None) -> None:
        super().__init__(workers, chunksize, start_method)
        import pebble

        context = multiprocessing.get_context(start_method)
        self.pool: Any = pebble.ProcessPool(max_workers=workers, context=context)

    def executor_map(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        return _results(self.pool.map(fn, items, chunksize=self.chunksize or 1).result())

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool.schedule(fn, args=args).result()

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


class MpirePool(Adapter):
    """mpire with ``keep_alive=True`` (its default stops the workers after every map, which
    would make every call pay a pool start)."""

    def __init__(self, workers: int, chunksize: int | None, start_method: str | None) -> None:
        super().__init__(workers, chunksize, start_method)
        import mpire

        method = start_method or "fork"
        self.pool = mpire.WorkerPool(  # type: ignore[attr-defined]
            n_jobs=workers, keep_alive=True, start_method=method
        )

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        return _results(self.pool.map(fn, items, chunk_size=self.chunksize, progress_bar=False))

    def imap(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        return _results(self.pool.imap(fn, items, chunk_size=self.chunksize, progress_bar=False))

    def imap_unordered(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        return _results(
            self.pool.imap_unordered(fn, items, chunk_size=self.chunksize, progress_bar=False)
        )

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool.apply(fn, args)

    def close(self) -> None:
        self.pool.stop_and_join()


class JoblibParallel(Adapter):
    """joblib's ``Parallel`` on its default (loky) backend, whose workers persist between
    calls; ``chunksize`` is its ``batch_size``."""

    def __init__(self, workers: int, chunksize: int | None, start_method: str | None) -> None:
        super().__init__(workers, chunksize, start_method)
        import joblib

        self.joblib = joblib

    def _parallel(self, fn: Callable[[Any], Any], items: list[Any], how: str) -> Any:
        batch = self.chunksize or "auto"
        parallel = self.joblib.Parallel(n_jobs=self.workers, batch_size=batch, return_as=how)
        delayed = self.joblib.delayed(fn)
        return parallel(delayed(item) for item in items)

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        result: list[Any] = self._parallel(fn, items, "list")
        return result

    def imap(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        result: Iterator[Any] = self._parallel(fn, items, "generator")
        return result

    def imap_unordered(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterable[Any]:
        result: Iterator[Any] = self._parallel(fn, items, "generator_unordered")
        return result

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        parallel = self.joblib.Parallel(n_jobs=self.workers)
        return parallel([self.joblib.delayed(fn)(*args)])[0]

    def close(self) -> None:
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)


ADAPTERS: dict[str, type[Adapter]] = {
    "workhorse.Pool": WorkhorsePool,
    "workhorse.ProcessPoolExecutor": WorkhorseExecutor,
    "multiprocessing.Pool": MultiprocessingPool,
    "concurrent.futures.ProcessPoolExecutor": StdlibExecutor,
    "loky": LokyExecutor,
    "mpire": MpirePool,
    "joblib": JoblibParallel,
    "pebble": PebblePool,
}


def open_pool(
    contender: str,
    workers: int,
    chunksize: int | None = None,
    start_method: str | None = None,
    api: str | None = None,
) -> Adapter:
    """An adapter for ``contender``'s pool, its workers started by a small warm-up map
    through ``api`` (default: its main API; mpire's kept-alive workers keep the wrapper
    of the first API used, so warm up with the one measured)."""
    pool = ADAPTERS[contender](workers, chunksize, start_method)
    pool.run(api or pool_api(contender), noop, list(range(4 * workers)))
    return pool


def pool_api(contender: str) -> str:
    """The first (main) mapping API of ``contender``."""
    return APIS[contender][0]
