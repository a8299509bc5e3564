"""Thread pool executor, map.

Three threads fetch 3 web pages (I/O-bound work belongs in threads) and ``map`` returns their
HTTP status codes in input order; the pages come from a local server, as the tour needs no
internet. ``workhorse.threads.ThreadPoolExecutor`` is a drop-in for the stdlib's whose ``map``
pulls its input lazily, so it also works over an endless stream of URLs.
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
        for url, status in zip(urls, pool.map(fetch, urls), strict=True):
            print(f"{urlsplit(url).path} -> {status}")


if __name__ == "__main__":
    main()
