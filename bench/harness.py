"""Timing, alternation, isolation and statistics for the benchmark suite.

Every measurement ("job": one contender, one part of a workload, one repetition) runs in a
fresh child process (``python -m bench.measure``) started in its own session, so that

* a contender that hangs is killed on a hard timeout (the whole process group: its pool
  workers, forkservers and resource trackers too) and reported as ``timeout``;
* nothing a contender leaves behind (threads, processes, imported state, a broken pool)
  can slow down the next one, and leftover processes are killed and reported;
* repetitions alternate: repetition *r* runs every job of the workload once, in a rotated
  order, so that drift on a shared machine hits every contender alike.

Each figure is the median of the repetitions that succeeded.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: Contender kinds: what a row is compared with in the tables.
WORKHORSE, PEER, STDLIB, LIMIT = "workhorse", "peer", "stdlib", "limit"

#: A case key may carry a variant after ``@`` ("map, tuned@cs=1000"): the report keeps the
#: best variant of each case per contender (the hand-tuned setting) and names it.
VARIANT_SEP = "@"

Figures = dict[str, float]
#: Per (case, contender): the median figure and the variant it came from ("" if none).
Best = Mapping[tuple[str, str], tuple[float, str]]


def scaled(n: int) -> int:
    """``n`` times ``$WH_BENCH_SCALE`` (``--scale``, for smoke runs), at least 1."""
    return max(1, round(n * float(os.environ.get("WH_BENCH_SCALE", "1"))))


@dataclass(frozen=True)
class Contender:
    """A library (or a physical limit) measured by a workload.

    ``requires`` are the modules it needs; when one is missing (a peer that did not install)
    its jobs are skipped with a note instead of failing.
    """

    name: str
    kind: str
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Job:
    """One measurement: ``target`` (``"module:function"``) called with ``params``; it returns
    :data:`Figures`, a figure per case."""

    contender: str
    label: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.contender} [{self.label}]" if self.label else self.contender


@dataclass(frozen=True)
class Workload:
    """A workload of issue 4: what is measured, by whom, and how figures compare.

    ``higher_is_better`` is true for throughputs; for times it is false and the tables show
    speed ratios (reference time / time) so that > 1 always means faster.
    ``limit`` maps a case and the medians of all rows to the figure of the physical limit or
    ideal for it (serial loop, ``np.copy``, raw pipe, ideal schedule), or ``None``.
    """

    key: str
    title: str
    description: str
    unit: str
    higher_is_better: bool
    contenders: tuple[Contender, ...]
    jobs: Callable[[bool], list[Job]]
    reps: tuple[int, int] = (3, 5)
    timeout: tuple[float, float] = (60.0, 180.0)
    limit: Callable[[str, Mapping[tuple[str, str], float]], float | None] | None = None
    limit_label: str = ""
    notes: tuple[str, ...] = ()
    targets: Callable[[Best], list[str]] | None = None
    case_order: Callable[[str], Any] | None = None

    def contender(self, name: str) -> Contender:
        for contender in self.contenders:
            if contender.name == name:
                return contender
        raise KeyError(name)


@dataclass
class JobRecord:
    """What happened to one job over the repetitions."""

    job: Job
    statuses: list[str] = field(default_factory=list)
    samples: list[Figures] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class WorkloadResult:
    workload: Workload
    records: list[JobRecord]
    seconds: float

    def samples(self) -> dict[tuple[str, str], list[float]]:
        """Every sample per (case key, contender), case keys with their variants."""
        out: dict[tuple[str, str], list[float]] = {}
        for record in self.records:
            for figures in record.samples:
                for case, value in figures.items():
                    out.setdefault((case, record.job.contender), []).append(value)
        return out

    def medians(self) -> dict[tuple[str, str], float]:
        return {key: statistics.median(values) for key, values in self.samples().items()}

    def best_variants(self) -> dict[tuple[str, str], tuple[float, str]]:
        """Per (case, contender): its median, or the best median among the case's variants
        together with the variant's name."""
        best: dict[tuple[str, str], tuple[float, str]] = {}
        sign = 1 if self.workload.higher_is_better else -1
        for (key, contender), value in self.medians().items():
            case, _, variant = key.partition(VARIANT_SEP)
            current = best.get((case, contender))
            if current is None or sign * value > sign * current[0]:
                best[(case, contender)] = (value, variant)
        return best


# --- in the child -------------------------------------------------------------------------

_notes: list[str] = []
_partial: dict[str, float] = {}
_out_path: Path | None = None


def set_output(path: Path) -> None:
    """Where :func:`checkpoint` writes (set by ``bench.measure``)."""
    global _out_path
    _out_path = path


def checkpoint(figures: Mapping[str, float]) -> None:
    """Save the figures measured so far: they survive a later hang (timeout) or error."""
    _partial.clear()
    _partial.update(figures)
    if _out_path is not None:
        data = {"figures": dict(figures), "partial": True, "notes": list(_notes)}
        write_atomically(_out_path, json.dumps(data))


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` so that a reader sees the old or the new content, never a part."""
    partial = path.with_suffix(".tmp")
    partial.write_text(text)
    os.replace(partial, path)


def partial_figures() -> dict[str, float]:
    return dict(_partial)


def note(text: str) -> None:
    """Attach a remark to the current measurement (shown under the workload's table)."""
    if text not in _notes:
        _notes.append(text)


def take_notes() -> list[str]:
    notes = list(_notes)
    _notes.clear()
    return notes


# --- in the parent ------------------------------------------------------------------------


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap_group(pgid: int, grace: float) -> int:
    """Wait up to ``grace`` s for the group to exit by itself, then kill what is left.
    Returns how many processes had to be killed."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _group_members(pgid):
            return 0
        time.sleep(0.05)
    left = len(_group_members(pgid))
    _kill_group(pgid)
    return left


def run_job(job: Job, timeout: float, log_dir: Path, tag: str) -> tuple[str, Figures, list[str]]:
    """Run ``job`` once in a fresh process group; returns (status, figures, notes).

    status is ``ok``, ``timeout`` or ``error: ...``; the child's output goes to
    ``log_dir/<tag>.log`` (kept only when not empty).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{tag}.log"
    with tempfile.TemporaryDirectory(prefix="wh-bench-") as tmp:
        spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "out.json")
        # The child dumps its threads' stacks into its log shortly before the kill.
        dump_after = max(0.5, timeout - 1.0)
        spec = {"target": job.target, "params": dict(job.params), "dump_after": dump_after}
        spec_path.write_text(json.dumps(spec))
        with log_path.open("wb") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "bench.measure", str(spec_path), str(out_path)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
            )
            notes: list[str] = []
            try:
                child.wait(timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(child.pid)
                child.wait()
            left = _reap_group(child.pid, 0.0 if timed_out else 3.0)
        if left:
            notes.append(f"{job.name}: {left} process(es) left behind and killed")
        result: dict[str, Any] = {}
        if out_path.exists():
            try:
                result = json.loads(out_path.read_text())
            except ValueError:  # killed while writing: nothing usable
                result = {}
    if log_path.stat().st_size == 0:
        log_path.unlink()
    notes.extend(result.get("notes", []))
    figures: Figures = result.get("figures", {})
    partial = result.get("partial", False)
    if figures and not partial and "error" not in result:
        if timed_out:
            notes.append(f"{job.name}: hung after measuring (at exit); killed")
        return "ok", figures, notes
    done = f" after {len(figures)} case(s)" if figures else ""
    if timed_out:
        return f"timeout ({timeout:g} s){done}", figures, notes
    error = result.get("error") or f"exit code {child.returncode} (see {log_path.name})"
    return f"error{done}: {error}", figures, notes


def missing_modules(modules: Sequence[str]) -> list[str]:
    """Which of ``modules`` cannot be imported in the benchmark environment."""
    import importlib.util

    return [name for name in modules if importlib.util.find_spec(name) is None]


def run_workload(
    workload: Workload,
    quick: bool,
    log_dir: Path,
    reps: int | None = None,
    progress: Callable[[str], None] = print,
) -> WorkloadResult:
    """All jobs of ``workload``, round robin over ``reps`` repetitions (rotated each time).

    A job that timed out or failed runs again in the next repetitions (hangs can be
    intermittent); its figures are the medians of the runs that succeeded.
    """
    started = time.monotonic()
    reps = reps or workload.reps[0 if quick else 1]
    timeout = workload.timeout[0 if quick else 1]
    jobs = workload.jobs(quick)
    records = [JobRecord(job) for job in jobs]
    runnable = []
    for record in records:
        missing = missing_modules(workload.contender(record.job.contender).requires)
        if missing:
            record.statuses.append(f"skipped: {', '.join(missing)} not installed")
        else:
            runnable.append(record)
    for rep in range(reps):
        shift = rep % max(1, len(runnable))
        for record in runnable[shift:] + runnable[:shift]:
            tag = f"{workload.key}-{record.job.name}-{rep}".replace(" ", "_").replace("/", "_")
            t0 = time.monotonic()
            status, figures, notes = run_job(record.job, timeout, log_dir, tag)
            record.seconds += time.monotonic() - t0
            record.statuses.append(status)
            if figures:
                record.samples.append(figures)
            for text in notes:
                if text not in record.notes:
                    record.notes.append(text)
            if status != "ok":
                progress(f"  {workload.key}: {record.job.name}: {status}")
        progress(f"  {workload.key}: repetition {rep + 1}/{reps} done")
    return WorkloadResult(workload, records, time.monotonic() - started)
