"""One module per workload family; each exposes ``WORKLOAD`` (a :class:`bench.harness.Workload`)."""

from __future__ import annotations

import importlib

from ..harness import Workload

#: Workload keys in issue 4's order (the module of the same name defines each).
KEYS = ("tiny", "cpu", "skewed", "payload", "queues", "startup", "sync", "threads", "dask", "cli")


def load(key: str) -> Workload:
    """The workload whose module is ``bench.workloads.<key>``."""
    module = importlib.import_module(f"{__name__}.{key}")
    workload: Workload = module.WORKLOAD
    return workload
