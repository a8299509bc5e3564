"""A cluster started the way operators do: ``dask scheduler`` and ``dask worker`` processes
on loopback, each in a session of its own, the scheduler's log kept in a file.

Imported by the test modules that need one (not a conftest.py: see dask_cluster.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["DASK", "ENV", "START", "CliCluster", "start_cli_cluster"]

START = 30.0  # seconds the command-line cluster may take to come up
DASK = shutil.which(
    "dask", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
)
# What the embedded cluster sets (see workhorse._dask._context), the operator's way.
ENV = {
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
    "DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_TIMEOUT": "10s",
}
# `dask scheduler` in a process where `import workhorse` fails, as where it is not installed
BLOCKED = (
    "import sys; sys.modules['workhorse'] = None; sys.argv[1:2] = []; "
    "from distributed.cli.dask_scheduler import main; main()"
)


class CliCluster:
    """A running command-line cluster: its ``address`` and the scheduler's ``log``."""

    def __init__(self, address: str, log: Path) -> None:
        self.address, self.log = address, log

    def scheduler_log(self) -> str:
        return self.log.read_text(errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (dask shuts down cleanly), then SIGKILL the whole session after a while."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the worker's nanny and worker, if left
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=15)


@contextlib.contextmanager
def start_cli_cluster(
    tmp_path: Path, *, defaults: bool = False, workers: int = 2, without_workhorse: bool = False
) -> Iterator[CliCluster]:
    """A scheduler and ``workers`` workers (each with its nanny, one thread) from the
    ``dask`` command; ``defaults``: Dask's own settings, not :data:`ENV`;
    ``without_workhorse``: a scheduler that cannot import workhorse."""
    if DASK is None:
        pytest.skip("the dask command-line program is not installed")
    scheduler_file = tmp_path / "scheduler.json"
    # the workers unpickle the tests' functions: they must find them, as a real
    # deployment's workers find the job's code
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, **({} if defaults else ENV), "PYTHONPATH": path}
    started: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "scheduler.log"

    def launch(*args: str, output: int | object = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        program = [str(DASK)]
        if without_workhorse and args[0] == "scheduler":
            program = [sys.executable, "-c", BLOCKED]
        process = subprocess.Popen(
            [*program, *args], env=env, cwd=tmp_path, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=output,  # type: ignore[arg-type]
        )  # fmt: skip
        started.append(process)
        return process

    try:
        with log.open("wb") as sink:
            scheduler = launch("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(scheduler_file), output=sink)  # fmt: skip
        deadline = time.monotonic() + START
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            if scheduler.poll() is not None or time.monotonic() > deadline:
                pytest.skip("`dask scheduler` did not start here")
            time.sleep(0.05)
        address = json.loads(scheduler_file.read_text())["address"]
        if workers:
            launch("worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                   "--nworkers", str(workers), "--no-dashboard")  # fmt: skip
        yield CliCluster(address, log)
    finally:
        for process in reversed(started):
            _stop(process)
