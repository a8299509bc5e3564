"""Tutorial 19: ThreadPoolExecutor.map for I/O-bound work: fetch three pages, print statuses.

The tutorial fetched public web sites; this serves three paths from a local HTTP server run
in a thread (one of them missing), so the program is offline and deterministic.
"""

import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = self.path in ("/index.html", "/about.html")
        body = f"page {self.path}".encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep stderr quiet


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    paths = ["/index.html", "/missing.html", "/about.html"]
    with ThreadPoolExecutor(max_workers=3) as executor:
        for path, status in zip(paths, executor.map(fetch, [base + p for p in paths]), strict=True):
            print(path, status)
    server.shutdown()
    serving.join()
    server.server_close()
