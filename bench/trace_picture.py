"""Run a small mixed workload with ``trace=`` and draw the trace file as a picture.

    python bench/trace_picture.py docs/trace.json docs/trace.png

The trace itself opens in https://ui.perfetto.dev (one track per worker); the picture shows
the same slices, for readers of docs/ (drawn with matplotlib from the JSON, as Perfetto would
lay it out: a row per worker, a bar per batch, a tick per worker event).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import workhorse


def work(units: int) -> int:
    end = time.perf_counter() + units * 0.002
    while time.perf_counter() < end:
        pass
    if units == 7:
        raise ValueError("seven")
    return units


def record(path: Path) -> None:
    """Short and long tasks, one that fails and is retried, one that times out."""
    with workhorse.Pool(2, trace=path, retries=1, retry_on=ValueError, timeout=1.0) as pool:
        pool.map(work, [1] * 200 + [40, 60, 30, 50])
        for result in [pool.apply_async(work, (u,)) for u in (7, 20, 25)]:
            result.wait()
        try:
            pool.apply(work, (1000,))  # 2 s: past its 1 s timeout, its worker is killed
        except workhorse.TaskTimeout:
            pass
        pool.map(work, [2] * 100)
        print(pool.insights())


def draw(trace: Path, picture: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = json.loads(trace.read_text())["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    rows = sorted(names)
    figure, axes = plt.subplots(figsize=(10, 0.7 * len(rows) + 1.2))
    for event in events:
        if event["ph"] == "M":
            continue
        row = rows.index(event["tid"])
        start = event["ts"] / 1e3
        if event["ph"] == "X":
            color = "#4c72b0" if event["args"]["tasks"] > 1 else "#dd8452"
            axes.broken_barh([(start, event["dur"] / 1e3)], (row - 0.35, 0.7), color=color)
        else:
            axes.plot([start], [row], marker="v", color="#c44e52")
            axes.annotate(event["name"], (start, row + 0.42), fontsize=7, ha="center")
    axes.set_yticks(range(len(rows)), [names[tid] for tid in rows])
    axes.set_xlabel("ms since the pool started (blue: a batch of tasks, orange: one task)")
    axes.invert_yaxis()
    axes.set_title("Pool(2, trace=..., retries=1, retry_on=ValueError, timeout=1.0)")
    figure.tight_layout()
    figure.savefig(picture, dpi=110)


if __name__ == "__main__":
    trace_path, picture_path = (Path(arg) for arg in sys.argv[1:3])
    record(trace_path)
    draw(trace_path, picture_path)
