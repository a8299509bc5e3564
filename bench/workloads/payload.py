"""Workload 4: large payloads -- a 100 MB NumPy array as a task's argument and as its result.

Limits: one ``np.copy`` of the array (the targets: a round trip within 3x of it, issue 4,
and within 2x, issue 11) and a raw one-way ``os.pipe`` transfer of its bytes to another
process.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Mapping
from typing import Any

from ..harness import LIMIT, Contender, Job, Workload, checkpoint, note, scaled
from .pools import PROCESS_POOLS, open_pool

MEGABYTES = 100
ARGUMENT, ROUND_TRIP = "argument (100 MB in, nothing back)", "round trip (100 MB in and out)"
COPY, PIPE = "np.copy", "os.pipe (one way)"
LIMITS = Contender("physical limits", LIMIT, ("numpy",))
CONTENDERS = tuple(Contender(c.name, c.kind, (*c.requires, "numpy")) for c in PROCESS_POOLS)


def _array(megabytes: int) -> Any:
    import numpy as np

    return np.arange(megabytes * (1 << 20) // 8, dtype=np.float64)


def identity(x: Any) -> Any:
    return x


def size_of(x: Any) -> int:
    return int(x.nbytes)


def run(contender: str, megabytes: int) -> dict[str, float]:
    array = _array(megabytes)
    pool = open_pool(contender, 2)
    figures: dict[str, float] = {}
    try:
        pool.call(identity, _array(1))  # the workers have imported numpy
        start = time.perf_counter()
        nbytes = pool.call(size_of, array)
        figures[ARGUMENT] = time.perf_counter() - start
        checkpoint(figures)
        start = time.perf_counter()
        back = pool.call(identity, array)
        figures[ROUND_TRIP] = time.perf_counter() - start
    finally:
        pool.close_within()
    if nbytes != array.nbytes or back.shape != array.shape or back[-1] != array[-1]:
        raise AssertionError("the array did not come back intact")
    return figures


def limits(megabytes: int) -> dict[str, float]:
    """``np.copy`` and a raw pipe transfer (1 MB pipe buffer) into a preallocated buffer."""
    import numpy as np

    array = _array(megabytes)
    np.copy(array)  # fault the pages of the allocator in once
    start = time.perf_counter()
    np.copy(array)
    copy_seconds = time.perf_counter() - start
    data = memoryview(array).cast("B")
    read_fd, write_fd = os.pipe()
    ack_read, ack_write = os.pipe()
    for fd in (read_fd, write_fd):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    pid = os.fork()
    if pid == 0:  # the reader
        os.close(write_fd)
        buffer = bytearray(len(data))
        view, got = memoryview(buffer), 0
        while got < len(buffer):
            got += os.readv(read_fd, [view[got:]])
        os.write(ack_write, b"1")
        os._exit(0)
    os.close(read_fd)
    start = time.perf_counter()
    sent = 0
    while sent < len(data):
        sent += os.write(write_fd, data[sent : sent + (1 << 20)])
    os.read(ack_read, 1)
    pipe_seconds = time.perf_counter() - start
    os.waitpid(pid, 0)
    for fd in (write_fd, ack_read, ack_write):
        os.close(fd)
    note("os.pipe: 1 MB pipe buffer (F_SETPIPE_SZ), 1 MB writes, reader preallocated")
    return {COPY: copy_seconds, PIPE: pipe_seconds}


def jobs(quick: bool) -> list[Job]:
    params = {"megabytes": scaled(MEGABYTES)}
    out = [Job(LIMITS.name, "", f"{__name__}:limits", params)]
    for contender in CONTENDERS:
        out.append(
            Job(contender.name, "", f"{__name__}:run", {**params, "contender": contender.name})
        )
    return out


def limit(case: str, medians: Mapping[tuple[str, str], float]) -> float | None:
    return medians.get((COPY if case == ROUND_TRIP else PIPE, LIMITS.name))


def _round_trips(
    best: Mapping[tuple[str, str], tuple[float, str]],
) -> list[tuple[str, tuple[float, float] | None]]:
    """Each workhorse pool's round-trip time and one ``np.copy``'s (None: no figure)."""
    copy = best.get((COPY, LIMITS.name))
    out: list[tuple[str, tuple[float, float] | None]] = []
    for name in ("workhorse.Pool", "workhorse.ProcessPoolExecutor"):
        figure = best.get((ROUND_TRIP, name))
        out.append((name, None if copy is None or figure is None else (figure[0], copy[0])))
    return out


def targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    lines = []
    for name, pair in _round_trips(best):
        if pair is None:
            lines.append(f"{name}: no figure")
            continue
        times = pair[0] / pair[1]
        verdict = "met" if times <= 3 else f"missed: {times / 3:.1f}x too slow"
        lines.append(f"{name}: round trip = {times:.1f} x np.copy (<= 3x): {verdict}")
    return lines + issue_11_targets(best)


def issue_11_targets(best: Mapping[tuple[str, str], tuple[float, str]]) -> list[str]:
    """Issue 11 (no regression): the round trip stays within 2x one ``np.copy``."""
    lines = []
    for name, pair in _round_trips(best):
        head = f"issue 11: {name} 100 MB round trip <= 2x np.copy"
        if pair is None:
            lines.append(f"{head}: no figure")
            continue
        times = pair[0] / pair[1]
        verdict = "met" if times <= 2 else f"missed: {times / 2:.2f}x too slow"
        lines.append(
            f"{head}: {pair[0] * 1e3:.1f} ms vs np.copy {pair[1] * 1e3:.1f} ms = "
            f"{times:.2f}x: {verdict}"
        )
    return lines


WORKLOAD = Workload(
    key="payload",
    title="4. Large payloads (100 MB NumPy array)",
    description=(
        "Seconds for one task on a running pool of 2 workers: the array as argument (the "
        "task returns its size), and as argument and result (the task returns it). x limit: "
        "against one raw one-way `os.pipe` transfer (argument) and one `np.copy` (round trip)."
    ),
    unit="s",
    higher_is_better=False,
    contenders=(*CONTENDERS, LIMITS),
    jobs=jobs,
    reps=(2, 5),
    timeout=(60.0, 180.0),
    limit=limit,
    limit_label="pipe / np.copy",
    targets=targets,
)
