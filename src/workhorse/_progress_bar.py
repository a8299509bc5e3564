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
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import IO, Any

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

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._closed = False
        self.count = 0

    def update(self, n: int = 1) -> None:
        """Count ``n`` more finished tasks (ignored once closed)."""
        with self._lock:
            if not self._closed:
                self.count += n
                self._backend.update(n)

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
    if _zero_width(stream):  # tqdm would fit its bar into 0 columns: draw nothing at all
        return ProgressBar(LineBar(stream, total, desc))
    try:
        from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return ProgressBar(LineBar(stream, total, desc))

    class QuietTqdm(tqdm):  # type: ignore[misc,unused-ignore]
        monitor_interval = 0  # no monitor thread: the bar must not outlive its pool

    bar = QuietTqdm(total=total, desc=desc or None, unit="task", file=stream, dynamic_ncols=True)
    return ProgressBar(bar)


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
        self._stream, self.total, self._desc = stream, total, desc
        self._count = 0
        self._started = self._drawn_at = time.monotonic()
        self._width = 0
        self._closed = False
        self._lock = threading.Lock()
        self._draw(self._started)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more finished tasks; redraw if the last drawing is old enough."""
        with self._lock:
            if self._closed:
                return
            self._count += n
            now = time.monotonic()
            if now - self._drawn_at >= REFRESH:
                self._draw(now)

    def close(self) -> None:
        """Draw the final count and end the line (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._draw(time.monotonic())
            self._write("\n")

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

    def _draw(self, now: float) -> None:
        line = self.render(now)
        padding = " " * max(0, self._width - len(line))  # erase a longer previous line
        self._width = len(line)
        self._drawn_at = now
        self._write(f"\r{line}{padding}")

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            self._closed = True  # the stream went away: stop drawing, never fail the pool


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
