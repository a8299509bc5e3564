"""Who owns a /dev/shm name, and who removes it (``workhorse._sharing``).

* An out-of-band item a pool task put into the parent's queue belongs to the queue until it
  is read: neither a normal pool close nor the worker's death removes it.
* Everything workhorse creates is removed once its last user is gone, whatever kills it: a
  parent SIGKILLed or SIGTERMed in the middle of a ``map`` with large NumPy arguments and of
  ``put``s of large queue items leaves nothing in /dev/shm.
* Clean-up after a dead process never touches another program's names (another pid
  namespace, or a live process that reuses the pid).
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import workhorse
from workhorse._errors import WorkerCrashed
from workhorse._sharing import sweep_created_by

BIG = 3 << 20  # goes out of band (the default ring's threshold is 2 MiB)


def _put_big(q: workhorse.Queue, n: int) -> int:
    q.put(bytes([n]) * BIG)
    return n


def _put_big_then_die(q: workhorse.Queue, n: int) -> None:
    q.put(bytes([n]) * BIG)
    os.kill(os.getpid(), signal.SIGKILL)


def test_big_items_put_by_pool_tasks_survive_a_normal_close() -> None:
    q = workhorse.Queue()
    with workhorse.Pool(2) as pool:
        assert pool.map(functools.partial(_put_big, q), range(4)) == [0, 1, 2, 3]
    got = sorted(q.get(timeout=10) for _ in range(4))
    assert got == [bytes([n]) * BIG for n in range(4)]
    assert q.empty()


def test_big_item_put_by_a_worker_that_then_dies_is_still_delivered() -> None:
    q = workhorse.Queue()
    with workhorse.ProcessPoolExecutor(1) as pool:
        future = pool.submit(_put_big_then_die, q, 7)
        with pytest.raises(WorkerCrashed):
            future.result(timeout=30)
    assert q.get(timeout=10) == bytes([7]) * BIG


_CLOSE_SCRIPT = textwrap.dedent(
    """
    import functools, os, workhorse

    def put_big(q, n):
        q.put(bytes([n]) * (3 << 20))
        return n

    if __name__ == "__main__":
        q = workhorse.Queue()
        with workhorse.Pool(2) as pool:
            pool.map(functools.partial(put_big, q), range(4))
        print(sorted(q.get(timeout=10)[0] for _ in range(4)), flush=True)
    """
)


def test_no_resource_tracker_complaint_after_a_pool_close(tmp_path: Path) -> None:
    """The tracker printed ``KeyError`` tracebacks: the sweep unregistered names it never had."""
    done = subprocess.run(
        [sys.executable, "-c", _CLOSE_SCRIPT],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "[0, 1, 2, 3]"
    assert "Traceback" not in done.stderr, done.stderr
    assert "resource_tracker" not in done.stderr, done.stderr


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, threading, time
    import numpy as np
    import workhorse

    def stuck(arr):
        print("running", flush=True)
        time.sleep(60)

    def putter(q):
        while True:
            q.put(np.ones(3 << 18))  # 6 MiB: out of band
            time.sleep(0.005)

    if __name__ == "__main__":
        q = workhorse.Queue()
        threading.Thread(target=putter, args=(q,), daemon=True).start()
        with workhorse.Pool(2) as pool:
            while len(pool._front.backend.worker_pids()) < 2:
                time.sleep(0.01)
            print("pids", os.getpid(), *pool._front.backend.worker_pids(), flush=True)
            pool.map(stuck, [np.full(1 << 18, i) for i in range(4)], chunksize=1)
    """
)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


def _owner_pid(entry: str) -> int | None:
    """The first number in a workhorse name: its owner's pid (its creator's, before)."""
    if "wh-" not in entry:
        return None
    return next((int(t) for t in entry.split("-")[1:] if t.isdigit() and len(t) < 20), None)


def _names_of(pids: set[int]) -> list[str]:
    return [entry for entry in os.listdir("/dev/shm") if _owner_pid(entry) in pids]


def _namespace() -> int:
    return os.stat("/proc/self/ns/pid").st_ino


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_parent_killed_mid_map_and_mid_put_leaves_nothing_in_dev_shm(
    sig: signal.Signals, tmp_path: Path
) -> None:
    pytest.importorskip("numpy")
    with subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    ) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line, "the script printed nothing"
        assert line[0] == "pids", line
        family = {int(p) for p in line[1:]}
        assert "running" in proc.stdout.readline()
        time.sleep(0.2)  # slack: let the putter thread put a few large items
        assert _names_of(family), "the script created nothing to clean up"
        proc.send_signal(sig)
        proc.wait(30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
            not all(_gone(pid) for pid in family) or _names_of(family)
        ):
            time.sleep(0.05)
        proc.kill()
        proc.communicate()
    assert all(_gone(pid) for pid in family)
    assert not _names_of(family), f"left in /dev/shm: {_names_of(family)}"


def test_sweep_never_touches_other_namespaces_or_live_owners() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = child.pid
    here = _namespace()
    ours = f"wh-{dead}-{here:x}.1-s-{os.urandom(6).hex()}-f0"
    other_ns = f"wh-{dead}-{here + 1:x}.1-s-{os.urandom(6).hex()}-f0"
    created = [ours, other_ns]
    for name in created:
        Path("/dev/shm", name).write_bytes(b"x")
    try:
        assert sweep_created_by(dead) == 1
        assert not Path("/dev/shm", ours).exists()
        assert Path("/dev/shm", other_ns).exists()  # same pid, another pid namespace
        lock = workhorse.Lock()  # a live owner's names are never swept
        assert sweep_created_by(os.getpid()) == 0
        assert lock.acquire(timeout=1)
        lock.release()
    finally:
        for name in created:
            Path("/dev/shm", name).unlink(missing_ok=True)


_IDLE_POOL_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import workhorse

    if __name__ == "__main__":
        with workhorse.Pool(2, context=workhorse.get_context(sys.argv[1])) as pool:
            assert pool.map(abs, range(-100, 0)) == list(range(100, 0, -1))
            print("pids", os.getpid(), *pool._front.backend.worker_pids(), flush=True)
            time.sleep(60)
    """
)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_whole_process_family_killed_at_once_leaves_nothing_in_dev_shm(
    method: str, tmp_path: Path
) -> None:
    """SIGKILL of the pool's whole process group -- parent, workers, template and resource
    tracker together, as a container or a job scheduler stops a job -- leaves no name in
    /dev/shm: no one would be left to remove it. A pool that moves no large data names none
    while it runs (its progress board is unlinked as soon as it is created)."""
    with subprocess.Popen(
        [sys.executable, "-c", _IDLE_POOL_SCRIPT, method],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[:1] == ["pids"], line
        family = {int(p) for p in line[1:]}
        assert not _names_of(family), f"named in /dev/shm while it runs: {_names_of(family)}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        proc.communicate()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(_gone(pid) for pid in family):
        time.sleep(0.05)
    assert not _names_of(family), f"left in /dev/shm: {_names_of(family)}"
