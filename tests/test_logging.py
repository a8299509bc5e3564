"""What pools log (``workhorse.<backend>`` loggers) and the notes a retried task's error
carries: the same records on every backend, nothing printed by a program that configured no
logging."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

import workhorse

BOUND = 30
BACKENDS = ["processes", "threads", "serial"]


def always_fails(x: int) -> int:
    raise ValueError(f"boom {x}")


def sigkill_self(x: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return x


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def broken_initializer() -> None:
    raise RuntimeError("no database")


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("workhorse") and r.levelno == level]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_retried_task_logs_each_retry_and_its_error_notes_every_earlier_try(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="workhorse")
    with workhorse.ProcessPoolExecutor(2, retries=2, backend=backend) as pool:
        future = pool.submit(always_fails, 7)
        error = future.exception(timeout=BOUND)
    assert isinstance(error, ValueError)
    assert str(error) == "boom 7"
    assert error.__notes__[-2:] == [
        "try 1 of 3 failed: ValueError: boom 7",
        "try 2 of 3 failed: ValueError: boom 7",
    ]
    retries = [r.getMessage() for r in _records(caplog, logging.INFO) if "running it" in r.msg]
    assert len(retries) == 2
    assert (
        "always_fails(7) failed on try 1 of 3 (ValueError: boom 7); running it again"
        in (retries[0])
    )
    record = _records(caplog, logging.INFO)[0]
    assert record.name == f"workhorse.{backend}"
    assert record.getMessage().startswith(f"{record.pool}: ")  # type: ignore[attr-defined]
    assert record.pool.startswith("ProcessPoolExecutor-")  # type: ignore[attr-defined]
    assert any("started" in r.getMessage() for r in _records(caplog, logging.DEBUG))


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_retry_no_note(backend: str) -> None:
    with workhorse.Pool(2, backend=backend) as pool, pytest.raises(ValueError) as caught:
        pool.map(always_fails, [1])
    assert not [n for n in getattr(caught.value, "__notes__", []) if n.startswith("try ")]


def test_a_crashed_worker_is_a_warning_and_its_replacement_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="workhorse")
    with workhorse.ProcessPoolExecutor(1) as pool:
        with pytest.raises(workhorse.WorkerCrashed):
            pool.submit(sigkill_self, 3).result(timeout=BOUND)
        assert pool.submit(abs, -2).result(timeout=BOUND) == 2  # the replacement is up
    warnings = [r.getMessage() for r in _records(caplog, logging.WARNING)]
    assert any(
        "died (killed by SIGKILL) while running task sigkill_self(3)" in m for m in warnings
    ), warnings
    infos = [r.getMessage() for r in _records(caplog, logging.INFO)]
    assert any("replacing worker" in m and "it died (killed by SIGKILL)" in m for m in infos)
    started = [r for r in _records(caplog, logging.DEBUG) if "started" in r.getMessage()]
    assert len(started) >= 3  # the pool, its worker, the replacement


def test_a_timeout_is_a_warning_on_processes_and_threads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="workhorse")
    for backend, what in [("processes", "killing its worker"), ("threads", "replacing its thread")]:
        with workhorse.ProcessPoolExecutor(1, timeout=0.2, backend=backend) as pool:
            with pytest.raises(workhorse.TaskTimeout):
                pool.submit(nap, 1.5).result(timeout=BOUND)  # a thread runs it out
            assert pool.with_options(timeout=None).submit(abs, -1).result(timeout=BOUND) == 1
        warnings = [r.getMessage() for r in _records(caplog, logging.WARNING)]
        assert any("task nap(1.5) ran past its timeout of 0.2 s; " + what in m for m in warnings), (
            warnings
        )
        caplog.clear()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_broken_pool_is_a_warning(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="workhorse")
    pool = workhorse.ProcessPoolExecutor(1, initializer=broken_initializer, backend=backend)
    with pool, pytest.raises(workhorse.PoolBroken):
        pool.submit(abs, 1).result(timeout=BOUND)
    messages = [r.getMessage() for r in _records(caplog, logging.WARNING)]
    assert any("the pool is broken" in m and "no database" in m for m in messages), messages


def test_a_program_without_logging_configured_prints_nothing(tmp_path: Any) -> None:
    """The stdlib's pools print nothing when a task is retried, times out or crashes its
    worker; workhorse's records stay silent too until the program configures logging
    (``logging``'s last-resort handler would print WARNINGs to stderr)."""
    script = textwrap.dedent(
        """
        import os, signal, workhorse
        def crash(x):
            os.kill(os.getpid(), signal.SIGKILL)
        def fails(x):
            raise ValueError(x)
        if __name__ == "__main__":
            with workhorse.ProcessPoolExecutor(1, retries=1) as pool:
                for f in (crash, fails):
                    assert pool.submit(f, 1).exception(timeout=30) is not None
            print("done")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"
    assert "workhorse" not in done.stderr
    assert "died" not in done.stderr
