"""The seed tour: one script per scenario of the tutorial workhorse grew from.

Each ``sNN_*.py`` script is short enough to read as documentation and runs on its own::

    python -m workhorse._tour.s03_queue

``workhorse demo`` runs them all in order. Two helpers are shared: :func:`say`, a ``print``
whose lines stay whole when several threads or processes print at once, and
:func:`local_pages`, because the tutorial's executor scenarios fetch web pages and the tour
serves its own so that it needs no internet access.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

__all__ = ["local_pages", "say"]


def say(line: str) -> None:
    """Print ``line`` in one write and flush it at once.

    ``print`` writes the text and the newline separately, so when several threads or processes
    print at the same moment their lines can mix ("put 3got 3"), and an unflushed child's output
    lags behind the others'. One write per whole line keeps the tour's output readable.

    Example::

        say(f"consumer got {item}")
    """
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


@contextlib.contextmanager
def local_pages(count: int = 3) -> Iterator[list[str]]:
    """Serve ``count`` small HTML pages from 127.0.0.1 for as long as the block runs.

    The server listens on an ephemeral port, answers from a background thread and is shut
    down when the block exits.

    Example::

        with local_pages(3) as urls:
            print(urls[0])   # http://127.0.0.1:45678/page1
    """
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"<html><body><h1>{self.path}</h1></body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the tour's output clean: no access log on stderr."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, name="local-pages")
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield [f"http://{host!s}:{port}/page{i}" for i in range(1, count + 1)]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
