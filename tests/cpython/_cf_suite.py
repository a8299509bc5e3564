"""CPython's ``Lib/test/test_concurrent_futures`` (3.13+), run against workhorse's executors.

The package exists on Python 3.13 and later; elsewhere every ``test_cf_*`` module skips with
one reason. Each ``test_cf_<name>`` module runs ``test.test_concurrent_futures.test_<name>``:

* The executor mixins of ``test.test_concurrent_futures.util`` copied
  ``futures.ThreadPoolExecutor`` / ``futures.ProcessPoolExecutor`` into ``executor_type``
  when they were imported: those attributes are rebound to workhorse's executors, so every
  class ``create_executor_tests`` built from them (``ProcessPoolSpawnWaitTest`` ...) and
  every hand-written one (``ThreadPoolShutdownTest`` ...) runs workhorse's.
* The module globals ``futures`` (``concurrent.futures``) and ``multiprocessing``/``mp``
  of the test modules and of ``util`` become stand-ins (``_substitute.Standin``), for the
  bodies that name ``futures.ProcessPoolExecutor`` or ``multiprocessing.get_context``
  directly. ``get_context()`` therefore returns workhorse's once ``workhorse.processes`` has
  a ``get_context``, the stdlib's context until then.
* The test classes are bound into the harness module under their own names, so pytest
  collects them there (``test_cf_wait.py::ProcessPoolSpawnWaitTest::test_...``).
* Some tests run a fresh interpreter (``script_helper.assert_python_ok``) whose code does
  ``from concurrent.futures import ProcessPoolExecutor``. While these modules run,
  ``PYTHONPATH`` holds ``_site/``, whose ``sitecustomize`` makes ``concurrent.futures``
  hand out workhorse's executors in every child interpreter; ``script_helper`` is told the
  interpreter needs its environment, so it does not add ``-I`` (which ignores
  ``PYTHONPATH``). Neither the venv nor the base interpreter has a ``sitecustomize`` of
  its own (checked at set-up).
* ``unittest.addModuleCleanup`` callbacks (``util.setup_module`` registers two) are not run
  by pytest; the harness's ``tearDownModule`` runs them.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import importlib.util
import multiprocessing
import os
import unittest
from pathlib import Path
from typing import Any

import pytest

import workhorse
import workhorse.processes

from ._substitute import BASELINE, provided, standin

SITE = Path(__file__).parent / "_site"

try:
    from test.test_concurrent_futures import util
except ImportError:  # not in this interpreter's test package (pyenv's 3.11 and 3.12 lack it)
    util = None


def _patch() -> None:
    assert util is not None
    if BASELINE or util.__dict__.get("_workhorse_patched"):
        return
    ours = provided(concurrent.futures, workhorse)
    for mixin in vars(util).values():
        if isinstance(mixin, type) and issubclass(mixin, util.ExecutorMixin):
            stdlib = mixin.__dict__.get("executor_type")
            if stdlib is not None and stdlib.__name__ in ours:
                setattr(mixin, "executor_type", ours[stdlib.__name__])  # noqa: B010
    _patch_globals(util)
    util._workhorse_patched = True


def _patch_globals(module: Any) -> None:
    futures = standin(concurrent.futures, workhorse)
    mp = standin(multiprocessing, workhorse.processes)
    for name, value in list(vars(module).items()):
        if value is concurrent.futures:
            setattr(module, name, futures)
        elif value is multiprocessing:
            setattr(module, name, mp)


def _set_up_environment() -> dict[str, str | None]:
    from test.support import script_helper

    if importlib.util.find_spec("sitecustomize") is not None:
        raise RuntimeError("this interpreter has a sitecustomize: _site/ would shadow it")
    saved = {"PYTHONPATH": os.environ.get("PYTHONPATH")}
    if not BASELINE:
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE), saved["PYTHONPATH"]]))
    # The cached answer of interpreter_requires_environment(): True keeps PYTHONPATH.
    script_helper.__dict__["__cached_interp_requires_environment"] = True
    return saved


def _restore_environment(saved: dict[str, str | None]) -> None:
    from test.support import script_helper

    script_helper.__dict__["__cached_interp_requires_environment"] = None
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def install(namespace: dict[str, Any], name: str) -> None:
    """Bind ``test_<name>``'s test classes and module set-up into ``namespace``."""
    if util is None:
        pytest.skip(
            "this Python's test package has no test.test_concurrent_futures package",
            allow_module_level=True,
        )
    _patch()
    module = importlib.import_module(f"test.test_concurrent_futures.test_{name}")
    _patch_globals(module)
    if executor := getattr(module, "ExecutorTest", None):
        _patch_globals(importlib.import_module(executor.__module__))
    for attr, value in vars(module).items():
        if (
            isinstance(value, type)
            and issubclass(value, unittest.TestCase)
            and value.__module__ == module.__name__
        ):
            namespace[attr] = value
    saved: dict[str, str | None] = {}

    def setUpModule() -> None:
        saved.update(_set_up_environment())
        module.setUpModule()

    def tearDownModule() -> None:
        try:
            unittest.case.doModuleCleanups()
        finally:
            _restore_environment(saved)

    namespace["setUpModule"] = setUpModule
    namespace["tearDownModule"] = tearDownModule
