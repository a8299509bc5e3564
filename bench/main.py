"""The suite's driver, run inside ``bench/.venv`` by ``bench/run.py``: every workload, then
``results.md``, ``results.json`` and one PNG per workload in ``bench/results/<timestamp>/``."""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import report
from .harness import ROOT, WorkloadResult, run_workload
from .workloads import KEYS, load

PACKAGES = ("workhorse", "mpire", "loky", "joblib", "pebble", "faster-fifo", "numpy", "matplotlib")


def machine_info(quick: bool) -> dict[str, Any]:
    """What the figures depend on: hardware, Python, versions, load."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed (skipped)"
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    info: dict[str, Any] = {
        "date (UTC)": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "mode": "--quick" if quick else "full",
        "cores": f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable)",
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "default start method": (
            f"{multiprocessing.get_start_method()} (workhorse follows multiprocessing's default)"
        ),
        "workhorse tree": commit or "unknown",
        "versions": versions,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    notes = ROOT / "bench" / ".venv" / "install-notes.json"
    if notes.exists() and (failed := json.loads(notes.read_text()).get("failed")):
        info["peers that failed to install (skipped)"] = ", ".join(failed)
    return info


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, ~3 minutes")
    parser.add_argument("--only", nargs="+", choices=KEYS, metavar="WORKLOAD", help=str(KEYS))
    parser.add_argument("--reps", type=int, help="repetitions per job (overrides the mode)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply sizes (smoke runs: e.g. 0.01)"
    )
    parser.add_argument("--out", type=Path, help="results folder (default: timestamped)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ["WH_BENCH_SCALE"] = str(args.scale)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / "bench" / "results" / stamp
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_info(args.quick)
    if args.scale != 1:
        machine["scale"] = args.scale
    print(report.machine_markdown(machine), flush=True)
    started = time.monotonic()
    results: list[WorkloadResult] = []
    sections = []
    for key in args.only or KEYS:
        workload = load(key)
        print(f"\n== {workload.title}", flush=True)
        result = run_workload(
            workload,
            args.quick,
            out / "logs",
            args.reps,
            progress=lambda text: print(text, flush=True),
        )
        results.append(result)
        png = f"{key}.png"
        chart = png if report.chart(result, out / png) else None
        section = report.workload_markdown(result, chart)
        sections.append(section)
        print(f"\n{section}\n({result.seconds:.0f} s)", flush=True)
    machine["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    machine["duration"] = f"{time.monotonic() - started:.0f} s"
    header = [
        "# workhorse benchmark results",
        "",
        report.__doc__.split("\n\n", 1)[1].strip() if report.__doc__ else "",
        "",
        report.machine_markdown(machine),
        "",
    ]
    (out / "results.md").write_text("\n".join(header + sections))
    data = {"machine": machine, "workloads": {r.workload.key: report.to_json(r) for r in results}}
    (out / "results.json").write_text(json.dumps(data, indent=1, default=str))
    print(f"\nResults in {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
