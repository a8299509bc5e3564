"""Progress bars for ``map``/``imap``/``imap_unordered``/``Executor.map`` (``progress=``).

The bar counts finished tasks and shows the rate and, when the input's length is known, the
percentage and the time left. It is drawn with `tqdm <https://tqdm.github.io>`_ when it is
installed (``pip install workhorse[progress]``), and otherwise by :class:`LineBar`, a small
single-line renderer (also on a terminal that reports 0 columns, where tqdm draws nothing).
The pools tick it from their tasks' done-callbacks (any thread), so every bar is a
:class:`ProgressBar`, safe to update from several threads.

When a bar appears (``progress=``):

* ``False`` or ``None`` (the default): never, so a drop-in pool prints nothing new;
* ``True``: on standard error, when standard error is a terminal (logs and CI stay clean);
* ``"always"``: on standard error, terminal or not;
* a text stream (anything with ``write``): on that stream, always.

Bars nest: a bar opened while another is open on the same stream (a map run for each item of
another map, the maps in a task group's body, two maps in two threads) is shown beside it,
not over it. With tqdm it takes the next line and is erased when it closes (``leave=False``);
the line bar draws every open bar of its stream on one line, ``outer | inner``. Only the
outermost bar's final state stays on screen.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import IO, Any, ClassVar

from ._options import Progress

__all__ = ["LineBar", "ProgressBar", "SubmitBars", "make_bar"]

REFRESH = 0.1  # seconds between two renderings


class ProgressBar:
    """The bar a pool ticks: thread-safe, counting, over tqdm or :class:`LineBar`.

    Example::

        bar = make_bar("always", total=10, desc="work")
        bar.update()              # from any thread, e.g. a task's done-callback
        bar.close(done=10)        # make sure the final count shows, then end the line
    """

    def __init__(self, backend: Any, stream: Any = None) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._closed = False
        self.count = 0
        self._stream = stream  # whose open bars this one is counted among (see _depth)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more finished tasks (ignored once closed)."""
        with self._lock:
            if not self._closed:
                self.count += n
                self._backend.update(n)

    def describe(self, text: str) -> None:
        """Show ``text`` as the bar's label from now on (``workhorse map``: failures so far)."""
        with self._lock:
            if self._closed:
                return
            backend = self._backend
            if isinstance(backend, LineBar):
                backend.describe(text)
            else:
                backend.set_description(text, refresh=False)

    @property
    def total(self) -> int:
        """How many tasks it counts towards (0 when unknown)."""
        return int(self._backend.total or 0)

    def grow(self, n: int = 1) -> None:
        """``n`` more tasks to count (a ``submit``: the total is not known in advance)."""
        with self._lock:
            if not self._closed:
                backend = self._backend
                backend.total = (backend.total or 0) + n

    def close(self, done: int | None = None) -> None:
        """Bring the count up to ``done`` (callbacks may lag the results), draw, end the line."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if done is not None and done > self.count:
                self._backend.update(done - self.count)
                self.count = done
            self._backend.close()
        if self._stream is not None:
            _leave(self._stream, self)


def make_bar(progress: Progress, total: int | None, desc: str = "") -> ProgressBar | None:
    """A bar for ``total`` tasks (``None``: unknown) as ``progress`` asks, or ``None``.

    Example::

        bar = make_bar(io.StringIO(), total=10, desc="work")
        bar.update(3)
        bar.close()
    """
    stream = _stream(progress)
    if stream is None:
        return None
    tqdm: Any = None
    if not _zero_width(stream):  # tqdm would fit its bar into 0 columns: draw nothing at all
        try:
            import tqdm as tqdm_module  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            pass
        else:
            tqdm = tqdm_module.tqdm
    with _open_lock:
        depth = len(_open.setdefault(id(stream), []))
        if tqdm is None:
            backend: Any = LineBar(stream, total, desc)
        else:

            class QuietTqdm(tqdm):  # type: ignore[misc,valid-type,unused-ignore]
                monitor_interval = 0  # no monitor thread: the bar must not outlive its pool

            backend = QuietTqdm(
                total=total, desc=desc or None, unit="task", file=stream, dynamic_ncols=True,
                position=depth, leave=depth == 0,
            )  # fmt: skip
        bar = ProgressBar(backend, stream)
        _open[id(stream)].append(bar)
    return bar


# The bars open on each stream (by id), oldest first: a bar's depth is its place here.
_open: dict[int, list[ProgressBar]] = {}
_open_lock = threading.Lock()


def _leave(stream: Any, bar: ProgressBar) -> None:
    with _open_lock:
        bars = _open.get(id(stream), [])
        if bar in bars:
            bars.remove(bar)
        if not bars:
            _open.pop(id(stream), None)


class SubmitBars:
    """The bars of one pool's ``submit`` calls (shared by its ``with_options`` views): one per
    ``progress`` setting, its total growing with each submit, ticked as each future is done,
    closed when the pool shuts down.

    Example::

        bars = SubmitBars()
        bars.track("always", future)   # total + 1; + 1 done when the future is
        bars.close()
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bars: dict[Any, ProgressBar | None] = {}  # None: this setting shows no bar
        self._closing = False

    def track(self, progress: Progress, future: Any) -> None:
        with self._lock:
            if progress in self._bars:
                bar = self._bars[progress]
            else:
                bar = self._bars[progress] = make_bar(progress, 0, "submitted")
            if bar is None:
                return
            bar.grow()

        def done(_: Any) -> None:
            bar.update()
            if self._closing and bar.count >= bar.total:
                bar.close()  # the pool shut down without waiting: its last task ends the bar

        future.add_done_callback(done)

    def close(self, wait: bool = True) -> None:
        """End the bars (``wait=False``: each when its last task is done)."""
        with self._lock:
            self._closing = True
            bars = [bar for bar in self._bars.values() if bar is not None]
        for bar in bars:
            if wait or bar.count >= bar.total:
                bar.close()


def _zero_width(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal that reports no size (0 columns: a fresh pty, some CI
    runners and serial consoles)."""
    try:
        fd = stream.fileno()
        return os.isatty(fd) and os.get_terminal_size(fd).columns == 0
    except (AttributeError, OSError, ValueError):  # not a file (io.UnsupportedOperation too)
        return False


def _stream(progress: Progress) -> IO[str] | None:
    if progress is None or progress is False:
        return None
    if progress is True:
        stderr = sys.stderr
        isatty = getattr(stderr, "isatty", None)
        return stderr if stderr is not None and isatty is not None and isatty() else None
    if progress == "always":
        return sys.stderr
    return progress  # type: ignore[return-value]


class LineBar:
    """A one-line progress bar for when tqdm is not installed.

    Renders ``desc: 42/100 [42%] 12.5 tasks/s, ETA 0:05`` (without the total, the percentage
    and the ETA when the length is unknown), at most every ``REFRESH`` seconds, rewriting the
    line with ``\\r``; ``close()`` draws the final state and ends the line.

    Example::

        bar = LineBar(sys.stderr, total=3, desc="work")
        for _ in range(3):
            bar.update()
        bar.close()
    """

    def __init__(self, stream: IO[str], total: int | None, desc: str = "") -> None:
        self.total, self._desc = total, desc
        self._count = 0
        self._started = time.monotonic()
        self._closed = False
        self._line = _Line.of(stream)
        self._line.add(self)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more finished tasks; redraw if the last drawing is old enough."""
        line = self._line
        with line.lock:
            if self._closed:
                return
            self._count += n
            now = time.monotonic()
            if now - line.drawn_at >= REFRESH:
                line.draw(now)

    def describe(self, text: str) -> None:
        """Label the bar ``text`` (shown at the next drawing)."""
        self._desc = text

    def close(self) -> None:
        """Draw the final count and end the line (once); a bar nested in another is
        erased from their shared line instead."""
        line = self._line
        with line.lock:
            if self._closed:
                return
            self._closed = True
            line.remove(self)

    def render(self, now: float) -> str:
        """The line for the current count at time ``now``."""
        elapsed = max(now - self._started, 1e-9)
        rate = self._count / elapsed
        parts = [f"{self._desc}: " if self._desc else ""]
        if self.total is None:
            parts.append(f"{self._count} tasks")
        else:
            percent = 100 * self._count // self.total if self.total else 100
            parts.append(f"{self._count}/{self.total} [{percent}%]")
        parts.append(f" {rate:.1f} tasks/s, elapsed {_clock(elapsed)}")
        if self.total is not None and self._count < self.total:
            eta = (self.total - self._count) / rate if rate > 0 else None
            parts.append(f", ETA {_clock(eta) if eta is not None else '?'}")
        return "".join(parts)


class _Line:
    """The line of one stream that its open :class:`LineBar` s share, oldest first."""

    _lines: ClassVar[dict[int, _Line]] = {}  # by the stream's id, while a bar is open on it
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.bars: list[LineBar] = []
        self.lock = threading.Lock()
        self.width = 0
        self.drawn_at = 0.0
        self.broken = False

    @classmethod
    def of(cls, stream: IO[str]) -> _Line:
        with cls._guard:
            line = cls._lines.get(id(stream))
            if line is None or line.stream is not stream:
                line = cls._lines[id(stream)] = cls(stream)
            return line

    def add(self, bar: LineBar) -> None:
        with self.lock:
            self.bars.append(bar)
            self.draw(time.monotonic())

    def remove(self, bar: LineBar) -> None:
        """(lock held) The last bar leaves its final state and ends the line; another one
        is erased, the others redrawn."""
        now = time.monotonic()
        if len(self.bars) == 1:
            self.draw(now)
            self.write("\n")
            self.width = 0
            with self._guard:
                if self._lines.get(id(self.stream)) is self:
                    del self._lines[id(self.stream)]
        self.bars.remove(bar)
        if self.bars:
            self.draw(now)

    def draw(self, now: float) -> None:
        text = " | ".join(bar.render(now) for bar in self.bars)
        padding = " " * max(0, self.width - len(text))  # erase a longer previous line
        self.width = len(text)
        self.drawn_at = now
        self.write(f"\r{text}{padding}")

    def write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.broken = True  # the stream went away: stop drawing, never fail the pool


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
