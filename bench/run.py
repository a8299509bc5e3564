"""One command for the whole suite: ``python bench/run.py [--quick] [--only WORKLOAD ...]``
(``python bench/run.py profile [tiny|queues]`` for the py-spy profiles).

Creates or updates the isolated environment ``bench/.venv`` (the pinned peers of
``bench/requirements.txt``, and workhorse built from the working tree), then runs
``bench.main`` in it. Standard library only: it runs under any Python >= 3.11.

A peer that fails to install is left out (its rows say "skipped"); ``--no-install`` reuses
the environment as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / "requirements.sha256"
INSTALL_NOTES = VENV / "install-notes.json"


def pip(*args: str) -> bool:
    """Run pip in the benchmark environment; True if it succeeded."""
    command = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q", *args]
    return subprocess.run(command, check=False).returncode == 0


def requirement_lines() -> list[str]:
    lines = (BENCH / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def install() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 -- any python3 may start this script
        sys.exit("bench/run.py needs Python >= 3.11 (workhorse's minimum)")
    if not PYTHON.exists():
        print(f"creating {VENV.relative_to(ROOT)} with {sys.executable}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    digest = hashlib.sha256((BENCH / "requirements.txt").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != digest:
        print("installing the pinned peers (bench/requirements.txt)", flush=True)
        failed: list[str] = []
        pip("install", "setuptools>=68", "wheel")
        if not pip("install", "-r", str(BENCH / "requirements.txt")):
            # Install one by one so that one peer that cannot build does not stop the rest.
            failed = [line for line in requirement_lines() if not pip("install", line)]
        # workhorse's own dependencies, once (later installs use --no-deps).
        pip("install", "--no-build-isolation", str(ROOT))
        INSTALL_NOTES.write_text(json.dumps({"failed": failed}))
        STAMP.write_text(digest)
    print("installing workhorse from the working tree", flush=True)
    if not pip("install", "--no-build-isolation", "--no-deps", "--force-reinstall", str(ROOT)):
        sys.exit("could not install workhorse from the working tree")


def main() -> None:
    args = sys.argv[1:]
    if "--no-install" in args:
        args.remove("--no-install")
    else:
        install()
    os.chdir(ROOT)
    if args[:1] == ["profile"]:
        os.execv(str(PYTHON), [str(PYTHON), "-m", "bench.profile", *args[1:]])
    os.execv(str(PYTHON), [str(PYTHON), "-m", "bench.main", *args])


if __name__ == "__main__":
    main()
