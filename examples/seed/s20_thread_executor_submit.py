"""Thread pool executor, submit.

The same 3 page fetches with ``submit``: each returns a future at once, and ``result()`` waits
for that page's status code. The pool is ``workhorse.threads.ThreadPoolExecutor``, a drop-in for
the stdlib's whose futures are real ``concurrent.futures.Future`` objects.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlsplit

from workhorse.threads import ThreadPoolExecutor  # a drop-in for concurrent.futures

from . import local_pages  # a tiny local web server: the tour needs no internet

# Talk to the local server directly, even where a proxy is configured.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str) -> int:
    """Download one page and return its HTTP status code."""
    with opener.open(url, timeout=10) as response:
        response.read()
        status: int = response.status
        return status


def main() -> None:
    with local_pages(3) as urls, ThreadPoolExecutor(max_workers=3) as pool:
        futures = {url: pool.submit(fetch, url) for url in urls}
        for url, future in futures.items():
            print(f"{urlsplit(url).path} -> {future.result()}")


if __name__ == "__main__":
    main()
