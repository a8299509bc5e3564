"""Markdown tables, PNG charts and the JSON record of a benchmark run.

Ratios are *speed* ratios: how many times faster a row is than the reference (for times,
reference time / time), so > 1 always means faster. "stdlib" is the fastest standard-library
row of the same case, "best peer" the fastest non-workhorse row (stdlib included), "limit"
the physical limit or ideal of the workload (serial loop, ``np.copy``, raw pipe, ideal
schedule).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .harness import LIMIT, STDLIB, VARIANT_SEP, WORKHORSE, Best, WorkloadResult

KIND_ORDER = {WORKHORSE: 0, STDLIB: 1, "peer": 2, LIMIT: 3}
COLOURS = {WORKHORSE: "#d95f02", STDLIB: "#1f78b4", "peer": "#7f7f7f", LIMIT: "#33a02c"}


def speed(value: float, reference: float, higher_is_better: bool) -> float:
    """How many times faster ``value`` is than ``reference``."""
    if value <= 0 or reference <= 0:
        return float("nan")
    return value / reference if higher_is_better else reference / value


def fmt_figure(value: float, unit: str) -> str:
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.1f} µs"
        if value < 1:
            return f"{value * 1e3:.1f} ms"
        return f"{value:.2f} s"
    if unit == "µs":
        return f"{value:.2f} µs"
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.2f}{prefix} {unit}"
    return f"{value:.1f} {unit}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None or math.isnan(ratio):
        return ""
    if ratio >= 100:
        return f"{ratio:.0f}x"
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def cases(best: Best, result: WorkloadResult) -> list[str]:
    """Cases in first-measured order, limits-only cases left out."""
    kinds = {c.name: c.kind for c in result.workload.contenders}
    seen: dict[str, None] = {}
    for case, contender in best:
        if kinds[contender] != LIMIT:
            seen.setdefault(case)
    order = result.workload.case_order
    return sorted(seen, key=order) if order else list(seen)


def rows_of(case: str, best: Best, result: WorkloadResult) -> list[dict[str, Any]]:
    """The rows of one case with their ratios, workhorse first."""
    workload = result.workload
    kinds = {c.name: c.kind for c in workload.contenders}
    order = [c.name for c in workload.contenders]
    entries = [(name, *best[(case, name)]) for name in order if (case, name) in best]
    entries = [e for e in entries if kinds[e[0]] != LIMIT]
    higher = workload.higher_is_better

    def fastest(values: list[float]) -> float | None:
        if not values:
            return None
        return max(values) if higher else min(values)

    stdlib = fastest([v for n, v, _ in entries if kinds[n] == STDLIB])
    peer = fastest([v for n, v, _ in entries if kinds[n] != WORKHORSE])
    limit = workload.limit(case, result.medians()) if workload.limit else None
    rows = []
    for name, value, variant in sorted(entries, key=lambda e: KIND_ORDER[kinds[e[0]]]):
        rows.append(
            {
                "contender": name,
                "kind": kinds[name],
                "variant": variant,
                "value": value,
                "vs_stdlib": None if stdlib is None else speed(value, stdlib, higher),
                "vs_best_peer": None if peer is None else speed(value, peer, higher),
                "vs_limit": None if limit is None else speed(value, limit, higher),
            }
        )
    return rows


def workload_markdown(result: WorkloadResult, chart: str | None) -> str:
    workload = result.workload
    best = result.best_variants()
    lines = [f"### {workload.title}", "", workload.description, ""]
    limit_header = f" x limit ({workload.limit_label}) |" if workload.limit else ""
    lines.append(f"| case | contender | {workload.unit} | x stdlib | x best peer |{limit_header}")
    lines.append("| --- | --- | ---: | ---: | ---: |" + (" ---: |" if workload.limit else ""))
    for case in cases(best, result):
        for row in rows_of(case, best, result):
            name = row["contender"]
            name = f"**{name}**" if row["kind"] == WORKHORSE else name
            if row["variant"]:
                name += f" ({row['variant']})"
            cells = [
                case,
                name,
                fmt_figure(row["value"], workload.unit),
                fmt_ratio(row["vs_stdlib"]),
                fmt_ratio(row["vs_best_peer"]),
            ]
            if workload.limit:
                cells.append(fmt_ratio(row["vs_limit"]))
            lines.append("| " + " | ".join(cells) + " |")
    limits = [
        f"{case}, {name}: {fmt_figure(value, workload.unit)}"
        for (case, name), (value, _) in best.items()
        if workload.contender(name).kind == LIMIT
    ]
    lines.append("")
    if limits:
        lines += ["Physical limits / ideals: " + "; ".join(limits) + ".", ""]
    if workload.targets:
        lines += ["Targets:", ""]
        lines += [f"- {text}" for text in workload.targets(best)]
        lines.append("")
    problems = []
    for record in result.records:
        bad = [s for s in record.statuses if s != "ok"]
        if bad:
            problems.append(
                f"- `{record.job.name}`: {bad[0]} ({len(bad)} of {len(record.statuses)} runs)"
            )
    notes = list(workload.notes) + [n for r in result.records for n in r.notes]
    if problems:
        lines += ["Failures:", "", *problems, ""]
    if notes:
        lines += ["Notes:", "", *[f"- {n}" for n in dict.fromkeys(notes)], ""]
    if chart:
        lines += [f"![{workload.key}]({chart})", ""]
    return "\n".join(lines)


def machine_markdown(machine: Mapping[str, Any]) -> str:
    lines = ["| | |", "| --- | --- |"]
    for key, value in machine.items():
        text = (
            ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, Mapping) else value
        )
        lines.append(f"| {key} | {text} |")
    return "\n".join(lines)


def chart(result: WorkloadResult, path: Path) -> bool:
    """A PNG with one horizontal bar panel per case; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        return False
    workload = result.workload
    best = result.best_variants()
    all_cases = cases(best, result)
    if not all_cases:
        return False
    columns = 2 if len(all_cases) > 1 else 1
    rows = (len(all_cases) + columns - 1) // columns
    bars = max(len(rows_of(case, best, result)) for case in all_cases)
    figure, axes = plt.subplots(
        rows, columns, figsize=(6.5 * columns, rows * (0.25 * bars + 0.9) + 0.8), squeeze=False
    )
    medians = result.medians()
    for index, case in enumerate(all_cases):
        axis = axes[index // columns][index % columns]
        entries = rows_of(case, best, result)[::-1]
        labels = [short_name(e["contender"]) for e in entries]
        values = [e["value"] for e in entries]
        colours = [COLOURS[e["kind"]] for e in entries]
        axis.barh(labels, values, color=colours)
        limit = workload.limit(case, medians) if workload.limit else None
        span = [v for v in [*values, limit or 0] if v > 0]
        if max(span) / min(span) > 30:  # orders of magnitude apart: log scale
            axis.set_xscale("log")
            axis.xaxis.set_minor_formatter(NullFormatter())
            axis.set_xlim(right=max(span) * 6)
        else:
            axis.set_xlim(0, max(span) * 1.35)
        axis.set_title(case, fontsize=9)
        axis.tick_params(labelsize=7)
        if limit:
            axis.axvline(limit, color=COLOURS[LIMIT], linestyle="--", linewidth=1)
        for y, value in enumerate(values):
            axis.text(value, y, " " + fmt_figure(value, workload.unit), va="center", fontsize=6)
    for index in range(len(all_cases), rows * columns):
        axes[index // columns][index % columns].axis("off")
    better = "higher is better" if workload.higher_is_better else "lower is better"
    dashed = "; dashed: limit" if workload.limit else ""
    figure.suptitle(f"{workload.title}\n{workload.unit}, {better}{dashed}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True


def short_name(name: str) -> str:
    """Chart labels: the stdlib's long module paths abbreviated."""
    return name.replace("concurrent.futures.", "cf.").replace("multiprocessing.", "mp.")


def to_json(result: WorkloadResult) -> dict[str, Any]:
    best = result.best_variants()
    return {
        "title": result.workload.title,
        "unit": result.workload.unit,
        "higher_is_better": result.workload.higher_is_better,
        "seconds": round(result.seconds, 1),
        "samples": [
            {"case": case, "contender": contender, "samples": values}
            for (case, contender), values in result.samples().items()
        ],
        "table": [
            {"case": case, **row}
            for case in cases(best, result)
            for row in rows_of(case, best, result)
        ],
        "jobs": [
            {"job": r.job.name, "statuses": r.statuses, "notes": r.notes, "seconds": r.seconds}
            for r in result.records
        ],
        "targets": result.workload.targets(best) if result.workload.targets else [],
    }


def split_variant(key: str) -> tuple[str, str]:
    case, _, variant = key.partition(VARIANT_SEP)
    return case, variant
