"""Checking a scheduler address before Dask's client is made to connect to it.

Why by hand: ``distributed.Client(address, timeout=5)`` retries a refused connection until its
timeout (30 s by default), hangs for good on a port that accepts TCP but is not a scheduler (an
HTTP server, the dashboard's port), and, for a malformed address, raises at once but leaves a
half-made client whose ``__del__`` stalls the interpreter's exit for a minute. So the address is
parsed here, and a TCP one is probed within the caller's timeout: a Dask scheduler greets every
new connection at once with its handshake (a framed msgpack map naming its ``compression``);
anything else is not one. Only a checked address reaches ``Client``.
"""

from __future__ import annotations

import socket
import time
from typing import Any

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "check_scheduler"]

#: Seconds ``workhorse.dask(address=...)`` waits for a scheduler, unless ``timeout=`` says.
DEFAULT_CONNECT_TIMEOUT = 10.0
_GREETING = b"compression"  # a key of the handshake every scheduler sends first
_GREETING_BYTES = 512  # it comes within its first frame, well inside this


def check_scheduler(distributed: Any, address: str, timeout: float) -> None:
    """Raise unless a Dask scheduler answers at ``address`` within ``timeout`` seconds.

    Raises:
        ValueError: the address is malformed (no scheme can parse it, no port).
        ConnectionRefusedError: nothing listens there.
        TimeoutError: no TCP connection within the timeout (a filtered port, an unreachable host).
        ConnectionError: something listens there but is not a Dask scheduler.

    Example::

        check_scheduler(distributed, "tcp://10.0.0.5:8786", 5.0)
    """
    try:
        scheme, location = distributed.comm.parse_address(address)
        if scheme not in ("tcp", "tls"):
            return  # inproc, ucx, ws...: Dask's own connector is the only judge
        host, port = distributed.comm.parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a Dask scheduler address: {address!r} ({exc})") from None
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise TimeoutError(
            f"no answer from the Dask scheduler address {address} within {timeout} s "
            "(an unreachable host, or a port that drops connections)"
        ) from None
    except ConnectionRefusedError:
        raise ConnectionRefusedError(
            f"no Dask scheduler at {address}: nothing listens there (connection refused)"
        ) from None
    except OSError as exc:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with sock:
        if scheme == "tls":
            return  # a TLS server speaks only after the client's hello: Dask's job
        _expect_greeting(sock, address, timeout, deadline)


def _expect_greeting(sock: socket.socket, address: str, timeout: float, deadline: float) -> None:
    received = b""
    while _GREETING not in received and len(received) < _GREETING_BYTES:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(_GREETING_BYTES)
        except TimeoutError:
            break
        except OSError as exc:
            raise ConnectionError(f"{address} closed the connection: {exc}") from None
        if not chunk:
            break
        received += chunk
    if _GREETING in received:
        return
    if not received:
        raise ConnectionError(
            f"{address} accepts connections but is not a Dask scheduler: it sent nothing "
            f"within {timeout} s, where a scheduler greets at once (a dashboard or another "
            "server on that port?)"
        )
    raise ConnectionError(
        f"{address} is not a Dask scheduler: it answered {received[:40]!r}, not Dask's handshake"
    )
