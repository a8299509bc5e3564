"""The ways into ``workhorse.dask()``: ``client=``, ``$DASK_SCHEDULER_ADDRESS``, bad
arguments, and the process-wide Dask config the embedded context holds while open."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

pytest.importorskip("distributed")

# The session's cluster and the Dask-aware leak guard (overrides the root no_leaks).
from dask_cluster import *  # noqa: F403

import workhorse
from workhorse._dask._context import EMBEDDED_CONFIG, WHILE_OPEN_CONFIG, DaskContext, _ConfigHold

pytestmark = pytest.mark.timeout(60)


def square(x: int) -> int:
    return x * x


def test_an_existing_client_is_used_and_left_open(cluster: DaskContext) -> None:
    with workhorse.dask(client=cluster.client) as context:
        assert context.client is cluster.client
        assert context.cluster is None
        with context.Pool() as pool:
            assert pool.map(square, range(10)) == [x * x for x in range(10)]
    assert cluster.client.status == "running"
    assert cluster.client.submit(square, 3).result(timeout=30) == 9


def test_the_scheduler_address_comes_from_the_environment(
    cluster: DaskContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = cluster.client.scheduler.address
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    with workhorse.dask() as remote:
        assert remote.cluster is None, "an address must connect, not start a cluster"
        assert remote.client.scheduler.address == address
        with remote.ProcessPoolExecutor() as executor:
            assert list(executor.map(square, [1, 2, 3])) == [1, 4, 9]
    # connecting and leaving closes only the context's own client, never the cluster
    assert cluster.client.submit(square, 4).result(timeout=30) == 16


def test_bad_argument_combinations_say_which(cluster: DaskContext) -> None:
    with pytest.raises(TypeError, match="client= alone"):
        workhorse.dask(address="tcp://127.0.0.1:1", client=cluster.client)
    with pytest.raises(TypeError, match="client= alone"):
        workhorse.dask(client=cluster.client, n_workers=1)
    with pytest.raises(TypeError, match=r"unexpected arguments with address=: \['n_workers'\]"):
        workhorse.dask(address=cluster.client.scheduler.address, n_workers=1)


def test_bad_argument_combinations_name_the_timeout(cluster: DaskContext) -> None:
    with pytest.raises(TypeError, match="client= alone"):
        workhorse.dask(client=cluster.client, timeout=5)
    for bad in (0, -1, "5", True):
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            workhorse.dask(address=cluster.client.scheduler.address, timeout=bad)  # type: ignore[arg-type]


def _elapsed_raising(error: type[BaseException], match: str, **kwargs: Any) -> float:
    started = time.monotonic()
    with pytest.raises(error, match=match):
        workhorse.dask(**kwargs)
    return time.monotonic() - started


def test_nothing_listening_fails_at_once_naming_the_address() -> None:
    # Dask's Client retried a refused connection for 30 s (and refused timeout= with address=).
    took = _elapsed_raising(
        ConnectionRefusedError, r"no Dask scheduler at tcp://127\.0\.0\.1:1: nothing listens",
        address="tcp://127.0.0.1:1", timeout=5,
    )  # fmt: skip
    assert took < 3


def _serve(greeting: bytes) -> tuple[socket.socket, threading.Thread, str]:
    """A loopback server that accepts, sends ``greeting`` and stays silent, as an HTTP
    server or a dashboard does (nothing until the client speaks)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def accept() -> None:
        held: list[socket.socket] = []
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                conn.sendall(greeting)
                held.append(conn)
        for conn in held:
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return server, thread, f"tcp://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("greeting", "match"),
    [
        (b"", r"accepts connections but is not a Dask scheduler: it sent nothing within 1"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", r"is not a Dask scheduler: it answered b'SSH-2.0"),
    ],
)
def test_a_port_that_is_not_a_scheduler_fails_within_the_timeout(
    greeting: bytes, match: str
) -> None:
    # Dask's Client hung there forever, whatever its timeout.
    server, thread, address = _serve(greeting)
    try:
        took = _elapsed_raising(ConnectionError, match, address=address, timeout=1)
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        server.close()
        thread.join(10)
    assert took < 3


def test_a_malformed_address_fails_at_once_and_the_interpreter_exits_promptly() -> None:
    # It raised quickly, but a half-made Client's __del__ then held the exit for 60 s.
    code = (
        "import workhorse\n"
        "try:\n"
        "    workhorse.dask(address='tcp://no-port-here', timeout=2)\n"
        "except ValueError as exc:\n"
        "    print('ValueError:', exc)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=50, check=True
    )
    assert "not a Dask scheduler address: 'tcp://no-port-here'" in done.stdout
    assert time.monotonic() - started < 20


def test_overlapping_contexts_keep_the_config_until_the_last_closes() -> None:
    """Two embedded contexts closed in the order they were opened (not nested): the settings
    hold until the second closes, then the user's own values come back."""
    import dask

    keys = list(WHILE_OPEN_CONFIG)
    mine = dict.fromkeys(keys, "77s")
    with dask.config.set(mine):
        hold = _ConfigHold()
        hold.acquire()  # the first context opens
        hold.acquire()  # the second
        hold.release()  # the first closes
        assert {k: dask.config.get(k) for k in keys} == WHILE_OPEN_CONFIG
        hold.release()  # the second closes
        assert {k: dask.config.get(k) for k in keys} == mine


def test_the_embedded_cluster_runs_with_its_config(cluster: DaskContext) -> None:
    def settings() -> dict[str, object]:
        import dask

        return {k: dask.config.get(k) for k in EMBEDDED_CONFIG}

    for seen in cluster.client.run(settings).values():
        assert seen == EMBEDDED_CONFIG
    # and, in this process while the context is open, what the scheduler and the nannies read
    # at each use: the lease, lost-worker, start-method and connect settings
    import dask

    assert {k: dask.config.get(k) for k in WHILE_OPEN_CONFIG} == WHILE_OPEN_CONFIG
