"""The ``workhorse`` command: ``demo``, ``demo --list``, ``--version`` and usage errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from workhorse._cli import main, scenarios


def test_cli_scenarios_are_the_twenty_of_the_seed() -> None:
    tour = scenarios()
    assert [s.number for s in tour] == list(range(1, 21))
    assert tour[2].module == "s03_queue"
    assert tour[2].title == "Queue"
    assert all(s.explanation for s in tour), "every script explains what it shows"


def test_cli_list_prints_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 20
    assert out[2] == " 3  Queue"
    assert out[19] == "20  Thread pool executor, submit"


def test_cli_demo_runs_the_chosen_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "10"]) == 0
    out = capsys.readouterr().out
    assert "[10/20] Function as a thread\n" in out
    assert "    thread A returned 3\n" in out, "the scenario's output is streamed, indented"
    assert "[11/20]" not in out
    assert out.splitlines()[-1].startswith("1 scenario passed in ")


def test_cli_demo_reports_a_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "1", "--timeout", "0.01"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: scenario 1 timed out after 0.01 s" in out
    assert out.splitlines()[-1].startswith("1 of 1 scenario failed in ")


def test_cli_unknown_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "3", "99"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown scenario 99: choose from 1 to 20" in captured.err


def test_cli_without_a_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: workhorse" in capsys.readouterr().err


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"workhorse {metadata.version('workhorse')}\n"


def test_cli_help_mentions_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--help"]) == 0
    assert "--list" in capsys.readouterr().out


def test_cli_console_script_runs() -> None:
    script = shutil.which("workhorse", path=str(Path(sys.executable).parent))
    assert script is not None, "the console script is installed next to the interpreter"
    listing = subprocess.run(
        [script, "demo", "--list"], capture_output=True, text=True, timeout=30, check=False
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0] == " 1  Function as a process"
    unknown = subprocess.run(
        [script, "demo", "0"], capture_output=True, text=True, timeout=30, check=False
    )
    assert unknown.returncode == 2
    assert "unknown scenario 0" in unknown.stderr


def test_cli_runs_as_a_module() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "workhorse", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert version.returncode == 0
    assert version.stdout.startswith("workhorse ")
