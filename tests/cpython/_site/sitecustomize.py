"""In the interpreters the concurrent.futures suite starts: workhorse's executors.

On ``PYTHONPATH`` only while the ``test_cf_*`` modules run (``_cf_suite``), so that a fresh
interpreter whose code does ``from concurrent.futures import ProcessPoolExecutor`` gets
workhorse's, as the test process does. Lazy: ``concurrent.futures`` resolves the executors
through its module ``__getattr__``; this one answers first, so a child that never asks
(workhorse's own worker processes) does not import workhorse's executors.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import workhorse

_NAMES = set(concurrent.futures.__all__) & set(workhorse.__all__)
_stdlib = concurrent.futures.__getattr__


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(workhorse, name)
    return _stdlib(name)


concurrent.futures.__getattr__ = __getattr__  # type: ignore[method-assign]
