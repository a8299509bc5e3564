"""What ``workhorse run`` runs for one input: a shell command, built from a template with GNU
parallel's placeholders, in a process group of its own.

Placeholders (each value shell-quoted, as GNU parallel does): ``{}`` the input, ``{.}`` without
its extension, ``{/}`` its base name, ``{//}`` its directory, ``{/.}`` the base name without
extension, ``{#}`` the job number (1-based). A template without any gets `` {}`` appended.

The command's standard output and error are captured apart; ``--timeout`` kills its whole
process group (the shell and everything it started), and so does ``--halt now``.

Example::

    run = Command("gzip -k {}", timeout=60)
    ok, text, worker, seconds = run((1, "data.csv"))   # text: {"command": ..., "exit": 0, ...}
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from typing import Any

from .._worker_info import worker

__all__ = ["Command", "expand"]

_PLACEHOLDER = re.compile(r"\{(#|/\.|//|/|\.|)\}")


def expand(template: str, value: str, number: int) -> str:
    """``template`` with its placeholders replaced for input ``value``, job ``number``."""
    if not _PLACEHOLDER.search(template):
        template += " {}"

    def replace(match: re.Match[str]) -> str:
        kind = match.group(1)
        if kind == "#":
            return str(number)
        head, base = os.path.split(value)
        stem = {
            "": value, ".": os.path.splitext(value)[0], "/": base,
            "//": head or ".", "/.": os.path.splitext(base)[0],
        }[kind]  # fmt: skip
        return shlex.quote(stem)

    return _PLACEHOLDER.sub(replace, template)


class Command:
    """Runs ``template`` for one ``(number, input)`` (see the module docstring); thread-safe,
    and :meth:`kill_all` stops every command it has running.

    ``halt`` (``("now" | "soon", N)``, with ``retries``) is applied here, in the thread whose
    command made the Nth failure, before that thread takes its next input: with ``soon`` no
    command starts after it, as with GNU parallel.
    """

    def __init__(
        self, template: str, timeout: float | None = None,
        halt: tuple[str, int] | None = None, retries: int = 0,
    ) -> None:  # fmt: skip
        self.template, self.timeout, self.halt, self.retries = template, timeout, halt, retries
        self._tries: dict[int, int] = {}
        self._failures = 0
        self.__qualname__ = f"command {template!r}"  # how pool messages name the task
        self._running: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self._killed = False  # --halt now: running commands were killed
        self._halted = False  # --halt (now or soon): none starts any more

    def __call__(self, item: tuple[int, str]) -> tuple[bool, str, str, float]:
        number, value = item
        command = expand(self.template, value, number)
        info = worker()
        where = info.name if info is not None else "caller"
        began = time.perf_counter()
        if self._halted:  # --halt: no command starts any more
            return False, self._fields(command, None, "", "", "Halted", "halted"), where, 0.0
        process = subprocess.Popen(
            command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
        )  # fmt: skip
        with self._lock:  # (not held while starting: the threads start commands at once)
            self._running.add(process)
            killed = self._killed
        if killed:  # --halt now came while it was starting
            _kill_group(process)
        try:
            out, err = process.communicate(timeout=self.timeout)
            problem = None
        except subprocess.TimeoutExpired:
            _kill_group(process)
            out, err = process.communicate()
            problem = ("Timeout", f"killed after {self.timeout:g} s (its process group)")
        finally:
            with self._lock:
                self._running.discard(process)
        seconds = time.perf_counter() - began
        code = process.returncode
        if problem is None and self._killed and code != 0:
            problem = ("Halted", "killed by --halt now")
        if problem is None and code != 0:
            problem = ("CommandFailed", f"exit status {code}")
        kind, message = problem if problem is not None else ("", "")
        text = self._fields(command, code, out, err, kind, message)
        if problem is not None and kind != "Halted":
            self._failed(number)
        return problem is None, text, where, seconds

    def _failed(self, number: int) -> None:
        with self._lock:
            tries = self._tries[number] = self._tries.get(number, 0) + 1
            if tries <= self.retries or self.halt is None:
                return  # it runs again
            self._failures += 1
            reached = self._failures >= self.halt[1]
        if reached:
            self.kill_all() if self.halt[0] == "now" else self.stop_starting()

    @staticmethod
    def _fields(command: str, code: int | None, out: str, err: str, kind: str, why: str) -> str:
        fields: dict[str, Any] = {"command": command, "exit": code, "stdout": out, "stderr": err}
        if kind:
            fields = {"type": kind, "message": why, **fields}
        return json.dumps(fields)

    def __reduce__(self) -> tuple[Any, ...]:
        # To a Dask worker (--dask): the template and limits; its running set is its own.
        return (Command, (self.template, self.timeout, self.halt, self.retries))

    @property
    def halted(self) -> bool:
        """``--halt`` came: no command starts any more."""
        return self._halted

    def stop_starting(self) -> None:
        """Start no new command (``--halt soon``); the running ones finish."""
        self._halted = True

    def kill_all(self) -> None:
        """Kill every running command's process group; start no new one (``--halt now``)."""
        self._halted = True
        with self._lock:
            self._killed = True
            running = list(self._running)
        for process in running:
            _kill_group(process)


def _kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
