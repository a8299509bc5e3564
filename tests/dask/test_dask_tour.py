"""``examples/dask_tour.py`` (four seed scenarios on an embedded Dask cluster) runs to the end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from dask_cluster import *  # noqa: F403

from workhorse._dask._context import DaskContext

TOUR = Path(__file__).resolve().parents[2] / "examples" / "dask_tour.py"


@pytest.mark.timeout(90)
def test_the_dask_tour_runs(cluster: DaskContext) -> None:
    done = subprocess.run(
        [sys.executable, str(TOUR)], capture_output=True, text=True, timeout=80, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "all four scenarios ran on Dask" in done.stdout
    assert "consumer got 4" in done.stdout
